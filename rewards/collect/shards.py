"""Append-only JSONL shards of :class:`RolloutRecord` lines: a crash-safe writer and a reader that counts what it
skips.

A writer owns one shard file (``rollouts-<tag>.jsonl``; one per process, so concurrent writers never share a file),
opens it in append mode and writes whole lines, each flushed, so a killed run leaves at most one torn last line. The
reader streams the shards of a folder in name order, one line at a time (memory stays bounded), and skips and counts a
torn or malformed line, keeping the first example of each kind for the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .record import RolloutRecord

SHARD_GLOB = "rollouts-*.jsonl"


class ShardWriter:
    """Appends records to ``<folder>/rollouts-<tag>.jsonl`` (the folder is created).

    ``tag`` names the writer (for example host, pid and a start time); a shard that exists already is appended to
    (a resumed run). If the file does not end with a newline (a torn last line of a killed run), a newline is written
    first so the torn line stays one bad line and the next record starts a line of its own.
    """

    def __init__(self, folder: str | os.PathLike, tag: str) -> None:
        self.path = Path(folder) / f"rollouts-{tag}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+b")  # noqa: SIM115  (kept open for the writer's life; close() closes it)
        self._fh.seek(0, os.SEEK_END)
        if self._fh.tell() > 0:
            self._fh.seek(-1, os.SEEK_END)
            if self._fh.read(1) != b"\n":
                self._fh.write(b"\n")
        self.written = 0

    def write(self, records: list[RolloutRecord]) -> None:
        """Appends ``records`` as whole lines and flushes them to the OS (not fsync'd: a machine crash may lose the
        last lines, a killed process does not)."""
        if not records:
            return
        self._fh.write("".join(r.to_line() for r in records).encode("utf-8"))
        self._fh.flush()
        self.written += len(records)

    def close(self) -> None:
        """Closes the shard; further writes raise ``ValueError``."""
        self._fh.close()


@dataclass
class ShardReadStats:
    """What :func:`iter_shard_records` read: ``shards`` files, ``records`` good lines, and per bad kind
    (``torn_line``: the last line of a shard without its newline; ``bad_json``; ``bad_record``: valid JSON that is not
    a valid record) a count and the first example (``"<shard>:<line>: <reason>"``)."""

    shards: int = 0
    records: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def reject(self, kind: str, where: str, reason: str) -> None:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        self.examples.setdefault(kind, f"{where}: {reason}"[:300])


def shard_paths(folder: str | os.PathLike) -> list[Path]:
    """The shards of ``folder`` in name order. Raises ``FileNotFoundError`` when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no rollout folder {folder}")
    return sorted(folder.glob(SHARD_GLOB))


def iter_shard_records(folder: str | os.PathLike, stats: ShardReadStats | None = None) -> Iterator[RolloutRecord]:
    """Yields the valid records of every shard in ``folder`` (name order, then line order), one line in memory at a
    time. Torn and malformed lines are skipped and counted in ``stats`` (pass one to read the counts)."""
    stats = stats if stats is not None else ShardReadStats()
    for path in shard_paths(folder):
        stats.shards += 1
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                where = f"{path.name}:{number}"
                if not raw.endswith(b"\n"):
                    stats.reject("torn_line", where, f"no newline at the end ({len(raw)} bytes)")
                    continue
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    stats.reject("bad_json", where, str(exc))
                    continue
                try:
                    record = RolloutRecord.from_dict(data) if isinstance(data, dict) else None
                except ValueError as exc:
                    stats.reject("bad_record", where, str(exc))
                    continue
                if record is None:
                    stats.reject("bad_record", where, f"a JSON {type(data).__name__}, not an object")
                    continue
                stats.records += 1
                yield record
