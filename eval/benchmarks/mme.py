"""MME (``lmms-lab/MME``, split ``test``): 2,374 yes/no questions, two per image (``question_id``), 14 subtasks.

Conversion: question as given (it ends with "Please answer yes or no."); gold = ``Yes``/``No``; ``group`` = the
``question_id`` (the image); no ids (the row's position is its id). Scoring: :func:`yes_no` of the answer equals the
gold; decided when the answer says yes or no (else no answer, wrong). Aggregation, as MME defines it: per subtask
``acc + acc+`` (both in %: ``acc`` over questions, ``acc+`` the share of images whose questions are all right),
summed over the 10 perception subtasks (max 2000) and the 4 cognition subtasks (max 800); the headline is their
total (max 2800).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sophiavl.eval.benchmarks.base import (
    Aggregate,
    Benchmark,
    Rejected,
    ScoredRow,
    Verdict,
    accuracy,
    group_accuracy,
    image_bytes,
)
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.schema import EvalItem

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
_WORDS = re.compile(r"[a-z]+")


def yes_no(answer: str) -> str | None:
    """``"yes"`` when the answer's words include "yes" and not "no", ``"no"`` for the reverse, else ``None``."""
    words = set(_WORDS.findall(answer.lower()))
    if "yes" in words and "no" not in words:
        return "yes"
    if "no" in words and "yes" not in words:
        return "no"
    return None


def convert(row: Mapping[str, Any]) -> EvalItem:
    question = cell(row, "question", reject_empty="empty_question")
    answer = cell(row, "answer")
    if answer.lower() not in ("yes", "no"):
        raise Rejected("missing_answer", f"answer {answer!r} is not Yes or No")
    category = cell(row, "category")
    if category not in PERCEPTION + COGNITION:
        raise Rejected("unknown_category", f"category={category!r}")
    qid = cell(row, "question_id")
    if not qid:
        raise Rejected("missing_id", "no question_id (image) to pair the questions by")
    return EvalItem(
        id="",
        question=question,
        ground_truth=answer.capitalize(),
        problem_type="yes/no",
        images=[image_bytes(row.get("image"), "image")],
        group=qid,
        category=category,
    )


def verdict(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> Verdict:
    """Right when :func:`yes_no` of the answer is the gold; undecided when it is neither."""
    said = yes_no(answer)
    return Verdict(said == ground_truth.strip().lower(), said, said is not None)


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    return float(verdict(answer, ground_truth, extra).correct)


def subtask_score(rows: list[ScoredRow]) -> tuple[float, float]:
    """``(acc, acc+)`` in % for one subtask's rows; acc+ over images (``group``), each right when all its rows are."""
    return accuracy(rows), group_accuracy(rows)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    subs: dict[str, float] = {}
    totals = {"perception": 0.0, "cognition": 0.0}
    for name in PERCEPTION + COGNITION:
        members = [r for r in rows if r.category == name]
        if not members:
            continue
        acc, acc_plus = subtask_score(members)
        subs[f"subtask/{name}"] = acc + acc_plus
        totals["perception" if name in PERCEPTION else "cognition"] += acc + acc_plus
    subs |= totals
    return Aggregate(totals["perception"] + totals["cognition"], "points", subs)


BENCHMARK = Benchmark(
    name="mme",
    config=None,
    split="test",
    id_column=None,
    convert=convert,
    verdict=verdict,
    aggregate=aggregate,
    how="sum over subtasks of acc + acc+ (%; acc+ = images with both questions right): perception (10) + cognition (4)",
)
