"""Reading annotation folders into a temporary SQLite table of per-line facts, grouped back by ``rid``.

``balance`` reads every ``annotations-*.jsonl`` of every ``--annotations`` folder once, line by line. Each valid
line leaves one small table row: its ``rid``, where it is (file number and byte offset, to read it again if the row
is chosen), 8-byte digests of its rollout record with its image names and of its (question, images, response), its
judge, its scores in tenths, why it failed (if it did) and the first rollout rule it breaks
(:func:`~.rules.rollout_problem`). Response texts stay on disk. SQLite sorts the table by ``rid`` with its own
external sort, so grouping the lines of one row (several judges, several folders) needs bounded memory; the database
lives in a temporary folder under the output folder and is removed at the end.

Lines that cannot be used are counted per reason (:data:`~.rules.LINE_REASONS`) with the first example each.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import BinaryIO

from .annotation import Annotation, on_grid
from .digests import digest
from .rules import rollout_problem

ANNOTATION_GLOB = "annotations-*.jsonl"
_OFFSET_BITS = 40  # a location is (file number << 40) | byte offset: files up to 1 TiB
_BATCH = 5000


def annotation_files(folder: Path) -> list[Path]:
    """The ``annotations-*.jsonl`` files of ``folder``, in name order. Raises ``FileNotFoundError`` when the folder
    does not exist."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no annotation folder {folder}")
    return sorted(folder.glob(ANNOTATION_GLOB))


def location(file_no: int, offset: int) -> int:
    """One int for (file number, byte offset)."""
    return (file_no << _OFFSET_BITS) | offset


def split_location(loc: int) -> tuple[int, int]:
    """The (file number, byte offset) of :func:`location`."""
    return loc >> _OFFSET_BITS, loc & ((1 << _OFFSET_BITS) - 1)


def _signed(d: int) -> int:  # SQLite integers are signed 64-bit
    return d - (1 << 64) if d >= 1 << 63 else d


@dataclass
class LineStats:
    """Lines read, valid lines, and per skip reason a count and the first example (``"<file>:<line>: <why>"``);
    ``sample_errors`` counts the judge's failed samples by kind (``off_grid``, ``timeout``, ...; not a rule, those
    samples are simply not scores)."""

    read: int = 0
    valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    sample_errors: dict[str, int] = field(default_factory=dict)
    row_errors: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str, where: str, why: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.examples.setdefault(reason, f"{where}: {why}"[:300])


@dataclass(frozen=True)
class LineFacts:
    """What the rules need of one valid line (see the module docstring); ``tenths`` are its scored samples."""

    rid: str
    loc: int
    rollout_h: int
    dup_h: int
    judge: str
    tenths: tuple[int, ...]
    fail: str | None
    problem: str | None
    detail: str | None


def _plain_name(name: str) -> bool:
    """True for a file name with no folder part (``ab12.png``); ``../x``, ``a/b`` and ``..`` are not."""
    return name not in (".", "..") and "/" not in name and "\\" not in name


def _precheck_scores(data: object) -> str | None:
    """The first score of a decoded line that is a number off the grid, as text (``Annotation`` would refuse the
    whole line; this names the reason ``score_off_grid``)."""
    if isinstance(data, dict) and isinstance(data.get("scores"), list):
        for s in data["scores"]:
            if isinstance(s, int | float) and not isinstance(s, bool) and not on_grid(float(s)):
                return repr(s)
    return None


class Staging:
    """The per-line facts of a run in SQLite at ``db_path`` (created; the caller removes it)."""

    def __init__(self, db_path: Path, max_chars: int):
        self.db = sqlite3.connect(db_path)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000; PRAGMA temp_store=FILE;"
            "CREATE TABLE lines (rid TEXT, file INT, off INT, rollout_h INT, dup_h INT, judge TEXT, tenths TEXT,"
            " fail TEXT, problem TEXT, detail TEXT)"
        )
        self.max_chars = max_chars
        self.files: list[Path] = []
        self._handles: dict[int, BinaryIO] = {}
        self.stats = LineStats()

    def add_folder(self, folder: Path) -> int:
        """Reads every annotation file of ``folder``; returns how many files it had."""
        files = annotation_files(folder)
        for path in files:
            self._add_file(folder, path)
        return len(files)

    def _add_file(self, folder: Path, path: Path) -> None:
        file_no = len(self.files)
        self.files.append(path)
        batch: list[tuple] = []
        offset = 0
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                start, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                self.stats.read += 1
                facts = self._facts(folder, path, number, raw, location(file_no, start))
                if facts is not None:
                    self.stats.valid += 1
                    batch.append(
                        (facts.rid, file_no, start, _signed(facts.rollout_h), _signed(facts.dup_h), facts.judge,
                         ",".join(map(str, facts.tenths)), facts.fail, facts.problem, facts.detail)
                    )  # fmt: skip
                if len(batch) >= _BATCH:
                    self.db.executemany("INSERT INTO lines VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
                    batch.clear()
        if batch:
            self.db.executemany("INSERT INTO lines VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
        self.db.commit()

    def _facts(self, folder: Path, path: Path, number: int, raw: bytes, loc: int) -> LineFacts | None:
        where = f"{path.parent.name}/{path.name}:{number}"
        if not raw.endswith(b"\n"):
            self.stats.reject("torn_line", where, f"no newline at the end ({len(raw)} bytes)")
            return None
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.stats.reject("bad_json", where, str(exc))
            return None
        off_grid = _precheck_scores(data)
        if off_grid is not None:
            self.stats.reject("score_off_grid", where, f"score {off_grid} is not on the grid 0.0, 0.1, ..., 1.0")
            return None
        try:
            if not isinstance(data, dict):
                raise ValueError(f"a JSON {type(data).__name__}, not an object")
            ann = Annotation.from_dict(data)
        except ValueError as exc:
            self.stats.reject("bad_annotation", where, str(exc))
            return None
        return self._facts_of(folder, ann, loc)

    def _facts_of(self, folder: Path, ann: Annotation, loc: int) -> LineFacts:
        r = ann.rollout
        for e in ann.errors:
            if e is not None:
                kind = e.partition(":")[0]
                self.stats.sample_errors[kind] = self.stats.sample_errors.get(kind, 0) + 1
        fail = None
        if ann.row_error is not None:
            fail = ann.row_error
            kind = ann.row_error.partition(":")[0]
            self.stats.row_errors[kind] = self.stats.row_errors.get(kind, 0) + 1
        elif not ann.ok_scores:
            fail = next((e for e in ann.errors if e), None) or "no sample"
        missing = [name for name in ann.images if not _plain_name(name) or not (folder / "images" / name).is_file()]
        problem = rollout_problem(r.question, r.response, len(ann.images), missing, self.max_chars)
        return LineFacts(
            rid=r.rid,
            loc=loc,
            rollout_h=digest(repr(tuple(vars(r).values())), *ann.images),  # every field, in field order
            dup_h=digest(r.question, "\0".join(ann.images), r.response),
            judge=ann.judge_model,
            tenths=tuple(round(s * 10) for s in ann.ok_scores),
            fail=fail[:300] if fail else None,
            problem=problem[0] if problem else None,
            detail=problem[1] if problem else None,
        )

    _COLUMNS = "rid, file, off, rollout_h, dup_h, judge, tenths, fail, problem, detail"

    @staticmethod
    def _row(rid, f, o, rh, dh, judge, tenths, fail, problem, detail) -> LineFacts:
        return LineFacts(
            rid, location(f, o), rh & ((1 << 64) - 1), dh & ((1 << 64) - 1), judge,
            tuple(int(t) for t in tenths.split(",")) if tenths else (), fail, problem, detail,
        )  # fmt: skip

    def groups(self) -> Iterator[tuple[str, list[LineFacts]]]:
        """``(rid, its lines)`` in ``rid`` order (byte order of the UTF-8 text); lines in file, then offset order
        (files in the order the folders were given and then by name). Builds the ``rid`` index first (an external
        sort in SQLite's temporary files)."""
        self.db.execute("CREATE INDEX IF NOT EXISTS by_rid ON lines (rid, file, off)")
        cursor = self.db.execute(f"SELECT {self._COLUMNS} FROM lines ORDER BY rid, file, off")
        for rid, lines in groupby((self._row(*r) for r in cursor), key=lambda x: x.rid):
            yield rid, list(lines)

    def lines_of(self, rid: str) -> list[LineFacts]:
        """The lines of one ``rid``, as :meth:`groups` gives them (after :meth:`groups` built the index)."""
        cursor = self.db.execute(f"SELECT {self._COLUMNS} FROM lines WHERE rid = ? ORDER BY file, off", (rid,))
        return [self._row(*r) for r in cursor]

    def read_annotation(self, loc: int) -> Annotation:
        """The annotation line at ``loc`` (see :func:`location`), read and parsed again."""
        file_no, offset = split_location(loc)
        fh = self._handles.get(file_no)
        if fh is None:
            fh = self._handles[file_no] = open(self.files[file_no], "rb")  # noqa: SIM115  (closed by close())
        fh.seek(offset)
        return Annotation.from_line(fh.readline().decode("utf-8"))

    def close(self) -> None:
        """Closes the database and the annotation files opened by :meth:`read_annotation`."""
        for fh in self._handles.values():
            fh.close()
        self.db.close()
