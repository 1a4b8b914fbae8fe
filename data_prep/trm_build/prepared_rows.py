"""Looking up a prepared row's images by its identity ``(split, index)``, with bounded memory.

The prepared data (``make prepare-data`` output: ``<dir>/{train,val}-NNNNN.parquet``, ``sophiavl.data_prep.schema``)
names each row by ``extra_info.split`` and ``extra_info.index``. :class:`PreparedRows` scans the ``extra_info`` column
alone once (no image bytes) into an index ``(split, index) -> (file, row group, row in group, problem_id)``, then
reads a row's ``images`` lazily: one row group's ``images`` column at a time, the last few kept in a small LRU cache
(the rollouts of one row tend to come one after another). The question text is never used to find a row.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

#: The prepared data's file names: ``train-00000.parquet``, ``val-00003.parquet``, ... as ``make prepare-data`` writes
#: them, and a single ``train.parquet`` / ``val.parquet`` as many verl users keep them.
PREPARED_GLOBS = ("train*.parquet", "val*.parquet")


class RowNotFound(KeyError):
    """No prepared row has this ``(split, index)``."""


@dataclass(frozen=True)
class RowImages:
    """The images of one prepared row, in the row's order: encoded bytes (PNG, JPEG, ...) each; ``problem_id`` is
    the row's ``extra_info.problem_id``."""

    problem_id: str
    images: list[bytes]


class PreparedRows:
    """The prepared rows of a folder, indexed by ``(split, index)``; images read on demand.

    Args:
        folder: the prepared data folder (its ``train-*.parquet`` and ``val-*.parquet`` files).
        cache_groups: how many row groups' ``images`` columns stay in memory (>= 1). A prepared row group holds at
            most 64 MiB of image data (``sophiavl.data_prep.writer``), so the cache holds at most that many times.

    Raises:
        FileNotFoundError: the folder does not exist or holds no prepared parquet.
        ValueError: two rows share one ``(split, index)`` (the message names both files).
    """

    def __init__(self, folder: str | os.PathLike, cache_groups: int = 2) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"no prepared data folder {folder}")
        self.files = sorted({p for glob in PREPARED_GLOBS for p in folder.glob(glob)})
        if not self.files:
            raise FileNotFoundError(f"no prepared parquet (train*.parquet, val*.parquet) in {folder}")
        self.cache_groups = max(1, int(cache_groups))
        self._index: dict[tuple[str, int], tuple[int, int, int, str]] = {}
        self._cache: OrderedDict[tuple[int, int], list] = OrderedDict()
        self.group_reads = 0
        for file_no, path in enumerate(self.files):
            reader = pq.ParquetFile(path)
            for group in range(reader.num_row_groups):
                extra = reader.read_row_group(group, columns=["extra_info"]).column("extra_info").combine_chunks()
                splits = extra.field("split").to_pylist()
                indexes = extra.field("index").to_pylist()
                problem_ids = extra.field("problem_id").to_pylist()
                for row, key in enumerate(zip(splits, indexes, strict=True)):
                    if key in self._index:
                        first = self.files[self._index[key][0]].name
                        raise ValueError(f"prepared row {key} appears twice ({first} and {path.name})")
                    self._index[key] = (file_no, group, row, problem_ids[row] or "")

    def __len__(self) -> int:
        """The number of prepared rows."""
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def get(self, split: str, index: int) -> RowImages:
        """The images and ``problem_id`` of row ``(split, index)``.

        Images stored as ``{"bytes": ...}`` come back as those bytes; images stored as ``{"image": "/abs/path"}``
        (``--images path``) are read from that file.

        Raises:
            RowNotFound: no such row.
            OSError: an image file of a path-mode row cannot be read.
        """
        try:
            file_no, group, row, problem_id = self._index[(split, index)]
        except KeyError:
            raise RowNotFound((split, index)) from None
        cells = self._group_images(file_no, group)[row] or []
        images: list[bytes] = []
        for cell in cells:
            if cell.get("bytes") is not None:
                images.append(bytes(cell["bytes"]))
            elif cell.get("image"):
                images.append(Path(cell["image"]).read_bytes())
            else:
                images.append(b"")  # an empty image struct: the caller's decode check rejects it
        return RowImages(problem_id=problem_id, images=images)

    def _group_images(self, file_no: int, group: int) -> list:
        key = (file_no, group)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        table = pq.ParquetFile(self.files[file_no]).read_row_group(group, columns=["images"])
        cells = table.column("images").to_pylist()
        self.group_reads += 1
        self._cache[key] = cells
        while len(self._cache) > self.cache_groups:
            self._cache.popitem(last=False)
        return cells
