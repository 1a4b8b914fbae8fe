"""The command-line pieces both converters share (``sophiavl_130k`` and ``thinking_156k``): the common flags, their
translation into option fields, and the exit-status tail of ``main``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .convert import ConvertError
from .schema import IMAGE_MODES


def add_source_args(ap: argparse.ArgumentParser, sample_root: str, *, src_help: str) -> None:
    """Adds ``--src`` (default ``sample_root``, help ``src_help``), ``--revision`` and ``--out`` (required)."""
    ap.add_argument("--src", default=sample_root, help=src_help)
    ap.add_argument("--revision", default=None, help="hub sources only: branch, tag or commit to pin (default main)")
    ap.add_argument("--out", required=True, help="output folder (created; earlier train-/val-*.parquet replaced)")


def add_conversion_args(ap: argparse.ArgumentParser, defaults: dict, *, val_size_help: str) -> None:
    """Adds ``--val-size`` (help ``val_size_help``), ``--max-rows``, ``--images``, ``--shard-rows``, ``--workers``,
    ``--max-reject-rate``, ``--max-pixels`` and ``--max-image-bytes``, in that order; ``defaults`` maps the option
    field names (``val_size``, ``images``, ...) to their defaults (the options dataclass's)."""
    ap.add_argument("--val-size", type=int, metavar="N", default=defaults["val_size"], help=val_size_help)
    ap.add_argument("--max-rows", type=int, default=None, help="read at most N records in total (default all)")
    ap.add_argument(
        "--images",
        choices=IMAGE_MODES,
        default=defaults["images"],
        help="embed: original file bytes in the parquet (default); path: absolute paths to unpacked files",
    )
    ap.add_argument(
        "--shard-rows", type=int, default=defaults["shard_rows"], help="rows per parquet shard (default %(default)s)"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=defaults["workers"],
        help="processes reading and checking images (default %(default)s)",
    )
    ap.add_argument(
        "--max-reject-rate",
        type=float,
        default=defaults["max_reject_rate"],
        help="exit 1 when rejected/read exceeds this share, after writing everything (default %(default)s)",
    )
    ap.add_argument("--max-pixels", type=int, default=defaults["max_pixels"], help="reject images above W*H pixels")
    ap.add_argument(
        "--max-image-bytes", type=int, default=defaults["max_image_bytes"], help="reject image files above this"
    )


def add_progress_arg(ap: argparse.ArgumentParser) -> None:
    """Adds ``--no-progress``."""
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")


def common_options(a: argparse.Namespace) -> dict:
    """The option fields the shared flags set, from parsed arguments: ``src``, ``out``, ``revision``, ``val_size``,
    ``max_rows``, ``images``, ``shard_rows``, ``workers``, ``max_reject_rate``, ``max_pixels``,
    ``max_image_bytes`` and ``progress`` (``not --no-progress``)."""
    return {
        "src": a.src,
        "out": a.out,
        "revision": a.revision,
        "val_size": a.val_size,
        "max_rows": a.max_rows,
        "images": a.images,
        "shard_rows": a.shard_rows,
        "workers": a.workers,
        "max_reject_rate": a.max_reject_rate,
        "max_pixels": a.max_pixels,
        "max_image_bytes": a.max_image_bytes,
        "progress": not a.no_progress,
    }


def summary_tail(report: dict, out: str) -> list[str]:
    """The last lines of both converters' summaries: where the report and the rejects are, and ``FAILED: ...`` when
    the reject rate exceeds ``--max-reject-rate``."""
    lines = [f"report: {Path(out) / 'report.json'}; rejects: {Path(out) / 'rejects.jsonl'}"]
    if report["status"] != "ok":
        lines.append(f"FAILED: reject rate {report['reject_rate']:.4f} exceeds --max-reject-rate")
    return lines


def run_converter(convert: Callable[[object], dict], opts, summary: Callable[[dict, str], str]) -> int:
    """Runs ``convert(opts)`` and prints ``summary(report, opts.out)``. Returns the exit status: 0 done, 1 the
    report's status is not ``"ok"`` (too many rejections), 2 a :class:`~sophiavl.data_prep.convert.ConvertError`
    (printed to stderr as ``error: ...``; nothing written)."""
    try:
        report = convert(opts)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary(report, opts.out))
    return 0 if report["status"] == "ok" else 1
