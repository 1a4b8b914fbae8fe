"""What every benchmark module provides, and the helpers they share (rejections, images, scored rows)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sophiavl.data_prep.imagecheck import ImageRejected, probe_image
from sophiavl.eval.schema import EvalItem

#: every reason a hub row is not converted
REASONS = (
    "missing_id",
    "duplicate_id",
    "empty_question",
    "missing_answer",
    "bad_options",
    "answer_not_an_option",
    "unknown_question_type",
    "unknown_category",
    "image_missing",
    "image_unreadable",
    "image_too_large",
)


class Rejected(ValueError):
    """A hub row that cannot be converted; ``reason`` is one of :data:`REASONS`, ``detail`` is for people."""

    def __init__(self, reason: str, detail: str = ""):
        assert reason in REASONS, reason
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


#: how a row's verdict was reached: by the rules, by the extraction model, or by nothing (no answer found: wrong)
DECIDED_BY = ("rule", "model", "none")


@dataclass(frozen=True)
class Verdict:
    """A rule's verdict on one answer: ``correct``; ``answer`` the normalised answer it compared (an option letter,
    a number, the text), ``None`` when it found none; ``decided`` whether the rules reached a verdict they trust
    (``False``: no answer found, or a free-form answer they cannot match; such a row is wrong under the rules and is
    the one a model may decide, see :mod:`sophiavl.eval.extract.model`)."""

    correct: bool
    answer: str | None
    decided: bool


@dataclass(frozen=True)
class ScoredRow:
    """One prepared row after scoring: ``correct`` in {0.0, 1.0} under the protocol used; ``rule_correct`` the
    rules-only verdict (``None``: the same as ``correct``); ``decided_by`` one of :data:`DECIDED_BY`;
    ``answer_format`` whether the response used ``<answer>`` tags; ``missing`` when no response was found for it
    (then ``correct`` is 0). ``group`` .. ``subcategory`` are the row's ``extra_info`` grouping keys (``None`` where
    the benchmark has none); ``audit`` holds what ``rows.jsonl`` shows of it (extracted answer, gold, model reply)."""

    benchmark: str
    id: str
    correct: float
    answer_format: bool = False
    missing: bool = False
    group: str | None = None
    version: str | None = None
    category: str | None = None
    subcategory: str | None = None
    rule_correct: float | None = None
    decided_by: str = "rule"
    audit: dict | None = None

    @property
    def rules_only(self) -> float:
        """The rules-only verdict (``correct`` when no model changed it)."""
        return self.correct if self.rule_correct is None else self.rule_correct


@dataclass(frozen=True)
class Aggregate:
    """A benchmark's numbers as the paper reports them: ``score`` the headline (``unit`` ``"%"`` for accuracies,
    ``"points"`` for MME), ``sub_scores`` the named parts (same unit unless the name says otherwise)."""

    score: float
    unit: str
    sub_scores: dict[str, float]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its split and id column, how a hub row converts, how a response scores, how rows aggregate.

    ``id_column`` is ``None`` when the benchmark has no unique id (the row's position in the split is used).
    ``convert(row)`` returns an :class:`EvalItem` whose ``id`` may be empty (filled by the caller) or raises
    :class:`Rejected`. ``verdict(answer, ground_truth, extra_info)`` takes the extracted answer text and returns a
    :class:`Verdict`. ``aggregate(rows)`` turns the benchmark's scored rows into an :class:`Aggregate`.
    """

    name: str
    config: str | None
    split: str
    id_column: str | None
    convert: Callable[[Mapping[str, Any]], EvalItem]
    verdict: Callable[[str, str, Mapping[str, Any]], Verdict]
    aggregate: Callable[[list[ScoredRow]], Aggregate]
    how: str  # one sentence: how the headline number is computed

    def score(self, answer: str, ground_truth: str, extra_info: Mapping[str, Any]) -> float:
        """1.0 when the rules find ``answer`` right, else 0.0."""
        return float(self.verdict(answer, ground_truth, extra_info).correct)


def choice_verdict(letter: str | None, accepted: list[str]) -> Verdict:
    """The verdict on a multiple-choice answer whose option a rule read as ``letter`` (``None``: no option found,
    undecided and wrong; ``"Z"``: the answer names no option, decided and wrong): right when it is one of
    ``accepted``."""
    return Verdict(letter is not None and letter in accepted, letter, letter is not None)


def image_bytes(value: Any, column: str) -> bytes:
    """The original bytes of a ``datasets`` Image cell (``{"bytes": ..., "path": ...}``), checked to be an image.

    Raises :class:`Rejected`: ``image_missing`` (null cell or no bytes), ``image_unreadable``, ``image_too_large``.
    """
    data = value.get("bytes") if isinstance(value, Mapping) else value if isinstance(value, bytes) else None
    if not data:
        raise Rejected("image_missing", f"column {column!r} has no image bytes")
    try:
        probe_image(data)
    except ImageRejected as e:
        raise Rejected(e.reason, f"column {column!r}: {e.detail}") from None
    return bytes(data)


def text(row: Mapping[str, Any], column: str, reject_empty: str | None = None) -> str:
    """``row[column]`` as stripped text; ``None`` and missing columns give ``""``, or raise :class:`Rejected` with the
    reason ``reject_empty`` when one is given."""
    value = row.get(column)
    out = "" if value is None else str(value).strip()
    if not out and reject_empty:
        raise Rejected(reject_empty)
    return out


def accuracy(rows: list[ScoredRow]) -> float:
    """100 * mean of ``correct`` over ``rows``; 0.0 for none."""
    return 100.0 * sum(r.correct for r in rows) / len(rows) if rows else 0.0


def categories(row: ScoredRow) -> list[str]:
    """``[row.category]``, or ``[]`` when it has none: the default ``key`` of :func:`by_label`, :func:`accuracy_by`."""
    return [row.category] if row.category else []


def by_label(rows: list[ScoredRow], key: Callable[[ScoredRow], list[str]] = categories) -> dict[str, list[ScoredRow]]:
    """Label -> its rows, labels sorted; ``key(row)`` gives the row's labels (a row may count for several, none for
    none; by default its category)."""
    buckets: dict[str, list[ScoredRow]] = {}
    for r in rows:
        for label in key(r):
            buckets.setdefault(label, []).append(r)
    return dict(sorted(buckets.items()))


def accuracy_by(
    rows: list[ScoredRow], key: Callable[[ScoredRow], list[str]] = categories, prefix: str = ""
) -> dict[str, float]:
    """Accuracy (%) per label (:func:`by_label`; by default the row's ``category``), labels sorted and written
    ``<prefix>/<label>`` when ``prefix`` is given."""
    return {f"{prefix}/{label}" if prefix else label: accuracy(b) for label, b in by_label(rows, key).items()}


def category_accuracy(rows: list[ScoredRow], prefix: str) -> Aggregate:
    """The plain accuracy (%) as the headline, with each category's accuracy as ``<prefix>/<category>`` (rows without
    a category count in the headline only)."""
    return Aggregate(accuracy(rows), "%", accuracy_by(rows, prefix=prefix))


def groups_right(rows: list[ScoredRow]) -> dict[str, bool]:
    """Group -> whether every row of the group is right (``correct`` 1.0); a row without a ``group`` is its own
    group."""
    out: dict[str, bool] = {}
    for r in rows:
        key = r.group if r.group is not None else f"row:{r.id}"
        out[key] = out.get(key, True) and r.correct == 1.0
    return out


def group_accuracy(rows: list[ScoredRow]) -> float:
    """Share (%) of groups (:func:`groups_right`) whose rows are all right; 0.0 for none."""
    groups = groups_right(rows)
    return 100.0 * sum(groups.values()) / len(groups) if groups else 0.0
