"""MMBench dev, English (``lmms-lab/MMBench``, config ``en``, split ``dev``): options in columns ``A``-``D``; rows
whose ``index`` is 1,000,000 or more are rotated copies of question ``index % 1,000,000`` (circular evaluation).

Conversion: ``Hint: <hint>`` (when there is one) before the question, the non-empty options ``A``..``D`` listed;
gold = the ``answer`` letter; ``group`` = ``index % 1,000,000``. Scoring: the option the answer names by VLMEvalKit's
``can_infer`` (:func:`sophiavl.eval.option_rules.vlmeval_choice`: one letter standing alone, else one option's text
inside the answer) equals the gold; no option found is undecided (wrong under the rules). Aggregation:
**circular accuracy** (%), a question counts only when every copy in its group is right; per ``category`` as
``category/<name>`` (also circular); ``row_accuracy`` is the plain per-row accuracy.
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
    by_label,
    choice_verdict,
    group_accuracy,
    groups_right,
    image_bytes,
)
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.choices import LETTERS
from sophiavl.eval.option_rules import vlmeval_choice
from sophiavl.eval.schema import EvalItem

CIRCULAR_MODULUS = 1_000_000
OPTION_COLUMNS = ("A", "B", "C", "D")


def convert(row: Mapping[str, Any]) -> EvalItem:
    question = cell(row, "question", reject_empty="empty_question")
    options = []
    for column in OPTION_COLUMNS:
        value = cell(row, column)
        if not value or value.lower() == "nan":
            break
        options.append(value)
    if len(options) < 2:
        raise Rejected("bad_options", f"{len(options)} non-empty options")
    answer = cell(row, "answer", reject_empty="missing_answer").upper()
    if answer not in OPTION_COLUMNS[: len(options)]:
        raise Rejected("answer_not_an_option", f"answer {answer!r} for {len(options)} options")
    hint = cell(row, "hint")
    if hint and hint.lower() != "nan":
        question = f"Hint: {hint}\n{question}"
    index = row.get("index")
    try:
        group = str(int(index) % CIRCULAR_MODULUS)
    except (TypeError, ValueError):
        raise Rejected("missing_id", f"index={index!r}") from None
    return EvalItem(
        id="",
        question=question,
        ground_truth=answer,
        problem_type="multiple choice",
        options=options,
        images=[image_bytes(row.get("image"), "image")],
        group=group,
        category=cell(row, "category") or None,
        subcategory=cell(row, "l2-category") or None,
    )


def option_map(extra: Mapping[str, Any]) -> dict[str, str]:
    """Letter -> option text of a prepared multiple-choice row (``""`` for texts it does not keep)."""
    texts = list(extra.get("options") or [])
    n = int(extra["n_options"])
    return {LETTERS[i]: (str(texts[i]) if i < len(texts) else "") for i in range(n)}


def verdict(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> Verdict:
    """VLMEvalKit's ``can_infer`` reading of ``answer`` against the gold letter (module docstring)."""
    return choice_verdict(vlmeval_choice(answer, option_map(extra)), [ground_truth])


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    return float(verdict(answer, ground_truth, extra).correct)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    """Circular accuracy (%) over all rows and per category, the plain ``row_accuracy`` and the ``questions``."""
    subs = {f"category/{k}": group_accuracy(m) for k, m in by_label(rows).items()}
    subs["row_accuracy"] = accuracy(rows)
    subs["questions"] = float(len(groups_right(rows)))
    return Aggregate(group_accuracy(rows), "%", subs)


BENCHMARK = Benchmark(
    name="mmbench",
    config="en",
    split="dev",
    id_column="index",
    convert=convert,
    verdict=verdict,
    aggregate=aggregate,
    how="circular accuracy (%): a question counts when all its rotated copies (index % 1,000,000) are right",
)
