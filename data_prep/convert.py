"""The conversion: released layout -> sharded train/val parquet, report and rejects, streaming.

Two passes over the record files (both through :func:`iter_parsed`). Pass 1 parses records only (no images): it
fails fast on malformed JSON, counts the rows for the progress bar and picks the validation keys
(:func:`~sophiavl.data_prep.split.choose_val_keys`, fed as a stream). As images are only checked in pass 2, a row
whose key was picked may still be rejected there, so the validation split can end up with fewer than ``val_size``
rows. Pass 2 validates again, reads and checks each image (optionally in worker processes, in bounded batches, results
kept in record order) and streams rows into the parquet shards. Memory is bounded by the in-flight batches and one
parquet row group, not by the dataset.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .hub import IMAGE_PATTERNS, SourceError, resolve_src
from .images import ImageStage
from .options import ConversionOptions
from .reader import iter_records
from .records import Problem, RecordRejected, parse_record
from .report import Report
from .schema import make_row, row_schema
from .split import choose_val_keys, split_key
from .stream import finish_report, with_images, write_splits
from .writer import SplitWriters, remove_old_shards

RECORD_SUFFIXES = (".json", ".jsonl")
# the files of a hub snapshot this converter reads (fnmatch, '*' also matches '/'): record files, archives, images
HUB_PATTERNS = ["json/*.json", "json/*.jsonl", "*.zip", *IMAGE_PATTERNS]


class ConvertError(RuntimeError):
    """The run cannot proceed (bad arguments, no record files, malformed JSON). Nothing is written."""


@dataclass
class Options(ConversionOptions):
    """SophiaVL-R1-130k conversion settings: the shared ones plus ``subsets`` (record files to read by name,
    case-insensitive; ``None``: all); see ``python -m sophiavl.data_prep.sophiavl_130k --help``."""

    subsets: list[str] | None = None


def discover_subsets(src: Path, wanted: list[str] | None) -> list[tuple[str, Path]]:
    """The record files ``src/json/*.json|*.jsonl`` as ``(subset, path)``, sorted by subset name. The subset is
    the file stem (``math``). ``wanted`` selects subsets by name, case-insensitively (``Math`` = ``math``).

    Raises:
        ConvertError: no ``json/`` folder or no record files, or a wanted subset that does not exist.
    """
    folder = src / "json"
    if not folder.is_dir():
        raise ConvertError(f"{folder} does not exist: --src must be the dataset root that contains json/")
    files = sorted((p.stem, p) for p in folder.iterdir() if p.is_file() and p.suffix in RECORD_SUFFIXES)
    if not files:
        raise ConvertError(f"no *.json or *.jsonl record files in {folder}")
    if wanted:
        by_name = {name.lower(): (name, p) for name, p in files}
        missing = [w for w in wanted if w.lower() not in by_name]
        if missing:
            raise ConvertError(f"unknown subset(s) {missing}; available: {[n for n, _ in files]}")
        keep = {w.lower() for w in wanted}
        files = [(n, p) for n, p in files if n.lower() in keep]
    return files


def iter_raw(files: list[tuple[str, Path]], max_rows: int | None) -> Iterator[tuple[str, Path, int, object]]:
    """Yields ``(subset, file, record_index, record)`` over the files in order, stopping after ``max_rows``
    records in total (``None`` = all). Raises :class:`ConvertError` for malformed JSON."""
    n = 0
    for subset, path in files:
        try:
            for i, rec in enumerate(iter_records(path)):
                if max_rows is not None and n >= max_rows:
                    return
                n += 1
                yield subset, path, i, rec
        except ValueError as e:  # JsonInputError, UnicodeDecodeError
            raise ConvertError(str(e)) from None


def iter_parsed(
    files: list[tuple[str, Path]], max_rows: int | None
) -> Iterator[tuple[str, Path, int, Problem | RecordRejected]]:
    """:func:`iter_raw` with each record run through :func:`~sophiavl.data_prep.records.parse_record`: yields
    ``(subset, file, record_index, item)``, ``item`` being the :class:`Problem` or the :class:`RecordRejected`
    (duplicate ids are tracked per subset)."""
    seen: dict[str, set[str]] = {}
    for subset, path, i, rec in iter_raw(files, max_rows):
        try:
            item = parse_record(rec, subset, seen.setdefault(subset, set()))
        except RecordRejected as e:
            item = e
        yield subset, path, i, item


# --- the run ------------------------------------------------------------------------------------------------


def _pass1(files, max_rows: int | None, val_size: int) -> tuple[int, set[str]]:
    """Returns ``(records read, validation keys)``; memory is O(val_size)."""
    total = 0

    def keys() -> Iterator[str]:
        nonlocal total
        for subset, _path, _i, item in iter_parsed(files, max_rows):
            total += 1
            if isinstance(item, Problem):
                yield split_key(subset, item.problem_id)

    stream = keys()
    val_keys = choose_val_keys(stream, val_size)
    deque(stream, maxlen=0)  # read to the end even if choose_val_keys did not (val_size 0): counts, JSON errors
    return total, val_keys


def convert(opts: Options) -> dict:
    """Runs the conversion; returns the report dict (also written to ``<out>/report.json``).

    The report's ``status`` is ``"ok"``, or ``"reject_rate_exceeded"`` when more than ``max_reject_rate`` of the
    rows read were rejected (the parquet files are written either way).

    Raises:
        ConvertError: bad options, no record files, malformed JSON (before anything is written).
    """
    t0 = time.perf_counter()
    out = Path(opts.out)
    try:
        schema = row_schema(opts.images)
    except ValueError as e:
        raise ConvertError(f"--images: {e}") from None
    if opts.shard_rows < 1 or opts.workers < 1 or opts.val_size < 0 or not 0 <= opts.max_reject_rate <= 1:
        raise ConvertError("need --shard-rows >= 1, --workers >= 1, --val-size >= 0, 0 <= --max-reject-rate <= 1")
    try:
        src = resolve_src(opts.src, revision=opts.revision, allow_patterns=HUB_PATTERNS)
    except SourceError as e:
        raise ConvertError(str(e)) from None
    files = discover_subsets(src, opts.subsets)
    total, val_keys = _pass1(files, opts.max_rows, opts.val_size)
    if total == 0:
        raise ConvertError(f"no records in {[str(p) for _, p in files]}")

    out.mkdir(parents=True, exist_ok=True)
    remove_old_shards(out)
    report = Report(out)
    shards = write_splits(opts, src, schema, val_keys, report, total, partial(_run, files, opts, report))
    return finish_report(report, opts, shards, src, t0)


def _run(files, opts: Options, report: Report, writers: SplitWriters, bar, stage: ImageStage) -> None:
    """Pass 2: validates, checks images and writes the rows; every record read is written or rejected."""

    def rows() -> Iterator[tuple]:
        for row in iter_parsed(files, opts.max_rows):
            report.read(row[0])
            yield row

    for (subset, path, i, item), res in with_images(stage, rows(), Problem, opts.batch_rows, bar):
        if isinstance(item, RecordRejected):
            report.reject(subset, path.name, i, item.problem_id, item.reason, item.detail)
        elif isinstance(res, RecordRejected):
            report.reject(subset, path.name, i, item.problem_id, res.reason, res.detail)
        else:
            images, nbytes = res
            split, index = writers.place(split_key(subset, item.problem_id))
            writers.write(split, make_row(item, images, split, index), nbytes)
            report.written_row(subset, split, item.problem_type, item.data_source, len(images), nbytes)
