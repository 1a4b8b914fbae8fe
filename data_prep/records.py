"""One released record -> a validated :class:`Problem`, or a rejection with a reason.

Checks run in a fixed order and the first failure is the reported reason: record is an object, id, duplicate id
(within the subset, first occurrence kept), problem_type, question, answer, options (multiple choice), image path.
Image existence and content are checked later (:mod:`sophiavl.data_prep.convert`), as they need I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .prompts import PROBLEM_TYPES, strip_media_tokens
from .sources import ImageMissing, PathEscapesRoot, normalize_relpath

# every rejection reason, in the order the checks run
REASONS = (
    "not_an_object",
    "missing_id",
    "duplicate_id",
    "unknown_problem_type",
    "empty_question",
    "missing_answer",
    "mc_without_options",
    "path_escapes_root",
    "image_missing",
    "image_only_in_archive",
    "image_unreadable",
    "image_too_large",
)


class RecordRejected(ValueError):
    """A record that is not converted. ``reason`` is one of :data:`REASONS`; ``detail`` is for people.
    ``problem_id`` is the record's id as far as it could be read (set by :func:`parse_record`; ``None`` if absent).
    """

    def __init__(self, reason: str, detail: str = "", problem_id: str | None = None):
        assert reason in REASONS, reason
        self.reason, self.detail, self.problem_id = reason, detail, problem_id
        super().__init__(f"{reason}: {detail}" if detail else reason)


@contextmanager
def path_rejections() -> Iterator[None]:
    """Turns :class:`PathEscapesRoot` / :class:`ImageMissing` raised inside the block into :class:`RecordRejected`
    (``path_escapes_root`` / ``image_missing``)."""
    try:
        yield
    except PathEscapesRoot as e:
        raise RecordRejected("path_escapes_root", str(e)) from None
    except ImageMissing as e:
        raise RecordRejected("image_missing", str(e)) from None


@dataclass
class Problem:
    """A record that passed the field checks. ``image_paths`` are normalized and relative to the dataset root
    (empty for text-only records); ``problem_id`` is the id as a string; ``answer`` has no ``<answer>`` tags."""

    problem_id: str
    problem_type: str
    question: str
    answer: str
    options: list[str] = field(default_factory=list)
    data_source: str = ""
    image_paths: list[str] = field(default_factory=list)


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_ANSWER_TAG = re.compile(r"</?answer>")


def extract_answer(solution: Any) -> str:
    """The ground truth from a ``solution`` field.

    ``"<answer> 42 </answer>"`` -> ``"42"`` (the first tagged span, stripped). A solution without a complete tag
    pair is taken whole, with stray tags removed. Numbers are converted with ``str``. ``None``, booleans,
    containers and blank text give ``""`` (the caller rejects it as ``missing_answer``).
    """
    if isinstance(solution, bool) or solution is None:
        return ""
    if isinstance(solution, int | float):
        return str(solution)
    if not isinstance(solution, str):
        return ""
    m = _ANSWER.search(solution)
    text = m.group(1) if m else _ANSWER_TAG.sub("", solution)
    return text.strip()


def record_id(record: dict) -> str:
    """The record's ``problem_id`` as a string. Raises :class:`RecordRejected` (``missing_id``) when it is absent,
    blank, or not an int/str."""
    pid = record.get("problem_id")
    if isinstance(pid, bool) or not isinstance(pid, int | str) or not str(pid).strip():
        raise RecordRejected("missing_id", f"problem_id={pid!r}")
    return str(pid).strip()


def parse_record(record: Any, subset: str, seen_ids: set[str]) -> Problem:
    """Validates the fields of one record (no image I/O) and adds its id to ``seen_ids``.

    Args:
        record: the parsed JSON value.
        subset: name of the record file's subset (its file stem, e.g. ``math``).
        seen_ids: ids already read in this subset; updated in place.

    Raises:
        RecordRejected: the first failed check (see the module docstring), with ``problem_id`` set to the
            record's ``problem_id`` as a stripped string (``None`` when absent or the record is not an object).
    """
    try:
        return _parse(record, subset, seen_ids)
    except RecordRejected as e:
        raw = record.get("problem_id") if isinstance(record, dict) else None
        e.problem_id = None if raw is None else str(raw).strip()
        raise


def _parse(record: Any, subset: str, seen_ids: set[str]) -> Problem:
    if not isinstance(record, dict):
        raise RecordRejected("not_an_object", f"a {type(record).__name__}")
    pid = record_id(record)
    if pid in seen_ids:
        raise RecordRejected("duplicate_id", f"problem_id {pid} appears earlier in {subset}")
    seen_ids.add(pid)

    ptype = record.get("problem_type")
    ptype = ptype.strip() if isinstance(ptype, str) else ptype
    if ptype not in PROBLEM_TYPES:
        raise RecordRejected("unknown_problem_type", f"problem_type={record.get('problem_type')!r}")

    question = record.get("problem")
    question = strip_media_tokens(question) if isinstance(question, str) else ""
    if not question:
        raise RecordRejected("empty_question")

    answer = extract_answer(record.get("solution"))
    if not answer:
        raise RecordRejected("missing_answer", f"solution={record.get('solution')!r}")

    options: list[str] = []
    if ptype == "multiple choice":
        raw = record.get("options")
        if isinstance(raw, list):
            options = [str(o).strip() for o in raw if o is not None and str(o).strip()]
        if not options:
            raise RecordRejected("mc_without_options", f"options={raw!r}")

    paths: list[str] = []
    if record.get("data_type") == "image":
        raw = record.get("path")
        raw_list = raw if isinstance(raw, list) else [raw]
        with path_rejections():
            paths = [normalize_relpath(p) for p in raw_list]
        if not paths:
            raise RecordRejected("image_missing", "data_type is image but path is an empty list")

    source = record.get("data_source")
    source = source.strip() if isinstance(source, str) and source.strip() else subset
    return Problem(pid, ptype, question, answer, options, source, paths)
