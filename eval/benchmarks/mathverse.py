"""MathVerse testmini (``AI4Math/MathVerse``, config ``testmini``): 788 problems x 5 versions = 3,940 rows.

Conversion: the row's ``question`` (the options of a multiple-choice row are part of it; in the Vision Only version
the question itself is in the image); gold = ``answer``. Scoring:

* ``multi-choice``: the option letter the answer names equals the gold letter (options are not listed separately,
  so only letters are read: :func:`sophiavl.eval.choices.pick_option` without option texts);
* ``free-form``: math-verify equivalence (:func:`sophiavl.rewards.outcome_scorers.numerical_score`), else equal
  normalised text.

This is a **rule-based lower bound** of the official score: the paper's 48.8 comes from VLMEvalKit's two-stage
gpt-4o-mini judge (extract, then judge equivalence), which also accepts answers rules cannot read (units, words,
equivalent forms math-verify misses); one public comparison found 49.0 with rules against 55.1 with the judge.

Aggregation: accuracy (%) per ``problem_version``; the headline is the mean over the versions present (the paper's
"AVG" of Text Dominant, Text Lite, Vision Intensive, Vision Dominant, Vision Only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sophiavl.eval.benchmarks.base import Aggregate, Benchmark, Rejected, ScoredRow, accuracy, accuracy_by, image_bytes
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.choices import LETTERS, normalise_text, pick_option
from sophiavl.eval.schema import EvalItem
from sophiavl.rewards.outcome_scorers import numerical_score

_LISTED = re.compile(r"(?m)^\s*\(?([A-H])[:.)]")


def n_options(question: str, gold: str) -> int:
    """How many options a multiple-choice question offers: up to the highest letter listed at the start of a line
    (``A:``, ``B.``, ``(C)``), and at least up to the gold letter; 4 when none is listed (Vision Only)."""
    listed = [LETTERS.index(x) + 1 for x in _LISTED.findall(question)]
    gold_n = LETTERS.index(gold) + 1
    return max(listed + [gold_n]) if listed else max(4, gold_n)


def convert(row: Mapping[str, Any]) -> EvalItem:
    question = cell(row, "question", reject_empty="empty_question")
    answer = cell(row, "answer", reject_empty="missing_answer")
    qtype = cell(row, "question_type")
    meta = row.get("metadata") or {}
    common = dict(
        id="",
        question=question,
        images=[image_bytes(row.get("image"), "image")],
        group=cell(row, "problem_index") or None,
        version=cell(row, "problem_version") or None,
        category=str(meta.get("subject") or "") or None,
        subcategory=str(meta.get("subfield") or "") or None,
    )
    if qtype == "multi-choice":
        letter = answer.strip("() .").upper()
        if len(letter) != 1 or letter not in LETTERS:
            raise Rejected("answer_not_an_option", f"answer {answer!r} is not an option letter")
        return EvalItem(
            ground_truth=letter,
            problem_type="multiple choice",
            show_options=False,
            n_options=n_options(question, letter),
            **common,
        )
    if qtype != "free-form":
        raise Rejected("unknown_question_type", f"question_type={qtype!r}")
    return EvalItem(ground_truth=answer, problem_type="expression", **common)


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    """1.0 when right (module docstring), else 0.0."""
    if extra.get("problem_type") == "multiple choice":
        return float(pick_option(answer, int(extra["n_options"])) == ground_truth)
    if numerical_score(answer, ground_truth) == 1.0:
        return 1.0
    return float(bool(normalise_text(answer)) and normalise_text(answer) == normalise_text(ground_truth))


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    """Mean over versions of the per-version accuracy (%); each version's accuracy kept as ``version/<name>``."""
    versions = accuracy_by(rows, lambda r: [r.version or "unknown"], prefix="version")
    headline = sum(versions.values()) / len(versions) if versions else 0.0
    return Aggregate(headline, "%", versions | {"overall_accuracy": accuracy(rows)})


BENCHMARK = Benchmark(
    name="mathverse",
    hub_id="AI4Math/MathVerse",
    config="testmini",
    split="testmini",
    id_column="sample_index",
    convert=convert,
    score=score,
    aggregate=aggregate,
    how="mean over the 5 versions of accuracy (%); letters for multiple choice, math-verify for free-form "
    "(a rule-based lower bound of the GPT-judged score)",
)
