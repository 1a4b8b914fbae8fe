"""Evaluate a thinking reward model served behind an OpenAI-compatible ``/v1/chat/completions`` (vLLM).

    python -m sophiavl.eval.trm pointwise --data data/trm/val-00000.parquet --base-url http://127.0.0.1:8000/v1 \\
        [--model NAME] --out trm-pointwise.json
    python -m sophiavl.eval.trm pairwise --src /data/VL-RewardBench | hf://MMInstruction/VL-RewardBench \\
        --base-url http://127.0.0.1:8000/v1 [--tie half|wrong|exclude] [--samples K --temperature T] \\
        --out trm-pairwise.json
    python -m sophiavl.eval.trm pairwise --from-predictions trm-pairwise.jsonl --tie exclude --out trm-exclude.json

Every request goes through :class:`sophiavl.rewards.trm.client.ThinkingJudge`, the client Trust-GRPO uses, so
the model is asked with the training prompt, parsed by the same parser and counted the same way. A failed judgement
is counted and excluded, never a score of 0. ``--from-predictions FILE`` (instead of ``--data`` / ``--src``)
re-summarises the judgements an earlier run saved with ``--predictions FILE``: no judge is asked, ``--base-url`` is
not needed. See docs/trm-evaluation.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sophiavl.rewards.trm.client import ThinkingJudge
from sophiavl.rewards.trm.config import ThinkingRMConfig, add_judge_arguments

from .data import PAIR_COLUMNS, POINTWISE_COLUMNS, find_test_parquet, open_parquet, read_pairs, read_pointwise
from .pairwise import TIE_RULES
from .pointwise import pointwise_report, pointwise_text, score_rows
from .run import Progress
from .saved import read_predictions
from .vlrewardbench import pairwise_report, pairwise_text, score_pairs

#: hub files fetched for ``--src hf://...`` (the benchmark's test split only)
VLRB_PATTERNS = ["data/test-*.parquet"]


FROM_PREDICTIONS_HELP = (
    "re-summarise the judgements an earlier run saved with --predictions FILE, asking no judge (no --base-url needed); "
    "instead of %s"
)


def _judge_options(parser: argparse.ArgumentParser) -> None:
    add_judge_arguments(parser.add_argument_group("judge (as reward.thinking_rm.* in training)"))
    # required for a live run only: main() checks it, as a re-summary (--from-predictions) asks no judge
    parser._option_string_actions["--base-url"].required = False
    o = parser.add_argument_group("output")
    o.add_argument("--out", type=Path, required=True, help="report file (JSON)")
    o.add_argument("--predictions", type=Path, default=None, help="also write one JSON line per row/pair here")
    o.add_argument("--limit", type=int, default=None, help="evaluate only the first N rows/pairs")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (subcommands ``pointwise`` and ``pairwise``)."""
    parser = argparse.ArgumentParser(prog="python -m sophiavl.eval.trm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pointwise", help="agreement with the labels of held-out TRM rows")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="held-out TRM parquet (e.g. data/trm/val-00000.parquet)")
    source.add_argument("--from-predictions", type=Path, metavar="FILE", help=FROM_PREDICTIONS_HELP % "--data")
    _judge_options(p)
    q = sub.add_parser("pairwise", help="VL-RewardBench accuracy from pointwise scores")
    source = q.add_mutually_exclusive_group(required=True)
    source.add_argument("--src", help="VL-RewardBench folder, its test parquet file, or hf://OWNER/NAME")
    source.add_argument("--from-predictions", type=Path, metavar="FILE", help=FROM_PREDICTIONS_HELP % "--src")
    q.add_argument("--revision", default=None, help="hub revision for an hf:// source (branch, tag or commit)")
    q.add_argument("--tie", choices=TIE_RULES, default="half", help="a tie counts 0.5, 0, or is excluded")
    _judge_options(q)
    return parser


def make_judge(args: argparse.Namespace) -> ThinkingJudge:
    """The :class:`ThinkingJudge` the options describe (raises ``ValueError`` naming the flag for bad values)."""
    return ThinkingJudge.from_config(ThinkingRMConfig.from_args(args))


def _limited(items, limit: int | None):
    for i, item in enumerate(items):
        if limit is not None and i >= limit:
            return
        yield item


def _clean(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by ``None`` (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


async def _run(args: argparse.Namespace, judge: ThinkingJudge, data: Path, total: int) -> dict[str, Any]:
    sink = open(args.predictions, "w", encoding="utf-8") if args.predictions else nullcontext(None)  # noqa: SIM115
    async with judge:
        with sink as predictions:
            if args.command == "pointwise":
                items = _limited(read_pointwise(data, judge.template), args.limit)
                records = await score_rows(judge, items, Progress("pointwise", total), predictions)
                return pointwise_report(records)
            items = _limited(read_pairs(data), args.limit)
            records = await score_pairs(judge, items, Progress("pairwise", total), predictions)
            return pairwise_report(records, args.tie)


def resolve_pairwise_data(src: str, revision: str | None) -> Path:
    """The VL-RewardBench test parquet named by ``--src``: a parquet file, a folder holding ``data/test-*.parquet``
    (or one ``test-*.parquet`` below it), or ``hf://OWNER/NAME`` resolved through the hub cache
    (:func:`sophiavl.data_prep.hub.resolve_src`; ``HF_HUB_OFFLINE=1`` reads the cache only)."""
    if src.endswith(".parquet") and not src.startswith("hf://"):
        path = Path(src).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--src {src}: no such file")
        return path
    from sophiavl.data_prep.hub import resolve_src

    return find_test_parquet(resolve_src(src, revision=revision, allow_patterns=VLRB_PATTERNS))


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns the exit status (0 ok, 1 nothing could be scored, 2 bad arguments or input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    if args.from_predictions is not None:
        if args.predictions is not None:
            parser.error("--predictions saves a live run's judgements; with --from-predictions they are saved already")
        return resummarise(args)
    if args.base_url is None:
        parser.error("the following arguments are required: --base-url (or --from-predictions FILE)")
    try:
        if args.command == "pointwise":
            data = args.data
            if not data.is_file():
                raise FileNotFoundError(f"--data {data}: no such file")
        else:
            data = resolve_pairwise_data(args.src, args.revision)
        total = open_parquet(data, POINTWISE_COLUMNS if args.command == "pointwise" else PAIR_COLUMNS)
        if args.limit is not None:
            total = min(total, args.limit)
        judge = make_judge(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    report = asyncio.run(_run(args, judge, data, total))
    elapsed = time.monotonic() - started
    report = {
        "command": args.command,
        "data": str(data),
        **report,
        "judge": {
            "base_url": judge.url,
            "model": judge.model,
            "prompt_template": args.prompt_template or "packaged",
            "temperature": judge.temperature,
            "samples": judge.samples,
            "seed": judge.seed,
            "constrain_output": judge.constrain_output,
            "stats": judge.snapshot(),
        },
        "elapsed_s": elapsed,
    }
    label = f"{judge.model}, tie={args.tie}, K={args.samples}" if args.command == "pairwise" else ""
    return _write(args, report, label, f"{elapsed:.1f} s")


def resummarise(args: argparse.Namespace) -> int:
    """The report of the judgements saved in ``args.from_predictions`` (:func:`read_predictions`) under this run's
    ``--tie`` and ``--limit`` (the first N items by index), written to ``--out`` and printed, as a live run does; no
    judge is made or asked, so the judge options are ignored. Returns 0, 1 when no item was judged, 2 (no report) for
    a missing or unusable file."""
    try:
        records = read_predictions(args.from_predictions, args.command)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records = records[: args.limit] if args.limit is not None else records
    summary = pointwise_report(records) if args.command == "pointwise" else pairwise_report(records, args.tie)
    report = {"command": args.command, "from_predictions": str(args.from_predictions), **summary, "judge": None}
    label = f"from {args.from_predictions.name}" + (f", tie={args.tie}" if args.command == "pairwise" else "")
    return _write(args, report, label, "no judge asked")


def _write(args: argparse.Namespace, report: dict[str, Any], label: str, how: str) -> int:
    """Writes ``report`` to ``--out``, prints its summary (``label`` names our row of Table 3); returns 1 when items
    were read but none was judged, else 0."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_clean(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if args.command == "pointwise":
        print(pointwise_text(report))
    else:
        print(pairwise_text(report, f"this TRM ({label})"))
    print(f"report written to {args.out} ({how})")
    if report["n"] == 0 and report.get("rows", report.get("pairs")):
        print("error: no row could be scored (see failure_kinds in the report)", file=sys.stderr)
        return 1
    return 0
