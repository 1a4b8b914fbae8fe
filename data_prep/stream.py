"""The write pass shared by the converters: the train/val writers, the image stage and the progress bar around a
converter's row loop (with clean-up on failure), parsed rows through the image stage in bounded batches and back one
at a time with their image results, and the report's closing fields."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa

from .images import ImageStage
from .report import Report
from .writer import SplitWriters


def write_splits(
    opts,
    src: Path,
    schema: pa.Schema,
    val_keys: set[str],
    report: Report,
    total: int,
    write_rows: Callable[[SplitWriters, object, ImageStage], None],
) -> dict[str, list[str]]:
    """Runs ``write_rows(writers, bar, stage)`` with the train/val :class:`~sophiavl.data_prep.writer.SplitWriters`
    in ``opts.out`` (``opts.shard_rows`` rows per shard, ``val_keys`` to ``val``), a :func:`progress_bar` over
    ``total`` rows (``None`` unless ``opts.progress``) and an :class:`~sophiavl.data_prep.images.ImageStage` over
    ``src`` (``opts.images``, ``max_pixels``, ``max_image_bytes``, ``workers``). Returns split -> shard file names.

    On any exception (``KeyboardInterrupt`` included) the unfinished shards and ``rejects.jsonl`` are removed and
    the exception propagates; the bar is closed either way. ``opts``: the converter's options dataclass.
    """
    writers = SplitWriters(opts.out, schema, opts.shard_rows, val_keys)
    bar = progress_bar(total, opts.progress)
    try:
        with ImageStage(str(src), opts.images, opts.max_pixels, opts.max_image_bytes, opts.workers) as stage:
            write_rows(writers, bar, stage)
        return writers.close()
    except BaseException:
        writers.abort()
        report.abort()
        raise
    finally:
        if bar is not None:
            bar.close()


def finish_report(report: Report, opts, shards: dict[str, list[str]], src: Path, t0: float) -> dict:
    """Writes ``report.json`` (see :meth:`~sophiavl.data_prep.report.Report.finish`) with the run's closing fields
    and returns it: ``status`` (``"ok"``, or ``"reject_rate_exceeded"`` when the reject rate is above
    ``opts.max_reject_rate``), ``max_reject_rate``, ``shards``, ``elapsed_s`` since ``t0`` (a
    ``time.perf_counter()`` value), ``rows_per_s``, ``source_folder`` and ``options`` (all of ``opts`` but
    ``progress``)."""
    status = "ok" if report.reject_rate <= opts.max_reject_rate else "reject_rate_exceeded"
    elapsed = time.perf_counter() - t0
    return report.finish(
        status=status,
        max_reject_rate=opts.max_reject_rate,
        shards=shards,
        elapsed_s=round(elapsed, 3),
        rows_per_s=round(report.rows_read / elapsed, 1) if elapsed > 0 else None,
        source_folder=str(src),
        options={k: v for k, v in asdict(opts).items() if k != "progress"},
    )


def with_images(
    stage: ImageStage, rows: Iterable[tuple], wants_images: type, batch_rows: int, bar=None
) -> Iterator[tuple[tuple, object]]:
    """Yields ``(row, result)`` for each row of ``rows``, in order.

    ``rows`` are tuples whose last element is the parsed item (``(name, path, record_index, item)``); they are
    pulled in batches of ``batch_rows`` as ``stage`` takes them, so only the in-flight batches are held. The items
    that are instances of ``wants_images`` (the validated record class) have their images loaded by ``stage``;
    their ``result`` is ``(image_dicts, image_bytes)`` or a
    :class:`~sophiavl.data_prep.records.RecordRejected`; any other item (a rejection) gets ``None``. ``bar`` (a
    tqdm bar or ``None``) advances by a batch's size once all of that batch's rows have been consumed.
    """

    def batches() -> Iterator[list[tuple]]:
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_rows:
                yield batch
                batch = []
        if batch:
            yield batch

    def select(batch: list[tuple]) -> list:
        return [row[-1] for row in batch if isinstance(row[-1], wants_images)]

    for batch, results in stage.run(batches(), select):
        it = iter(results)
        for row in batch:
            yield row, (next(it) if isinstance(row[-1], wants_images) else None)
        if bar is not None:
            bar.update(len(batch))


def progress_bar(total: int, enabled: bool):
    """A tqdm bar on stderr over ``total`` rows (``desc="converting"``), or ``None`` when not ``enabled``."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="row", file=sys.stderr, mininterval=0.5, desc="converting")
