"""Sharded, streaming parquet output: rows are buffered into row groups and appended to the open shard."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class ShardedParquetWriter:
    """Writes rows of one split to ``<out>/<split>-00000.parquet``, ``-00001``, ... with ``shard_rows`` rows per
    shard (the last one may be shorter; none is written for an empty split).

    Memory is bounded by one row group: it is flushed at ``group_rows`` rows or ``group_bytes`` bytes of image
    data, whichever comes first. Shards are written under a ``.tmp`` name and renamed by :meth:`close`, so a
    failed run leaves no half-written ``*.parquet``.
    """

    def __init__(
        self,
        out_dir: Path | str,
        split: str,
        schema: pa.Schema,
        shard_rows: int = 10_000,
        group_rows: int = 256,
        group_bytes: int = 64 << 20,
    ):
        if shard_rows < 1 or group_rows < 1:
            raise ValueError("shard_rows and group_rows must be >= 1")
        self.out_dir, self.split, self.schema = Path(out_dir), split, schema
        self.shard_rows, self.group_rows, self.group_bytes = shard_rows, group_rows, group_bytes
        self.shards: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._in_shard = 0
        self._buf: list[dict] = []
        self._buf_bytes = 0
        self._tmp: list[Path] = []

    def write(self, row: dict, nbytes: int = 0) -> None:
        """Appends one row; ``nbytes`` is the size of its image data (for the row-group byte budget)."""
        self._buf.append(row)
        self._buf_bytes += nbytes
        if len(self._buf) >= self.group_rows or self._buf_bytes >= self.group_bytes:
            self._flush()
        if self._in_shard + len(self._buf) >= self.shard_rows:
            # Not redundant with _flush's split at shard boundaries: it closes a full shard at once, and it
            # decides where the row groups fall (output files stay byte-for-byte as they were).
            self._flush()

    def _flush(self) -> None:
        while self._buf:
            if self._writer is None:
                final = self.out_dir / f"{self.split}-{len(self.shards):05d}.parquet"
                tmp = final.with_name(final.name + ".tmp")
                self._writer = pq.ParquetWriter(tmp, self.schema, compression="zstd")
                self.shards.append(final)
                self._tmp.append(tmp)
                self._in_shard = 0
            take = min(len(self._buf), self.shard_rows - self._in_shard)
            rows, self._buf = self._buf[:take], self._buf[take:]
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            self._in_shard += take
            if self._in_shard >= self.shard_rows:
                self._writer.close()
                self._writer = None
        self._buf_bytes = 0

    def close(self) -> list[Path]:
        """Flushes, closes and renames the shards into place; returns their final paths."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for tmp, final in zip(self._tmp, self.shards, strict=True):
            os.replace(tmp, final)
        self._tmp = []
        return list(self.shards)

    def abort(self) -> None:
        """Closes and deletes the unfinished shards."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for tmp in self._tmp:
            tmp.unlink(missing_ok=True)
        self._tmp, self._buf = [], []


def remove_old_shards(out_dir: Path | str, splits: tuple[str, ...] = ("train", "val")) -> None:
    """Deletes ``<split>-*.parquet`` (and leftover ``.tmp``) from an earlier run, so a rerun with fewer shards
    leaves no stale file behind for a ``*.parquet`` glob."""
    for split in splits:
        for p in Path(out_dir).glob(f"{split}-*.parquet*"):
            p.unlink()


class SplitWriters:
    """The ``train`` and ``val`` :class:`ShardedParquetWriter` of one run. A row goes to ``val`` when its split key
    is in ``val_keys``, else to ``train``; rows are numbered from 0 within each split."""

    SPLITS = ("train", "val")

    def __init__(self, out_dir: Path | str, schema: pa.Schema, shard_rows: int, val_keys: set[str]):
        self.val_keys = val_keys
        self.writers = {s: ShardedParquetWriter(out_dir, s, schema, shard_rows) for s in self.SPLITS}
        self.index = dict.fromkeys(self.SPLITS, 0)

    def place(self, key: str) -> tuple[str, int]:
        """The split of a row with split key ``key`` and the row's 0-based index in it (counted from here on: call
        once per row, then :meth:`write` the row)."""
        split = "val" if key in self.val_keys else "train"
        index = self.index[split]
        self.index[split] += 1
        return split, index

    def write(self, split: str, row: dict, nbytes: int = 0) -> None:
        """Appends ``row`` to ``split``; ``nbytes`` is its image data size (see :meth:`ShardedParquetWriter.write`)."""
        self.writers[split].write(row, nbytes)

    def close(self) -> dict[str, list[str]]:
        """Closes both writers; returns split -> the file names of its shards (empty for an empty split)."""
        return {s: [p.name for p in w.close()] for s, w in self.writers.items()}

    def abort(self) -> None:
        """Aborts both writers (see :meth:`ShardedParquetWriter.abort`)."""
        for w in self.writers.values():
            w.abort()
