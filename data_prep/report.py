"""Counting what a conversion read, wrote and rejected; ``report.json`` and ``rejects.jsonl``."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path


class Report:
    """Accumulates counts while converting and streams rejected rows to ``rejects.jsonl``.

    Invariant (checked by :meth:`to_dict`): rows read = rows written + rows rejected, overall and per subset.
    """

    def __init__(self, out_dir: Path | str):
        self.out_dir = Path(out_dir)
        self.rows_read = 0
        self.written: Counter[str] = Counter()  # split -> rows
        self.rejected: Counter[str] = Counter()  # reason -> rows
        self.subsets: dict[str, Counter[str]] = defaultdict(Counter)  # subset -> read/written/rejected
        self.problem_types: Counter[str] = Counter()  # written rows
        self.data_sources: Counter[str] = Counter()  # written rows
        self.images_written = 0
        self.image_bytes_written = 0
        self._rejects_tmp = self.out_dir / "rejects.jsonl.tmp"
        self._rejects = open(self._rejects_tmp, "w", encoding="utf-8")

    def read(self, subset: str) -> None:
        """Counts one record read from ``subset``."""
        self.rows_read += 1
        self.subsets[subset]["read"] += 1

    def reject(self, subset: str, file: str, record_index: int, problem_id: str | None, reason: str, detail: str):
        """Counts a rejected record and writes its line to ``rejects.jsonl``."""
        self.rejected[reason] += 1
        self.subsets[subset]["rejected"] += 1
        line = {
            "subset": subset,
            "file": file,
            "record_index": record_index,
            "problem_id": problem_id,
            "reason": reason,
            "detail": detail,
        }
        self._rejects.write(json.dumps(line, ensure_ascii=False) + "\n")

    def written_row(self, subset: str, split: str, problem_type: str, data_source: str, n_images: int, nbytes: int):
        """Counts a written row."""
        self.written[split] += 1
        self.subsets[subset]["written"] += 1
        self.problem_types[problem_type] += 1
        self.data_sources[data_source] += 1
        self.images_written += n_images
        self.image_bytes_written += nbytes

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def reject_rate(self) -> float:
        """Rejected / read, in [0, 1]; 0 when nothing was read."""
        return self.rows_rejected / self.rows_read if self.rows_read else 0.0

    def to_dict(self, **extra) -> dict:
        """The report as a JSON-ready dict; ``extra`` keys (arguments, shards, timing, status) are merged in."""
        total_written = sum(self.written.values())
        if self.rows_read != total_written + self.rows_rejected:
            raise AssertionError(
                f"report does not reconcile: {self.rows_read} read, {total_written} written, "
                f"{self.rows_rejected} rejected"
            )
        return {
            "rows_read": self.rows_read,
            "rows_written": {"train": self.written["train"], "val": self.written["val"], "total": total_written},
            "rows_rejected": {"total": self.rows_rejected, "by_reason": dict(sorted(self.rejected.items()))},
            "reject_rate": round(self.reject_rate, 6),
            "images_written": self.images_written,
            "image_bytes_written": self.image_bytes_written,
            "by_subset": {
                s: {k: c[k] for k in ("read", "written", "rejected")} for s, c in sorted(self.subsets.items())
            },
            "by_problem_type": dict(sorted(self.problem_types.items())),
            "by_data_source": dict(sorted(self.data_sources.items())),
            **extra,
        }

    def finish(self, **extra) -> dict:
        """Closes ``rejects.jsonl``, writes ``report.json``; returns the report dict."""
        self._rejects.close()
        os.replace(self._rejects_tmp, self.out_dir / "rejects.jsonl")
        report = self.to_dict(**extra)
        tmp = self.out_dir / "report.json.tmp"
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.out_dir / "report.json")
        return report

    def abort(self) -> None:
        """Closes and removes the unfinished ``rejects.jsonl``."""
        self._rejects.close()
        self._rejects_tmp.unlink(missing_ok=True)
