"""MMStar (``Lin-Chen/MMStar``, split ``val``): 1,500 multiple-choice rows with their options inside the question.

Conversion: the question as given (``Options: A: ..., B: ...`` included, so the prompt lists no options again);
gold = the ``answer`` letter; the option texts are read out of the question
(:func:`sophiavl.eval.option_rules.options_from_question`) into ``extra_info.options``. Scoring: the option the answer
names by VLMEvalKit's ``can_infer`` (one letter standing alone, else one option's text inside the answer) equals the
gold (:func:`sophiavl.eval.benchmarks.mmbench.verdict`).
Aggregation: accuracy (%), per ``category`` as ``category/<name>``; no circular evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sophiavl.eval.benchmarks.base import Aggregate, Benchmark, Rejected, ScoredRow, category_accuracy, image_bytes
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.benchmarks.mmbench import verdict
from sophiavl.eval.choices import LETTERS
from sophiavl.eval.option_rules import options_from_question
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
    n = n_options(question, answer)
    return EvalItem(
        id="",
        question=question,
        ground_truth=answer,
        problem_type="multiple choice",
        images=[image_bytes(row.get("image"), "image")],
        options=options_from_question(question, n),
        show_options=False,
        n_options=n,
        category=cell(row, "category") or None,
        subcategory=cell(row, "l2_category") or None,
    )


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    return float(verdict(answer, ground_truth, extra).correct)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    return category_accuracy(rows, "category")


BENCHMARK = Benchmark(
    name="mmstar",
    config=None,
    split="val",
    id_column="index",
    convert=convert,
    verdict=verdict,
    aggregate=aggregate,
    how="accuracy (%) of the option letter",
)
