"""The annotation folder's line files: the append-only writer and the resume scan of what is already done.

``annotate`` appends whole lines, each flushed, to ``OUT/annotations-<tag>.jsonl``; a killed run leaves at most one
torn last line. On start, :func:`scan_done` reads every ``annotations-*.jsonl`` of the folder and returns the keys of
the (rollout id, judge model) pairs already written, as 8-byte hashes (memory: tens of bytes per line).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ANNOTATION_GLOB = "annotations-*.jsonl"


def pair_key(rid: str, judge_model: str) -> int:
    """The resume key of ``(rid, judge_model)``: the first 8 bytes of a BLAKE2b hash as an int (a collision among
    470k keys has odds of about 1e-8)."""
    digest = hashlib.blake2b(f"{rid}\0{judge_model}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def file_tag(judge_model: str) -> str:
    """A file-name tag for ``judge_model``: ``Qwen/Qwen2.5-VL-72B-Instruct`` -> ``Qwen--Qwen2.5-VL-72B-Instruct``
    (``/`` becomes ``--``; anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", judge_model.replace("/", "--")) or "judge"


@dataclass
class DoneScan:
    """What :func:`scan_done` read: ``files``, ``lines`` (good lines), ``keys`` (the done pair keys) and per bad kind
    (``torn_line``: a last line without its newline; ``bad_line``: not JSON, or without ``rollout.rid`` and
    ``judge_model``) a count and the first example."""

    files: int = 0
    lines: int = 0
    keys: set[int] = field(default_factory=set)
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def reject(self, kind: str, where: str, reason: str) -> None:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        self.examples.setdefault(kind, f"{where}: {reason}"[:300])


def scan_done(folder: str | os.PathLike) -> DoneScan:
    """The (rid, judge model) pairs already annotated in ``folder`` (any judge, any tag); a missing folder has none.

    Lines are streamed; each good line adds ``pair_key(rollout.rid, judge_model)``. A torn last line (a killed run)
    or a malformed line is skipped and counted, so its row is annotated again.
    """
    scan = DoneScan()
    folder = Path(folder)
    if not folder.is_dir():
        return scan
    for path in sorted(folder.glob(ANNOTATION_GLOB)):
        scan.files += 1
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                where = f"{path.name}:{number}"
                if not raw.endswith(b"\n"):
                    scan.reject("torn_line", where, f"no newline at the end ({len(raw)} bytes)")
                    continue
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw)
                    rid, model = data["rollout"]["rid"], data["judge_model"]
                    if not isinstance(rid, str) or not isinstance(model, str):
                        raise TypeError("rid and judge_model must be strings")
                except (ValueError, KeyError, TypeError) as exc:
                    scan.reject("bad_line", where, repr(exc))
                    continue
                scan.lines += 1
                scan.keys.add(pair_key(rid, model))
    return scan


class AnnotationWriter:
    """Appends lines to ``<folder>/annotations-<tag>.jsonl`` (created). A file left by a killed run that does not end
    with a newline gets one first, so the torn line stays one bad line. Each :meth:`write` is one whole line, flushed
    to the OS (a killed process loses nothing written; a machine crash may lose the last lines)."""

    def __init__(self, folder: str | os.PathLike, tag: str) -> None:
        self.path = Path(folder) / f"annotations-{tag}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+b")  # noqa: SIM115  (closed by close())
        self._fh.seek(0, os.SEEK_END)
        if self._fh.tell() > 0:
            self._fh.seek(-1, os.SEEK_END)
            if self._fh.read(1) != b"\n":
                self._fh.write(b"\n")
                self._fh.flush()
        self.written = 0

    def write(self, line: str) -> None:
        """Appends ``line`` (one JSON line, newline included) and flushes it."""
        self._fh.write(line.encode("utf-8"))
        self._fh.flush()
        self.written += 1

    def close(self) -> None:
        """Closes the file."""
        self._fh.close()
