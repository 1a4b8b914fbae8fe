"""One Thinking-156k record -> a validated :class:`Sample`, or a rejection with a reason.

Checks run in a fixed order and the first failure is the reported reason: record is an object, id, duplicate id
(within the record file, first occurrence kept), question, response, score, image path. Whether an image is shared
by too many questions, and the image's existence and content, are checked later
(:mod:`sophiavl.data_prep.thinking_156k.convert`), as they need the whole dataset or I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sophiavl.data_prep.records import RecordRejected, path_rejections
from sophiavl.data_prep.sources import normalize_relpath
from sophiavl.rewards.trm.prompt import strip_placeholders

# every rejection reason, in the order the checks run
REASONS = (
    "not_an_object",
    "missing_id",
    "duplicate_id",
    "empty_question",
    "empty_response",
    "score_not_a_number",
    "score_out_of_range",
    "score_off_grid",
    "too_many_images",
    "path_escapes_root",
    "image_shared",
    "image_missing",
    "image_only_in_archive",
    "image_unreadable",
    "image_too_large",
)

GRID_TOLERANCE = 1e-6


class SampleRejected(ValueError):
    """A record that is not converted. ``reason`` is one of :data:`REASONS`; ``detail`` is for people;
    ``sample_id`` is the record's id as far as it could be read (``None`` if absent)."""

    def __init__(self, reason: str, detail: str = "", sample_id: str | None = None):
        assert reason in REASONS, reason
        self.reason, self.detail, self.sample_id = reason, detail, sample_id
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass
class Sample:
    """A record that passed the field checks. ``question`` and ``response`` are as in the record (placeholders are
    stripped when the prompt is built, by the judge's own definition); ``score`` is on the grid 0.0, ..., 1.0;
    ``image_paths`` holds at most one normalized path relative to the dataset root (empty: text-only)."""

    sample_id: str
    question: str
    response: str
    score: float
    data_source: str
    image_paths: list[str] = field(default_factory=list)


def parse_score(value: Any) -> float:
    """A score from a record: a number or a numeric string (``0.7``, ``"0.7"``, ``" 1 "``) in [0, 1]; a value within
    1e-6 of the grid 0.0, 0.1, ..., 1.0 is snapped to it (``0.30000000000000004`` -> 0.3, ``1.0000004`` -> 1.0).

    Raises:
        SampleRejected: ``score_not_a_number`` (absent, null, a boolean, text that is no number, NaN, a list...),
            ``score_out_of_range`` (below 0 or above 1 by more than 1e-6, infinities included), ``score_off_grid``.
    """
    if isinstance(value, bool) or value is None:
        raise SampleRejected("score_not_a_number", f"score={value!r}")
    if isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            raise SampleRejected("score_not_a_number", f"score={value!r}") from None
    elif isinstance(value, int | float):
        x = float(value)
    else:
        raise SampleRejected("score_not_a_number", f"score is a {type(value).__name__}")
    if math.isnan(x):
        raise SampleRejected("score_not_a_number", f"score={value!r}")
    if not -GRID_TOLERANCE <= x <= 1 + GRID_TOLERANCE:
        raise SampleRejected("score_out_of_range", f"score={value!r} is outside [0, 1]")
    tenths = round(x * 10)
    if abs(x - tenths / 10) > GRID_TOLERANCE:
        raise SampleRejected("score_off_grid", f"score={value!r} is not on the grid 0.0, 0.1, ..., 1.0")
    return tenths / 10


def image_paths(value: Any) -> list[str]:
    """The record's image as a list of at most one normalized path.

    ``None``, ``""`` and ``[]`` mean a text-only row (``[]``); a path or a one-element list gives that path.

    Raises:
        SampleRejected: ``too_many_images`` (a list of two or more), ``path_escapes_root`` (absolute or climbing
            out of the root), ``image_missing`` (an empty path in a list, or a value that is not a path).
    """
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, list):
        if len(value) > 1:
            raise SampleRejected("too_many_images", f"{len(value)} images; a row has at most one")
        value = value[0]
    if not isinstance(value, str):
        raise SampleRejected("image_missing", f"the image field holds a {type(value).__name__}, not a path")
    try:
        with path_rejections():
            return [normalize_relpath(value)]
    except RecordRejected as e:  # path_rejections speaks the 130k converter's type; same reasons here
        raise SampleRejected(e.reason, e.detail) from None


def record_id(record: dict, key: str | None, position: int) -> str:
    """The record's id as a string: the value under ``key`` (an int or non-blank string), or ``str(position)``
    when the file has no id key (``key`` None). Raises :class:`SampleRejected` (``missing_id``) otherwise."""
    if key is None:
        return str(position)
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise SampleRejected("missing_id", f"{key}={value!r}")
    return str(value).strip()


def _text(record: dict, key: str, reason: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise SampleRejected(reason, f"{key} is {'absent' if value is None else 'a ' + type(value).__name__}")
    if not strip_placeholders(value):
        raise SampleRejected(reason, f"{key} is blank once media placeholders are removed")
    return value


def parse_sample(
    record: Any, fields: dict[str, str | None], position: int, seen_ids: set[str], default_source: str
) -> Sample:
    """Validates one record (no image I/O) and adds its id to ``seen_ids``.

    Args:
        record: the parsed JSON value.
        fields: role -> key for this record file (:func:`~sophiavl.data_prep.thinking_156k.fields.detect_fields`).
        position: the record's 0-based position in its file (the id when the file has no id key).
        seen_ids: ids already read in this file; updated in place.
        default_source: the data source when the record has none (the record file's name).

    Raises:
        SampleRejected: the first failed check (see the module docstring), with ``sample_id`` set when known.
    """
    sample_id = None
    try:
        if not isinstance(record, dict):
            raise SampleRejected("not_an_object", f"a {type(record).__name__}")
        sample_id = record_id(record, fields["id"], position)
        if sample_id in seen_ids:
            raise SampleRejected("duplicate_id", f"id {sample_id} appears earlier in the file")
        seen_ids.add(sample_id)
        question = _text(record, fields["question"], "empty_question")
        response = _text(record, fields["response"], "empty_response")
        score = parse_score(record.get(fields["score"]))
        paths = image_paths(record.get(fields["image"])) if fields["image"] else []
        source = record.get(fields["source"]) if fields["source"] else None
        source = source.strip() if isinstance(source, str) and source.strip() else default_source
        return Sample(sample_id, question, response, score, source, paths)
    except SampleRejected as e:
        e.sample_id = sample_id
        raise
