"""MMStar (``Lin-Chen/MMStar``, split ``val``): 1,500 multiple-choice rows with their options inside the question.

Conversion: the question as given (``Options: A: ..., B: ...`` included); gold = the ``answer`` letter. Scoring:
the option letter the answer names (:func:`sophiavl.eval.choices.pick_option`, letters only) equals the gold.
Aggregation: accuracy (%), per ``category`` as ``category/<name>``; no circular evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sophiavl.eval.benchmarks.base import Aggregate, Benchmark, Rejected, ScoredRow, category_accuracy, image_bytes
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.choices import LETTERS, pick_option
from sophiavl.eval.schema import EvalItem

_LISTED = re.compile(r"(?<![A-Za-z])([A-H]):")


def n_options(question: str, gold: str) -> int:
    """Options offered: up to the highest ``X:`` letter in the question and at least up to the gold letter."""
    found = [LETTERS.index(x) + 1 for x in _LISTED.findall(question)]
    return max(found + [LETTERS.index(gold) + 1, 2])


def convert(row: Mapping[str, Any]) -> EvalItem:
    question = cell(row, "question", reject_empty="empty_question")
    answer = cell(row, "answer", reject_empty="missing_answer").upper()
    if len(answer) != 1 or answer not in LETTERS:
        raise Rejected("answer_not_an_option", f"answer {answer!r} is not an option letter")
    return EvalItem(
        id="",
        question=question,
        ground_truth=answer,
        problem_type="multiple choice",
        images=[image_bytes(row.get("image"), "image")],
        show_options=False,
        n_options=n_options(question, answer),
        category=cell(row, "category") or None,
        subcategory=cell(row, "l2_category") or None,
    )


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    return float(pick_option(answer, int(extra["n_options"])) == ground_truth)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    return category_accuracy(rows, "category")


BENCHMARK = Benchmark(
    name="mmstar",
    hub_id="Lin-Chen/MMStar",
    config=None,
    split="val",
    id_column="index",
    convert=convert,
    score=score,
    aggregate=aggregate,
    how="accuracy (%) of the option letter",
)
