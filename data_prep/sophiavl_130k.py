"""Command line: SophiaVL-R1-130k (or the embedded sample) -> verl RLHF parquet.

    python -m sophiavl.data_prep.sophiavl_130k --src DIR|hf://OWNER/NAME --out DIR [--revision REV]
        [--subsets Math,Chart] [--val-size 500] [--max-rows N] [--images embed|path] [--shard-rows N]
        [--workers N] [--max-reject-rate 0.05]

Exit status: 0 done; 1 more rows rejected than ``--max-reject-rate`` allows (everything, report included, is
written); 2 the input cannot be converted (bad option values, no record files or no records in them, malformed
JSON, a hub source that cannot be fetched; nothing is written).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .convert import ConvertError, Options, convert
from .schema import IMAGE_MODES

SAMPLE_ROOT = Path(__file__).resolve().parent / "sample" / "data"
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Options)}  # one source for the defaults


def parse_args(argv: list[str] | None = None) -> Options:
    """Parses the command line into :class:`~sophiavl.data_prep.convert.Options`."""
    ap = argparse.ArgumentParser(
        prog="python -m sophiavl.data_prep.sophiavl_130k",
        description="Convert SophiaVL-R1-130k (json/ + images, unpacked or in the subset .zip archives) into "
        "verl's RLHF parquet: <out>/train-NNNNN.parquet, val-NNNNN.parquet, report.json, rejects.jsonl.",
    )
    ap.add_argument(
        "--src",
        default=str(SAMPLE_ROOT),
        help="dataset root holding json/, or a hub dataset hf://OWNER/NAME, downloaded (resumable, only json/, "
        "archives and images) into the hub cache first (default: the embedded sample)",
    )
    ap.add_argument("--revision", default=None, help="hub sources only: branch, tag or commit to pin (default main)")
    ap.add_argument("--out", required=True, help="output folder (created; earlier train-/val-*.parquet replaced)")
    ap.add_argument("--subsets", default=None, help="comma-separated subsets by record-file name, e.g. Math,Chart")
    ap.add_argument(
        "--val-size",
        type=int,
        metavar="N",
        default=_DEFAULTS["val_size"],
        help="at most N rows in the validation split: the N keys are picked before images are checked, so rows "
        "rejected for their images leave fewer (default %(default)s)",
    )
    ap.add_argument("--max-rows", type=int, default=None, help="read at most N records in total (default all)")
    ap.add_argument(
        "--images",
        choices=IMAGE_MODES,
        default=_DEFAULTS["images"],
        help="embed: original file bytes in the parquet (default); path: absolute paths to unpacked files",
    )
    ap.add_argument(
        "--shard-rows", type=int, default=_DEFAULTS["shard_rows"], help="rows per parquet shard (default %(default)s)"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=_DEFAULTS["workers"],
        help="processes reading and checking images (default %(default)s)",
    )
    ap.add_argument(
        "--max-reject-rate",
        type=float,
        default=_DEFAULTS["max_reject_rate"],
        help="exit 1 when rejected/read exceeds this share, after writing everything (default %(default)s)",
    )
    ap.add_argument("--max-pixels", type=int, default=_DEFAULTS["max_pixels"], help="reject images above W*H pixels")
    ap.add_argument(
        "--max-image-bytes", type=int, default=_DEFAULTS["max_image_bytes"], help="reject image files above this"
    )
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    subsets = [s.strip() for s in a.subsets.split(",") if s.strip()] if a.subsets else None
    return Options(
        src=a.src,
        out=a.out,
        revision=a.revision,
        subsets=subsets,
        val_size=a.val_size,
        max_rows=a.max_rows,
        images=a.images,
        shard_rows=a.shard_rows,
        workers=a.workers,
        max_reject_rate=a.max_reject_rate,
        max_pixels=a.max_pixels,
        max_image_bytes=a.max_image_bytes,
        progress=not a.no_progress,
    )


def summary(report: dict, out: str) -> str:
    """A few human-readable lines about a finished run."""
    w, r = report["rows_written"], report["rows_rejected"]
    lines = [
        f"read {report['rows_read']} rows in {report['elapsed_s']:.1f} s ({report['rows_per_s']} rows/s)",
        f"written: {w['total']} (train {w['train']}, val {w['val']}) in "
        f"{sum(len(v) for v in report['shards'].values())} shard(s), {report['images_written']} images",
        f"rejected: {r['total']} ({100 * report['reject_rate']:.2f}%, limit {100 * report['max_reject_rate']:.2f}%)",
    ]
    lines += [f"  {reason}: {n}" for reason, n in r["by_reason"].items()]
    lines.append("by subset: " + ", ".join(f"{s} {c['written']}/{c['read']}" for s, c in report["by_subset"].items()))
    lines.append(f"report: {Path(out) / 'report.json'}; rejects: {Path(out) / 'rejects.jsonl'}")
    if report["status"] != "ok":
        lines.append(f"FAILED: reject rate {report['reject_rate']:.4f} exceeds --max-reject-rate")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (0, 1 or 2, see the module docstring)."""
    opts = parse_args(argv)
    try:
        report = convert(opts)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary(report, opts.out))
    return 0 if report["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
