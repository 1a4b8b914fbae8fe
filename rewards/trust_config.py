"""Trust-GRPO parameters (``algorithm.trust_grpo`` in the recipe), parsed and validated once.

The trust sampler, the ``trust_grpo`` estimator, the reward manager and the ``python -m sophiavl.rewards.trust``
command all read the same :class:`TrustConfig`, so a key means the same thing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

SEMANTICS = ("paper", "official")
ANNEAL_MODES = ("exp", "linear", "none")


@dataclass(frozen=True)
class TrustConfig:
    """Trust-GRPO knobs.

    Attributes:
        semantics: ``"paper"`` (arXiv 2505.17018 Eq. 1-5) or ``"official"`` (the authors' released code: no RM call
            and ``Rt = 0`` below ``skip_rm_below``, no thinking reward for degenerate groups, no down-weighting when
            no response is correct).
        alpha: weight of the thinking reward, >= 0 (paper: 0.3).
        anneal: ``"exp"`` (exp(-step / T)), ``"linear"`` (max(0, 1 - step / T)) or ``"none"`` (1).
        anneal_T: annealing horizon T in training steps, > 0 (paper: total training steps; released code: 12000).
        correct_threshold: a response with ``Ro >= correct_threshold`` counts as correct (paper: 0.5).
        skip_rm_below: ``official`` only: responses with ``Ro < skip_rm_below`` are not judged, ``Rt = 0`` (0.2).
        degenerate_high: ``official`` only: a group whose outcomes are all ``>= degenerate_high`` gets no
            thinking reward (0.9).
        degenerate_low: ``official`` only: a group whose outcomes are all ``<= degenerate_low`` gets no thinking
            reward (0.1).
    """

    semantics: str = "paper"
    alpha: float = 0.3
    anneal: str = "exp"
    anneal_T: float = 1500.0
    correct_threshold: float = 0.5
    skip_rm_below: float = 0.2
    degenerate_high: float = 0.9
    degenerate_low: float = 0.1

    def __post_init__(self) -> None:
        if self.semantics not in SEMANTICS:
            raise ValueError(f"algorithm.trust_grpo.semantics must be one of {SEMANTICS}, got {self.semantics!r}")
        if self.anneal not in ANNEAL_MODES:
            raise ValueError(f"algorithm.trust_grpo.anneal must be one of {ANNEAL_MODES}, got {self.anneal!r}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"algorithm.trust_grpo.alpha must be a finite number >= 0, got {self.alpha!r}")
        if self.anneal != "none" and not (math.isfinite(self.anneal_T) and self.anneal_T > 0):
            raise ValueError(
                f"algorithm.trust_grpo.anneal_T must be > 0 for anneal={self.anneal!r}, got {self.anneal_T!r} "
                "(it defaults to trainer.total_training_steps: set that, or anneal_T itself)"
            )
        for name in ("correct_threshold", "skip_rm_below", "degenerate_high", "degenerate_low"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"algorithm.trust_grpo.{name} must lie in [0, 1], got {value!r}")

    @property
    def official(self) -> bool:
        """True under the released-code semantics."""
        return self.semantics == "official"

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> TrustConfig:
        """Builds a config from the ``algorithm.trust_grpo`` node (a DictConfig or a plain dict).

        Missing keys take the defaults above; unknown keys raise ``ValueError`` naming them (a typo in an override
        must not be ignored). ``anneal_T: null`` raises unless ``anneal`` is ``"none"``.
        """
        if node is None:
            return cls()
        known = {f.name for f in fields(cls)}
        values = dict(node.items())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown keys under algorithm.trust_grpo: {unknown}; known keys: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in ("semantics", "anneal"):
                kwargs[key] = str(value)
            elif value is None and key == "anneal_T":
                kwargs[key] = float("nan")
            else:
                kwargs[key] = float(value)
        return cls(**kwargs)
