"""MathVista testmini (``AI4Math/MathVista``): 1,000 rows, multiple choice and free-form.

Conversion: the prompt text is the row's ``query`` (the benchmark's own question with its hint on the answer's form
and, for multiple choice, its ``Choices``). The hub stores a multiple-choice gold as the option *text*, and several
options can share it (MathVista's official scorer compares option texts): the gold letters (``extra_info.answers``)
are every letter whose option text equals ``answer``; ``ground_truth`` is the first. Scoring (deterministic):

* multiple choice: the option letter the answer names (:func:`sophiavl.eval.choices.pick_option`, which also takes
  an option's text) is one of the gold letters;
* ``integer``: the answer's number (:func:`sophiavl.eval.numbers.answer_number`) equals the gold integer
  (``3.0`` counts as 3; ``2.7`` does not count as 2, as in VLMEvalKit's post-check; the official
  ``normalize_extracted_answer`` truncates it to 2);
* ``float``: both written with the row's ``precision`` decimals are equal (``1.50`` = ``1.5`` at precision 1;
  ``1.54`` = ``1.5``; no precision: 2 decimals);
* ``text``: equal after lower-casing and trimming white space and ``.,;:!``;
* ``list``: the same numbers in the same order, else the same normalised text.

A verdict is *decided* (see :class:`~sophiavl.eval.benchmarks.base.Verdict`) when an option or a number was found,
or when a text or list answer matches; otherwise the rules found no answer they can judge.

Aggregation: accuracy (%); sub-scores per task (``metadata.task``: TQA, MWP ...) and per skill (``metadata.skills``:
SCI, ARI, LOG ...), as in the paper's Table 1.
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
    accuracy,
    accuracy_by,
    choice_verdict,
    image_bytes,
)
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.choices import LETTERS, normalise_text, pick_option
from sophiavl.eval.numbers import answer_number, numbers_in
from sophiavl.eval.schema import EvalItem

ANSWER_TYPES = ("integer", "float", "text", "list")


def convert(row: Mapping[str, Any]) -> EvalItem:
    """One hub row -> :class:`EvalItem` (see the module docstring); raises :class:`Rejected`."""
    qtype = cell(row, "question_type")
    question = cell(row, "query") or cell(row, "question", reject_empty="empty_question")
    answer = cell(row, "answer", reject_empty="missing_answer")
    meta = row.get("metadata") or {}
    skills = [str(s) for s in (meta.get("skills") or [])]
    common = dict(
        id="",
        question=question,
        images=[image_bytes(row.get("decoded_image"), "decoded_image")],
        unit=cell(row, "unit") or None,
        category=str(meta.get("task") or "") or None,
        subcategory="|".join(skills) or None,
    )
    if qtype == "multi_choice":
        choices = [str(c).strip() for c in (row.get("choices") or [])]
        if not choices or len(choices) > len(LETTERS):
            raise Rejected("bad_options", f"choices={row.get('choices')!r}")
        if answer not in choices:
            raise Rejected("answer_not_an_option", f"answer {answer!r} is not one of {choices}")
        letters = [LETTERS[i] for i, c in enumerate(choices) if c == answer]
        return EvalItem(
            ground_truth=letters[0],
            problem_type="multiple choice",
            options=choices,
            show_options=False,
            answer_type=cell(row, "answer_type") or "text",
            answers=letters,
            **common,
        )
    if qtype != "free_form":
        raise Rejected("unknown_question_type", f"question_type={qtype!r}")
    atype = cell(row, "answer_type")
    if atype not in ANSWER_TYPES:
        raise Rejected("unknown_question_type", f"answer_type={atype!r}")
    precision = row.get("precision")
    ptype = "numerical" if atype in ("integer", "float") else "short answer"
    return EvalItem(
        ground_truth=answer,
        problem_type=ptype,
        answer_type=atype,
        precision=None if precision is None else float(precision),
        **common,
    )


def _round(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def verdict(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> Verdict:
    """The rules' verdict on ``answer`` (the extracted text) for the row (rules in the module docstring)."""
    if extra.get("problem_type") == "multiple choice":
        letter = pick_option(answer, int(extra["n_options"]), list(extra.get("options") or []))
        return choice_verdict(letter, list(extra.get("answers") or [ground_truth]))
    atype = extra.get("answer_type")
    if atype in ("integer", "float"):
        pred, gold = answer_number(answer), answer_number(ground_truth)
        if pred is None or gold is None:
            return Verdict(False, None, False)
        if atype == "integer":
            return Verdict(pred == gold, f"{pred:g}", True)
        precision = extra.get("precision")
        decimals = int(precision) if precision is not None else 2
        return Verdict(_round(pred, decimals) == _round(gold, decimals), _round(pred, decimals), True)
    if atype == "list":
        gold_numbers = numbers_in(ground_truth)
        if gold_numbers:
            found = numbers_in(answer)
            return Verdict(found == gold_numbers, str([f"{x:g}" for x in found]) if found else None, bool(found))
    right = normalise_text(answer) == normalise_text(ground_truth)
    return Verdict(right, normalise_text(answer) or None, right)


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    """1.0 when ``answer`` (the extracted text) is right for the row, else 0.0 (rules in the module docstring)."""
    return float(verdict(answer, ground_truth, extra).correct)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    """Accuracy (%), with per-task (``task/...``) and per-skill (``skill/...``) accuracies."""
    subs = accuracy_by(rows, prefix="task")
    subs |= accuracy_by(rows, lambda r: [s for s in (r.subcategory or "").split("|") if s], prefix="skill")
    return Aggregate(accuracy(rows), "%", subs)


BENCHMARK = Benchmark(
    name="mathvista",
    config=None,
    split="testmini",
    id_column="pid",
    convert=convert,
    verdict=verdict,
    aggregate=aggregate,
    how="accuracy (%) over testmini; option letters for multiple choice, numbers at the row's precision",
)
