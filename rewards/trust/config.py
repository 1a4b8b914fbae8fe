"""Trust-GRPO parameters (``algorithm.trust_grpo`` in the recipe), parsed and validated once.

The trust sampler and the ``trust_grpo`` estimator (the verl glue), the reward manager and the
``python -m sophiavl.rewards.trust`` command all read the same :class:`TrustConfig`, so a key means the same thing
everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

SEMANTICS = ("paper", "official")
ANNEAL_MODES = ("exp", "linear", "none")
#: ``algorithm.trust_grpo.trust``: the paper's per-group trust, no trust (gamma = 1), or per-response
#: ``exp(-variance)`` of K judge samples (the paper's design ablation, our reading of it).
TRUST_MODES = ("group", "off", "variance")
#: ``algorithm.trust_grpo.normalize``: how the advantage is normalised (docs/beyond-the-paper.md): the paper's
#: ``joint`` z(Ro + w * Rt'), GDPO-style ``decoupled`` z(Ro) + w * z_u(Rt'), PAPO-style ``papo`` z(Ro) + w * z_c(Rt').
#: ``papo`` is the process-reward normalisation of arXiv 2603.26535, not Perception-Aware Policy Optimization
#: (arXiv 2507.06448), which is not implemented.
NORMALIZE_MODES = ("joint", "decoupled", "papo")
#: ``algorithm.trust_grpo.gate``: ``none``, or ``correct`` (Posterior-GRPO: only correct responses keep Rt).
GATE_MODES = ("none", "correct")
#: TrustConfig fields that hold a mode name (strings; a YAML boolean there is a quoting mistake).
_STRING_KEYS = ("semantics", "anneal", "trust", "normalize", "gate")

#: A key under ``algorithm.trust_grpo`` that is no Trust-GRPO knob: the recipe's wiring check, run by an OmegaConf
#: resolver when verl resolves the config. :meth:`TrustConfig.from_config` never reads it (reading it would resolve it).
WIRING_CHECK_KEY = "check_wiring"


@dataclass(frozen=True)
class TrustConfig:
    """Trust-GRPO knobs.

    Attributes:
        semantics: ``"paper"`` (arXiv 2505.17018 Eq. 1-5) or ``"official"`` (the authors' released code: no RM call
            and ``Rt = 0`` below ``skip_rm_below``, no thinking reward for degenerate groups, no down-weighting when
            no response is correct).
        trust: ``"group"`` (the paper's trust weight per group, Eq. 3), ``"off"`` (gamma = 1: ablation "without
            trust") or ``"variance"`` (gamma_i = exp(-variance of response i's judge samples); needs
            ``reward.thinking_rm.samples`` >= 2 to mean anything).
        alpha: weight of the thinking reward, >= 0 (paper: 0.3).
        anneal: ``"exp"`` (exp(-step / T)), ``"linear"`` (max(0, 1 - step / T)) or ``"none"`` (1).
        anneal_T: annealing horizon T in training steps, > 0 (paper: total training steps; released code: 12000).
        correct_threshold: a response with ``Ro >= correct_threshold`` counts as correct (paper: 0.5).
        skip_rm_below: ``official`` only: responses with ``Ro < skip_rm_below`` are not judged, ``Rt = 0`` (0.2).
        degenerate_high: ``official`` only: a group whose outcomes are all ``>= degenerate_high`` gets no
            thinking reward (0.9).
        degenerate_low: ``official`` only: a group whose outcomes are all ``<= degenerate_low`` gets no thinking
            reward (0.1).
        normalize: ``"joint"`` (the paper), ``"decoupled"`` or ``"papo"`` (the process-reward normalisation of
            arXiv 2603.26535, not Perception-Aware Policy Optimization; see :mod:`sophiavl.rewards.trust.variants`).
        gate: ``"none"`` or ``"correct"`` (Rt' = Rt for correct responses, 0 for wrong ones; gamma still comes from the
            ungated scores).
        whiten_batch: whiten the per-response advantages over the step's responses; ``None`` (the recipe's ``null``)
            takes the mode's default: on for ``decoupled``, off otherwise (see :attr:`whiten`).
    """

    semantics: str = "paper"
    trust: str = "group"
    alpha: float = 0.3
    anneal: str = "exp"
    anneal_T: float = 1500.0
    correct_threshold: float = 0.5
    skip_rm_below: float = 0.2
    degenerate_high: float = 0.9
    degenerate_low: float = 0.1
    normalize: str = "joint"
    gate: str = "none"
    whiten_batch: bool | None = None

    def __post_init__(self) -> None:
        if self.semantics not in SEMANTICS:
            raise ValueError(f"algorithm.trust_grpo.semantics must be one of {SEMANTICS}, got {self.semantics!r}")
        if self.trust not in TRUST_MODES:
            raise ValueError(f"algorithm.trust_grpo.trust must be one of {TRUST_MODES}, got {self.trust!r}")
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
        _check_variant(self)

    @property
    def official(self) -> bool:
        """True under the released-code semantics."""
        return self.semantics == "official"

    @property
    def whiten(self) -> bool:
        """Whether the advantages are whitened over the step's responses (``whiten_batch``, or the mode's default)."""
        return self.normalize == "decoupled" if self.whiten_batch is None else self.whiten_batch

    @property
    def routes_advantages(self) -> bool:
        """True when the trust sampler computes the advantages itself and hands them to the estimator per row
        (every mode but the paper's joint normalisation without whitening)."""
        return self.normalize != "joint" or self.whiten

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> TrustConfig:
        """Builds a config from the ``algorithm.trust_grpo`` node (a DictConfig or a plain dict).

        Missing keys take the defaults above; unknown keys raise ``ValueError`` naming them (a typo in an override
        must not be ignored). ``anneal_T: null`` raises unless ``anneal`` is ``"none"``.
        """
        if node is None:
            return cls()
        known = {f.name for f in fields(cls)}
        # read key by key, never the wiring-check key: its value is an interpolation whose resolver calls
        # the recipe's wiring check, which calls this method
        values = {key: node[key] for key in node.keys() if key != WIRING_CHECK_KEY}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown keys under algorithm.trust_grpo: {unknown}; known keys: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, bool) and key in _STRING_KEYS:
                raise ValueError(
                    f"algorithm.trust_grpo.{key} must be a string, got {value!r} (YAML reads an unquoted off/on/no/yes "
                    f'as a boolean: write {key}: "off" in a YAML file; on the command line {key}=off works)'
                )
            if key in _STRING_KEYS:
                kwargs[key] = str(value)
            elif key == "whiten_batch":
                kwargs[key] = _optional_bool(value)
            elif value is None and key == "anneal_T":
                kwargs[key] = float("nan")
            else:
                kwargs[key] = float(value)
        return cls(**kwargs)


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"algorithm.trust_grpo.whiten_batch must be true, false or null, got {value!r}")


def _check_variant(cfg: TrustConfig) -> None:
    """Validates ``normalize`` / ``gate`` / ``whiten_batch`` (called by ``TrustConfig.__post_init__``)."""
    if cfg.normalize not in NORMALIZE_MODES:
        raise ValueError(f"algorithm.trust_grpo.normalize must be one of {NORMALIZE_MODES}, got {cfg.normalize!r}")
    if cfg.gate not in GATE_MODES:
        raise ValueError(f"algorithm.trust_grpo.gate must be one of {GATE_MODES}, got {cfg.gate!r}")
    if cfg.whiten_batch is not None and not isinstance(cfg.whiten_batch, bool):
        raise ValueError(f"algorithm.trust_grpo.whiten_batch must be true, false or null, got {cfg.whiten_batch!r}")
    if cfg.official and (cfg.normalize != "joint" or cfg.gate != "none" or cfg.whiten_batch):
        raise ValueError(
            "algorithm.trust_grpo.semantics=official reproduces the released code, which has no other normalisation, "
            f"gate or batch whitening (got normalize={cfg.normalize}, gate={cfg.gate}, whiten_batch="
            f"{cfg.whiten_batch}): use semantics=paper with these keys, or normalize=joint gate=none "
            "whiten_batch=null with official"
        )
