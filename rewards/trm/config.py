"""The ``reward.thinking_rm`` keys, parsed and validated once (the reward manager and the trust sampler share them)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sophiavl.rewards.thinking_client import CONSTRAIN_STYLES, check_sampling

_NULLABLE = ("base_url", "model", "api_key_env", "prompt_template", "seed")


@dataclass(frozen=True)
class ThinkingRMConfig:
    """Where and how the thinking reward model is asked.

    Attributes:
        enable: ask the thinking RM at all (default true). ``false``: no judge is built and no call is made; every
            response has a missing ``Rt`` (the GRPO baseline, recipe ``sophiavl_grpo``).
        base_url: OpenAI-compatible server (``http://host:port``, ``.../v1`` or ``.../v1/chat/completions``);
            ``None``: the verl-managed reward model (``reward.reward_model.enable=true``) behind verl's router.
        model: served model name; ``None``: ``reward.reward_model.model_path`` for the verl-managed model, else the
            first entry of the server's ``/v1/models``.
        api_key_env: environment variable holding the API key (Bearer token); unset or empty: no header.
        max_concurrency: requests in flight at once, in total over the ``reward.num_workers`` reward-loop workers.
        timeout_s: limit of one HTTP attempt, seconds.
        max_retries: extra attempts on connection errors, timeouts, 429 and 5xx.
        backoff_s, backoff_max_s: exponential backoff between attempts (seconds; jittered, see ``ThinkingJudge``).
        prompt_template: template file; ``None`` for the packaged one.
        constrain_output: ask vLLM for structured output matching ``<answer>0.x</answer>``.
        constrain_style: ``structured_outputs`` (vLLM >= 0.10.2) or ``guided_regex`` (older vLLM).
        max_tokens: bound on the judge's reply, tokens.
        temperature: the judge's sampling temperature, >= 0 (0: greedy, the default).
        samples: K, replies asked per response (>= 1; one request with the OpenAI ``n`` parameter); every score is
            reported, ``Rt`` is the mean of the usable ones. K > 1 needs ``temperature > 0``.
        seed: sent as the OpenAI ``seed`` field so that sampled judgements are reproducible on vLLM; ``None``: not
            sent.
        max_failure_rate: the trust sampler stops the run when the share of failed judgements (``thinking_status``
            2) among the judged training responses of one step exceeds this, in [0, 1].
    """

    enable: bool = True
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = "THINKING_RM_API_KEY"
    max_concurrency: int = 64
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    prompt_template: str | None = None
    constrain_output: bool = False
    constrain_style: str = "structured_outputs"
    max_tokens: int = 256
    temperature: float = 0.0
    samples: int = 1
    seed: int | None = None
    max_failure_rate: float = 0.2

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"reward.thinking_rm.max_concurrency must be >= 1, got {self.max_concurrency}")
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ValueError(f"reward.thinking_rm.timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"reward.thinking_rm.max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ValueError("reward.thinking_rm.backoff_s and backoff_max_s must be >= 0")
        if self.max_tokens < 1:
            raise ValueError(f"reward.thinking_rm.max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"reward.thinking_rm.max_failure_rate must lie in [0, 1], got {self.max_failure_rate}")
        if self.constrain_style not in CONSTRAIN_STYLES:
            raise ValueError(
                f"reward.thinking_rm.constrain_style must be one of {CONSTRAIN_STYLES}, got {self.constrain_style!r}"
            )
        check_sampling(self.temperature, self.samples)

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> ThinkingRMConfig:
        """Builds the config from the ``reward.thinking_rm`` node (DictConfig or dict; ``None``: all defaults).

        Unknown keys raise ``ValueError`` naming them (a typo in an override must not be ignored).
        """
        if node is None:
            return cls()
        values = dict(node.items())
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown keys under reward.thinking_rm: {unknown}; known keys: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                if key not in _NULLABLE:
                    raise ValueError(f"reward.thinking_rm.{key} must not be null")
                kwargs[key] = None
            elif key in ("max_concurrency", "max_retries", "max_tokens", "samples", "seed"):
                kwargs[key] = _integer(key, value)
            elif key in ("timeout_s", "backoff_s", "backoff_max_s", "max_failure_rate", "temperature"):
                kwargs[key] = float(value)
            elif key in ("constrain_output", "enable"):
                if not isinstance(value, bool):
                    raise ValueError(f"reward.thinking_rm.{key} must be true or false, got {value!r}")
                kwargs[key] = value
            else:
                kwargs[key] = str(value)
        return cls(**kwargs)


def _integer(key: str, value: Any) -> int:
    """``value`` as an int; a float with a fraction (``samples=2.5``) or a non-number raises ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"reward.thinking_rm.{key} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"reward.thinking_rm.{key} must be an integer, got {value!r}")
    return int(number)
