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

from .cli import add_conversion_args, add_progress_arg, add_source_args, common_options, run_converter, summary_tail
from .convert import Options, convert

SAMPLE_ROOT = Path(__file__).resolve().parent / "sample" / "data"
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Options)}  # one source for the defaults


def parse_args(argv: list[str] | None = None) -> Options:
    """Parses the command line into :class:`~sophiavl.data_prep.convert.Options`."""
    ap = argparse.ArgumentParser(
        prog="python -m sophiavl.data_prep.sophiavl_130k",
        description="Convert SophiaVL-R1-130k (json/ + images, unpacked or in the subset .zip archives) into "
        "verl's RLHF parquet: <out>/train-NNNNN.parquet, val-NNNNN.parquet, report.json, rejects.jsonl.",
    )
    add_source_args(
        ap,
        str(SAMPLE_ROOT),
        src_help="dataset root holding json/, or a hub dataset hf://OWNER/NAME, downloaded (resumable, only json/, "
        "archives and images) into the hub cache first (default: the embedded sample)",
    )
    ap.add_argument("--subsets", default=None, help="comma-separated subsets by record-file name, e.g. Math,Chart")
    add_conversion_args(
        ap,
        _DEFAULTS,
        val_size_help="at most N rows in the validation split: the N keys are picked before images are checked, so "
        "rows rejected for their images leave fewer (default %(default)s)",
    )
    add_progress_arg(ap)
    a = ap.parse_args(argv)
    subsets = [s.strip() for s in a.subsets.split(",") if s.strip()] if a.subsets else None
    return Options(**common_options(a), subsets=subsets)


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
    lines += summary_tail(report, out)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (0, 1 or 2, see the module docstring)."""
    return run_converter(convert, parse_args(argv), summary)


if __name__ == "__main__":
    sys.exit(main())
