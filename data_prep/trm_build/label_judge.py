"""Asking the large judge for one row's labels, through the project's judge client.

:class:`LabelJudge` is :class:`sophiavl.rewards.trm.client.ThinkingJudge` (concurrency, retries with backoff, the
bearer header, the served-model lookup, K samples per request) with two differences: its replies are read on the
grid by :func:`~sophiavl.data_prep.trm_build.labelling.parse_label` (a reply off the grid is an error, never a
clamped score), and it may ask vLLM to choose among the eleven grid strings (structured output, "guided choice").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sophiavl.data_prep.trm_build.labelling import GRID_CHOICES, parse_label
from sophiavl.rewards.trm.client import ThinkingJudge
from sophiavl.rewards.trm.codes import (
    ERROR_BAD_INPUT,
    ERROR_CONNECTION,
    ERROR_MALFORMED,
    ERROR_NONE,
    ERROR_TIMEOUT,
    ERROR_UNPARSEABLE,
)

#: ``--structured-style``: the request field the grid goes in. ``structured_outputs`` is vLLM >= 0.10.2's
#: ``{"structured_outputs": {"choice": [...]}}`` (vLLM 0.30 reads it, ``StructuredOutputsParams.choice``);
#: ``guided_choice`` is older vLLM's top-level ``{"guided_choice": [...]}``.
STRUCTURED_STYLES = ("structured_outputs", "guided_choice")
#: ``--structured-output``: ``auto`` sends it and stops when the server rejects it (HTTP 400), ``on`` always, ``off``
#: never.
STRUCTURED_MODES = ("auto", "on", "off")

_KINDS = {
    ERROR_TIMEOUT: "timeout",
    ERROR_CONNECTION: "connection",
    ERROR_MALFORMED: "malformed",
    ERROR_BAD_INPUT: "bad_input",
}


@dataclass(frozen=True)
class Labels:
    """The K samples of one row: ``scores`` (a grid value or None), ``raw`` replies (None where none came) and
    ``errors`` (None, or ``"<kind>: <detail>"``: ``off_grid``, ``unparsable``, ``timeout``, ``connection``,
    ``http_<code>``, ``malformed``, ``bad_input``).

    ``unreachable`` is True when no sample got a reply and the failure is one that asking later may cure (timeout,
    connection error, 429, 5xx, after the client's retries): such a row is not written, so that a rerun asks again.
    ``status`` is the HTTP status every sample failed with (0 when not all did so)."""

    scores: list[float | None]
    raw: list[str | None]
    errors: list[str | None]
    unreachable: bool
    status: int
    detail: str


class LabelJudge(ThinkingJudge):
    """The judge client for annotation. ``structured_style`` None sends no structured output; otherwise one of
    :data:`STRUCTURED_STYLES` (it may be set to None later, e.g. after the server rejected it). Every other
    argument is :class:`~sophiavl.rewards.trm.client.ThinkingJudge`'s; its ``constrain_output`` (the RL judge's
    ``<answer>`` regex) stays off."""

    def __init__(self, *args: Any, structured_style: str | None = None, **kwargs: Any) -> None:
        if structured_style is not None and structured_style not in STRUCTURED_STYLES:
            raise ValueError(f"structured_style must be one of {STRUCTURED_STYLES} or None, not {structured_style!r}")
        super().__init__(*args, constrain_output=False, **kwargs)
        self.structured_style = structured_style

    def _payload(self, messages: list[dict], n: int = 1, seed: int | None = None) -> dict[str, Any]:
        payload = super()._payload(messages, n, seed)
        if self.structured_style == "structured_outputs":
            payload["structured_outputs"] = {"choice": list(GRID_CHOICES)}
        elif self.structured_style == "guided_choice":
            payload["guided_choice"] = list(GRID_CHOICES)
        return payload

    async def label(self, question: str, response: str, image: bytes | None) -> Labels:
        """The K = ``samples`` labels of ``response`` to ``question`` (with the row's encoded ``image``, or None).
        Never raises for server or network trouble; see :class:`Labels`."""
        judgement = await self.judge(question, response, image)
        scores: list[float | None] = []
        errors: list[str | None] = []
        for code, text in zip(judgement.sample_errors, judgement.replies, strict=True):
            if code in (ERROR_NONE, ERROR_UNPARSEABLE) and isinstance(text, str):
                score, error = parse_label(text)
            elif code > 0:
                score, error = None, f"http_{code}: {judgement.detail}"[:300]
            else:
                score, error = None, f"{_KINDS.get(code, 'error')}: {judgement.detail}"[:300]
            scores.append(score)
            errors.append(error)
        codes = set(judgement.sample_errors)
        no_reply = all(text is None for text in judgement.replies)
        retryable = all(c in (ERROR_TIMEOUT, ERROR_CONNECTION) or c == 429 or c >= 500 for c in codes)
        status = next(iter(codes)) if len(codes) == 1 and next(iter(codes)) > 0 else 0
        return Labels(
            scores=scores,
            raw=list(judgement.replies),
            errors=errors,
            unreachable=no_reply and retryable,
            status=status,
            detail=judgement.detail,
        )
