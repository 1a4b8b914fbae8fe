"""MMBench dev, English (``lmms-lab/MMBench``, config ``en``, split ``dev``): options in columns ``A``-``D``; rows
whose ``index`` is 1,000,000 or more are rotated copies of question ``index % 1,000,000`` (circular evaluation).

Conversion: ``Hint: <hint>`` (when there is one) before the question, the non-empty options ``A``..``D`` listed;
gold = the ``answer`` letter; ``group`` = ``index % 1,000,000``. Scoring: the option letter the answer names
(:func:`sophiavl.eval.choices.pick_option`, letters or the option's exact text) equals the gold. Aggregation:
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
    accuracy,
    by_label,
    group_accuracy,
    groups_right,
    image_bytes,
)
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.choices import pick_option
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


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    return float(pick_option(answer, int(extra["n_options"]), list(extra.get("options") or [])) == ground_truth)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    """Circular accuracy (%) over all rows and per category, the plain ``row_accuracy`` and the ``questions``."""
    subs = {f"category/{k}": group_accuracy(m) for k, m in by_label(rows).items()}
    subs["row_accuracy"] = accuracy(rows)
    subs["questions"] = float(len(groups_right(rows)))
    return Aggregate(group_accuracy(rows), "%", subs)


BENCHMARK = Benchmark(
    name="mmbench",
    hub_id="lmms-lab/MMBench",
    config="en",
    split="dev",
    id_column="index",
    convert=convert,
    score=score,
    aggregate=aggregate,
    how="circular accuracy (%): a question counts when all its rotated copies (index % 1,000,000) are right",
)
