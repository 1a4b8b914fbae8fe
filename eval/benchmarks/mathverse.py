"""MathVerse testmini (``AI4Math/MathVerse``, config ``testmini``): 788 problems x 5 versions = 3,940 rows.

Conversion: the row's ``question`` (the options of a multiple-choice row are part of it; in the Vision Only version
the question itself is in the image); gold = ``answer``. Scoring:

* ``multi-choice``: the option letter the answer names equals the gold letter (options are not listed separately,
  so only letters are read: :func:`sophiavl.eval.choices.pick_option` without option texts);
* ``free-form``: math-verify equivalence (:func:`sophiavl.rewards.outcome.scorers.numerical_score`), else equal
  normalised text.

Rules decide a multiple-choice row when they find an option letter, and a free-form row only when they find it
right (they cannot rule out an equivalent form they do not know); the rest is undecided and goes to a model under
``--extract-url`` (:mod:`sophiavl.eval.extract.model`, which judges equivalence as VLMEvalKit's second stage does).

Without a model this is a **rule-based lower bound** of the official score: the paper's 48.8 comes from
VLMEvalKit's two-stage gpt-4o-mini judge (extract, then judge equivalence), which also accepts answers rules cannot
read (units, words, equivalent forms math-verify misses); one public comparison found 49.0 with rules against 55.1
with the judge.

Aggregation: the headline is right / total over all rows, the official "Acc" (``evaluation/score_answer_s2.py`` of
``ZrrSkywalker/MathVerse``); on the full testmini, with 788 rows per version, it equals the paper's "AVG" (the mean
of the five versions). Each version's accuracy is kept as ``version/<name>``, their mean as ``mean_of_versions``.
"""

from __future__ import annotations

import logging
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
    accuracy_by,
    choice_verdict,
    image_bytes,
)
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.choices import LETTERS, normalise_text, pick_option
from sophiavl.eval.schema import EvalItem
from sophiavl.rewards.outcome.bounded import DEFAULT_TIMEOUT_S, shared_pool

logger = logging.getLogger(__name__)

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
        judge_question=cell(row, "question_for_eval") or None,
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


def verdict(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> Verdict:
    """The rules' verdict (module docstring)."""
    if extra.get("problem_type") == "multiple choice":
        return choice_verdict(pick_option(answer, int(extra["n_options"])), [ground_truth])
    # math-verify in a helper process with a wall-clock bound: verl's validation scores from worker threads, where
    # math-verify's own timeout does nothing (rewards/outcome/bounded.py); a scoring that times out is not a match
    equivalent = shared_pool().score("numerical", answer, ground_truth, DEFAULT_TIMEOUT_S)
    if equivalent.failed:
        logger.warning("MathVerse: the math-verify check of %r failed (%s): compared as text", answer[:200],
                       equivalent.reason)  # fmt: skip
    elif equivalent.score == 1.0:
        return Verdict(True, answer.strip(), True)
    same = bool(normalise_text(answer)) and normalise_text(answer) == normalise_text(ground_truth)
    return Verdict(same, answer.strip() or None, same)


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    """1.0 when right (module docstring), else 0.0."""
    return float(verdict(answer, ground_truth, extra).correct)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    """Right / total (%) over all rows; each version's accuracy as ``version/<name>`` and their mean."""
    versions = accuracy_by(rows, lambda r: [r.version or "unknown"], prefix="version")
    mean = sum(versions.values()) / len(versions) if versions else 0.0
    return Aggregate(accuracy(rows), "%", versions | {"mean_of_versions": mean})


BENCHMARK = Benchmark(
    name="mathverse",
    config="testmini",
    split="testmini",
    id_column="sample_index",
    convert=convert,
    verdict=verdict,
    aggregate=aggregate,
    how="accuracy (%) over all rows (the official Acc; per version kept); letters for multiple choice, math-verify "
    "for free-form (without a model, a lower bound of the GPT-judged score)",
)
