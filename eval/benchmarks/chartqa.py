"""ChartQA test (``HuggingFaceM4/ChartQA``: ``query``, ``label`` list, ``human_or_machine``; or ``lmms-lab/ChartQA``:
``question``, ``answer``, ``type``): 2,500 rows, no ids (the row's position in the split is its id).

Scoring: **relaxed accuracy**, ChartQA's official metric (:func:`relaxed_correct`), best over the gold labels. No
model is ever asked (VLMEvalKit scores ChartQA by this rule alone): a non-empty answer is always decided.
Aggregation: accuracy (%) over all rows (human and augmented together, as the paper reports it), with the two parts
as ``part/human`` and ``part/augmented``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sophiavl.eval.benchmarks.base import (
    Aggregate,
    Benchmark,
    Rejected,
    ScoredRow,
    Verdict,
    category_accuracy,
    image_bytes,
)
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.schema import EvalItem

#: the official tolerance: a numeric answer within 5 % of the gold value (relative) is right
RELATIVE_TOLERANCE = 0.05
_PARTS = {
    "0": "human",
    "1": "augmented",
    "human_test": "human",
    "augmented_test": "augmented",
    "human": "human",
    "augmented": "augmented",
    "machine": "augmented",
}


def _as_float(text: str) -> float | None:
    """The official conversion: ``float(text)``, with a trailing ``%`` meaning "divide by 100"; else ``None``."""
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_correct(prediction: str, target: str) -> bool:
    """ChartQA's relaxed accuracy for one gold label: when both parse as numbers and the gold is not 0, right iff
    ``|pred - gold| / |gold| <= 0.05``; otherwise right iff equal ignoring case (both stripped). Note the official
    quirks kept here: ``"12%"`` is 0.12 (so it does not match a gold ``"12"``) and thousands separators are not
    understood (``"1,000"`` is text)."""
    prediction, target = prediction.strip(), target.strip()
    p, t = _as_float(prediction), _as_float(target)
    if p is not None and t is not None and t != 0:
        return abs(p - t) / abs(t) <= RELATIVE_TOLERANCE
    return prediction.lower() == target.lower()


def convert(row: Mapping[str, Any]) -> EvalItem:
    question = cell(row, "query") or cell(row, "question", reject_empty="empty_question")
    labels = row.get("label")
    if labels is None:
        labels = [row.get("answer")] if row.get("answer") is not None else []
    labels = [str(x).strip() for x in (labels if isinstance(labels, list) else [labels]) if str(x).strip()]
    if not labels:
        raise Rejected("missing_answer")
    part = cell(row, "human_or_machine") or cell(row, "type")
    return EvalItem(
        id="",
        question=question,
        ground_truth=labels[0],
        problem_type="short answer",
        answers=labels,
        images=[image_bytes(row.get("image"), "image")],
        category=_PARTS.get(part, part or None),
    )


def verdict(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> Verdict:
    """Right when :func:`relaxed_correct` holds for one of the gold labels; decided whenever the answer is not
    empty."""
    labels = list(extra.get("answers") or [ground_truth])
    text = answer.strip()
    return Verdict(any(relaxed_correct(text, label) for label in labels), text or None, bool(text))


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    return float(verdict(answer, ground_truth, extra).correct)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    return category_accuracy(rows, "part")


BENCHMARK = Benchmark(
    name="chartqa",
    config=None,
    split="test",
    id_column=None,
    convert=convert,
    verdict=verdict,
    aggregate=aggregate,
    how="relaxed accuracy (%): numbers within 5 % of a gold label, else case-insensitive exact match",
)
