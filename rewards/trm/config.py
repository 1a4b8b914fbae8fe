"""The judge's settings, defined once: the ``reward.thinking_rm`` recipe keys, the flags of ``python -m
sophiavl.eval.trm`` and the arguments of :class:`~sophiavl.rewards.trm.client.ThinkingJudge`.

Each field of :class:`ThinkingRMConfig` carries its default, its help text and its kind in ``metadata``; the
OmegaConf reader (:meth:`ThinkingRMConfig.from_config`), the command-line flags (:func:`add_judge_arguments`,
:meth:`ThinkingRMConfig.from_args`) and the validation (``__post_init__``) all work from those fields. An error names
the setting the way its reader wrote it: ``reward.thinking_rm.samples``, ``--samples`` or ``samples``.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

#: ``reward.thinking_rm.constrain_style``: the request field vLLM reads the output regex from.
CONSTRAIN_STYLES = ("structured_outputs", "guided_regex")
#: The recipe node the settings come from.
NODE = "reward.thinking_rm"


def _setting(default: Any, kind: type, help: str | None = None, **meta: Any) -> Any:
    """A field with its default, its kind (``bool``, ``int``, ``float`` or ``str``) and its ``--flag`` help.

    ``meta``: ``cli=False`` (a training-only key, no flag), ``nullable=True`` (``null`` allowed), ``required=True``
    (the flag must be given), ``choices=(...)``.
    """
    return field(default=default, metadata={"kind": kind, "help": help, "cli": True, **meta})


@dataclass(frozen=True)
class ThinkingRMConfig:
    """Where and how the thinking reward model (TRM) is asked.

    Attributes:
        enable: ask the TRM at all (default true). ``false``: no judge is built and no call is made; every
            response has a missing ``Rt`` (the GRPO baseline, recipe ``sophiavl_grpo``). Training only.
        base_url: OpenAI-compatible server (``http://host:port``, ``.../v1`` or ``.../v1/chat/completions``);
            ``None``: the verl-managed reward model (``reward.reward_model.enable=true``) behind verl's router.
        model: served model name; ``None``: ``reward.reward_model.model_path`` for the verl-managed model, else the
            first entry of the server's ``/v1/models``.
        api_key_env: environment variable holding the API key (Bearer token); unset or empty: no header.
        max_concurrency: requests in flight at once (>= 1); in training, in total over the ``reward.num_workers``
            reward-loop workers.
        timeout_s: limit of one HTTP attempt, seconds (> 0, finite).
        max_retries: extra attempts (>= 0) on connection errors, timeouts, 429 and 5xx.
        backoff_s, backoff_max_s: exponential backoff between attempts, seconds (>= 0): the wait before retry k is
            ``min(backoff_max_s, backoff_s * 2**(k-1))`` times a random factor in [0.5, 1].
        max_tokens: bound on the judge's reply, tokens (>= 1).
        samples: K, replies asked per response (>= 1; one request with the OpenAI ``n`` parameter); every score is
            reported, ``Rt`` is the mean of the usable ones. K > 1 needs ``temperature > 0``.
        temperature: the judge's sampling temperature, finite and >= 0 (0: greedy, the default).
        seed: sent as the OpenAI ``seed`` field so that sampled judgements are reproducible on vLLM; ``None``: not
            sent.
        constrain_output: ask vLLM for structured output matching ``<answer>0.x</answer>``.
        constrain_style: ``structured_outputs`` (vLLM >= 0.10.2) or ``guided_regex`` (older vLLM).
        prompt_template: template file; ``None`` for the packaged one.
        max_failure_rate: the trust sampler stops the run when the share of failed judgements (``thinking_status``
            2) among the judged training responses of one step exceeds this, in [0, 1]. Training only.
    """

    enable: bool = _setting(True, bool, cli=False)
    base_url: str | None = _setting(
        None, str, "server: http://host:port, .../v1 or .../v1/chat/completions", nullable=True, required=True
    )
    model: str | None = _setting(
        None, str, "served model name (default: the first of the server's /v1/models)", nullable=True
    )
    api_key_env: str | None = _setting(
        "THINKING_RM_API_KEY",
        str,
        "environment variable holding the API key, sent as a Bearer token (default %(default)s)",
        nullable=True,
    )
    max_concurrency: int = _setting(64, int, "requests in flight at once")
    timeout_s: float = _setting(60.0, float, "limit of one HTTP attempt, seconds")
    max_retries: int = _setting(3, int, "extra attempts on 5xx/429/timeouts")
    backoff_s: float = _setting(1.0, float, "first backoff between attempts, seconds")
    backoff_max_s: float = _setting(30.0, float, "longest backoff, seconds")
    max_tokens: int = _setting(256, int, "bound on the judge's reply, tokens")
    samples: int = _setting(1, int, "K: scores asked per response (OpenAI n); their mean counts")
    temperature: float = _setting(0.0, float, "sampling temperature (0: greedy; K > 1 needs > 0)")
    seed: int | None = _setting(None, int, "sampling seed sent to the server (default: none)", nullable=True)
    constrain_output: bool = _setting(False, bool, "ask vLLM for structured output <answer>0.x</answer>")
    constrain_style: str = _setting("structured_outputs", str, choices=CONSTRAIN_STYLES)
    prompt_template: str | None = _setting(None, str, "template file (default: the packaged one)", nullable=True)
    max_failure_rate: float = _setting(0.2, float, cli=False)

    def __post_init__(self) -> None:
        key = f"{NODE}."
        if self.max_concurrency < 1:
            raise ValueError(f"{key}max_concurrency must be >= 1, got {self.max_concurrency}")
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ValueError(f"{key}timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"{key}max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ValueError(f"{key}backoff_s and backoff_max_s must be >= 0")
        if self.max_tokens < 1:
            raise ValueError(f"{key}max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"{key}max_failure_rate must lie in [0, 1], got {self.max_failure_rate}")
        if self.constrain_style not in CONSTRAIN_STYLES:
            raise ValueError(f"{key}constrain_style must be one of {CONSTRAIN_STYLES}, got {self.constrain_style!r}")
        samples, temperature = self.samples, self.temperature
        if int(samples) != samples or samples < 1:
            raise ValueError(f"{key}samples must be an integer >= 1, got {samples!r}")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"{key}temperature must be a finite number >= 0, got {temperature!r}")
        if samples > 1 and temperature <= 0:
            raise ValueError(
                f"{key}samples={samples} needs {key}temperature > 0 (greedy decoding would return {samples} "
                "identical replies); set e.g. temperature=1.0"
            )

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> ThinkingRMConfig:
        """Builds the config from the ``reward.thinking_rm`` node (DictConfig or dict; ``None``: all defaults).

        Unknown keys raise ``ValueError`` naming them (a typo in an override must not be ignored); so do ``null``
        for a key that needs a value, a non-boolean for a switch and a fraction for a count.
        """
        if node is None:
            return cls()
        values = dict(node.items())
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown keys under {NODE}: {unknown}; known keys: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            kind = known[key].metadata["kind"]
            if value is None:
                if not known[key].metadata.get("nullable"):
                    raise ValueError(f"{NODE}.{key} must not be null")
                kwargs[key] = None
            elif kind is int:
                kwargs[key] = _integer(key, value)
            elif kind is float:
                kwargs[key] = float(value)
            elif kind is bool:
                if not isinstance(value, bool):
                    raise ValueError(f"{NODE}.{key} must be true or false, got {value!r}")
                kwargs[key] = value
            else:
                kwargs[key] = str(value)
        return cls(**kwargs)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ThinkingRMConfig:
        """Builds the config from the flags :func:`add_judge_arguments` added (an empty ``--api-key-env``: no key).

        Raises ``ValueError`` naming the flags (``--samples=2 needs --temperature > 0 ...``).
        """
        values = {f.name: getattr(args, f.name) for f in fields(cls) if f.metadata["cli"]}
        values["api_key_env"] = values["api_key_env"] or None
        with renamed_errors(flag_name):
            return cls(**values)


def add_judge_arguments(group: argparse._ActionsContainer) -> None:
    """Adds one ``--flag`` per judge setting (``timeout_s`` -> ``--timeout-s``) with the field's default and help;
    the training-only keys (``enable``, ``max_failure_rate``) get none."""
    for f in fields(ThinkingRMConfig):
        meta = f.metadata
        if not meta["cli"]:
            continue
        options: dict[str, Any] = {}
        if meta["help"] is not None:
            options["help"] = meta["help"]
        if meta["kind"] is bool:
            group.add_argument(flag_name(f.name), action="store_true", **options)
            continue
        if meta.get("required"):
            options["required"] = True
        else:
            options["default"] = f.default
        if meta.get("choices"):
            options["choices"] = meta["choices"]
        group.add_argument(flag_name(f.name), type=meta["kind"], **options)


def flag_name(name: str) -> str:
    """The command-line flag of setting ``name``: ``timeout_s`` -> ``--timeout-s``."""
    return "--" + name.replace("_", "-")


class renamed_errors:  # noqa: N801  (used as a ``with`` statement, like contextlib's helpers)
    """Context manager: a ``ValueError`` raised inside names the settings by ``rename(field)`` instead of
    ``reward.thinking_rm.<field>`` (the command line says ``--samples``, the Python API ``samples``)."""

    def __init__(self, rename) -> None:
        self.rename = rename

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, ValueError):
            message = re.sub(re.escape(NODE) + r"\.(\w+)", lambda m: self.rename(m.group(1)), str(exc))
            raise ValueError(message) from None
        return False


def _integer(key: str, value: Any) -> int:
    """``value`` as an int; a float with a fraction (``samples=2.5``) or a non-number raises ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{NODE}.{key} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"{NODE}.{key} must be an integer, got {value!r}")
    return int(number)
