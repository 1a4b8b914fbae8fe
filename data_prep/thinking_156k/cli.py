"""Command line: SophiaVL-R1-Thinking-156k (or the embedded sample) -> verl SFT parquet for the thinking reward model.

    python -m sophiavl.data_prep.thinking_156k --src DIR|hf://OWNER/NAME --out DIR [--revision REV]
        [--val-size 1000] [--max-rows N] [--images embed|path] [--shard-rows N] [--workers N]
        [--max-reject-rate 0.05] [--max-pixels N] [--shared-image-limit 32] [--field ROLE=NAME ...]
        [--prompt-template FILE]

Exit status: 0 done; 1 more rows rejected than ``--max-reject-rate`` allows (everything, report included, is
written); 2 the input cannot be converted (bad option values, an unusable source, no record files or no records in
them, malformed JSON, a record file without a question, response or score field; nothing is written).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from sophiavl.data_prep.cli import (
    add_conversion_args,
    add_progress_arg,
    add_source_args,
    common_options,
    run_converter,
    summary_tail,
)

from .convert import TrmOptions, convert_trm
from .fields import CANDIDATES, FieldError, parse_field_overrides

SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "sample" / "trm_data"
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrmOptions)}  # one source for the defaults


def _build_parser() -> argparse.ArgumentParser:
    roles = "; ".join(f"{role}: {', '.join(names)}" for role, names in CANDIDATES.items())
    ap = argparse.ArgumentParser(
        prog="python -m sophiavl.data_prep.thinking_156k",
        description="Convert SophiaVL-R1-Thinking-156k (record files *.json/*.jsonl at the root or under json/, "
        "images unpacked or in *.zip archives at the root) into verl's SFT parquet for the thinking reward "
        "model: <out>/train-NNNNN.parquet, val-NNNNN.parquet, report.json, rejects.jsonl.",
    )
    add_source_args(
        ap,
        str(SAMPLE_ROOT),
        src_help="dataset root, or a hub dataset hf://OWNER/NAME, downloaded (resumable, only record files, "
        "archives and images) into the hub cache first (default: the embedded sample)",
    )
    add_conversion_args(
        ap,
        _DEFAULTS,
        val_size_help="at most N rows in the validation split, chosen by a hash of <record file>/<id> among valid "
        "rows; rows rejected for their image file leave fewer (default %(default)s)",
    )
    ap.add_argument(
        "--shared-image-limit",
        type=int,
        metavar="N",
        default=_DEFAULTS["shared_image_limit"],
        help="reject the rows of an image used by more than N distinct questions (default %(default)s)",
    )
    ap.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="ROLE=NAME",
        help=f"the record key of a role, instead of auto-detection (repeatable). Auto-detected, first match wins: "
        f"{roles}",
    )
    ap.add_argument(
        "--prompt-template",
        default=None,
        metavar="FILE",
        help="the judge's prompt template (system, a line ---, user text with {question} and {response}); the "
        "same file as reward.thinking_rm.prompt_template (default: the packaged one)",
    )
    add_progress_arg(ap)
    return ap


def parse_args(argv: list[str] | None = None) -> TrmOptions:
    """Parses the command line into :class:`~sophiavl.data_prep.thinking_156k.convert.TrmOptions`; exits with status 2
    (argparse's) on a bad ``--field``."""
    ap = _build_parser()
    a = ap.parse_args(argv)
    try:
        fields = parse_field_overrides(a.field)
    except FieldError as e:
        ap.error(str(e))
    return TrmOptions(
        **common_options(a),
        shared_image_limit=a.shared_image_limit,
        fields=fields,
        prompt_template=a.prompt_template,
    )


def summary(report: dict, out: str) -> str:
    """A few human-readable lines about a finished run."""
    w, r, t = report["rows_written"], report["rows_rejected"], report["text_only"]
    lines = [
        f"read {report['rows_read']} rows in {report['elapsed_s']:.1f} s ({report['rows_per_s']} rows/s)",
        f"written: {w['total']} (train {w['train']}, val {w['val']}) in "
        f"{sum(len(v) for v in report['shards'].values())} shard(s), {report['images_written']} images, "
        f"{t['total']} text-only ({100 * t['share']:.1f}%)",
        f"rejected: {r['total']} ({100 * report['reject_rate']:.2f}%, limit {100 * report['max_reject_rate']:.2f}%)",
    ]
    lines += [f"  {reason}: {n}" for reason, n in r["by_reason"].items()]
    sharing = report["image_sharing"]
    if sharing["images_over_limit"]:
        worst = sharing["worst"][0]
        lines.append(
            f"images shared by more than {sharing['limit']} questions: {sharing['images_over_limit']} "
            f"(worst {worst['path']}: {worst['distinct_questions']} questions)"
        )
    for name, fields in report["fields"].items():
        used = ", ".join(f"{role}={key}" for role, key in (fields or {}).items() if key)
        lines.append(f"fields of {name}: {used or '(no records read)'}")
    lines += summary_tail(report, out)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (0, 1 or 2, see the module docstring)."""
    return run_converter(convert_trm, parse_args(argv), summary)
