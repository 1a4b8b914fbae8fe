"""The eval recipe's verl reward function: one response of one prepared row -> its score and what the report needs.

``reward.custom_reward_function.path: pkg://sophiavl.eval.compute_score`` (recipe ``sophiavl_eval``). verl's naive
reward-loop manager calls :func:`compute_score` per response and copies every key of the returned dict into the
validation dump (``trainer.validation_data_dir``), which carries no dataset id of its own; so the row's ``extra_info``
keys the report aggregates by (:data:`ECHO_KEYS`) are echoed back, as strings, the same keys for every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sophiavl.eval.benchmarks import get
from sophiavl.eval.extract.answer import extract_answer, uses_answer_format

#: extra_info fields echoed into the returned dict (``""`` where the row has none)
ECHO_KEYS = ("benchmark", "id", "group", "version", "category", "subcategory")
#: the extracted answer is echoed as ``pred``, cut to this many characters
MAX_PRED_CHARS = 300


def score_response(response: str, ground_truth: Any, extra_info: Mapping[str, Any]) -> dict[str, Any]:
    """Scores ``response`` for the prepared row with ``ground_truth`` and ``extra_info`` (its ``benchmark`` picks the
    rule). Returns ``score`` and ``acc`` (both 0.0 or 1.0), ``answer_format`` (1.0 when the response used
    ``<answer>`` tags), ``pred`` (the extracted answer), ``pred_source`` (``answer``/``boxed``/``response``) and the
    :data:`ECHO_KEYS` as strings. Raises ``ValueError`` for a row without a known ``benchmark``."""
    name = extra_info.get("benchmark") if extra_info else None
    if not name:
        raise ValueError("extra_info has no 'benchmark': the row was not prepared by sophiavl.eval.prepare")
    bench = get(str(name))
    extracted = extract_answer(response or "")
    verdict = bench.verdict(extracted.text, str(ground_truth), extra_info)
    correct = float(verdict.correct)
    out: dict[str, Any] = {
        "score": correct,
        "acc": correct,
        "answer_format": 1.0 if uses_answer_format(response or "") else 0.0,
        "pred": extracted.text[:MAX_PRED_CHARS],
        "pred_source": extracted.source,
        "answer": (verdict.answer or "")[:MAX_PRED_CHARS],
        "decided_by": "rule" if verdict.decided else "none",
    }
    for key in ECHO_KEYS:
        value = extra_info.get(key)
        out[key] = "" if value is None else str(value)
    return out


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's custom-reward-function signature around :func:`score_response` (``data_source`` and verl's extra
    keyword arguments are not needed: the row's ``extra_info`` names its benchmark)."""
    return score_response(solution_str, ground_truth, extra_info or {})
