"""``balance``: filter annotated responses, sample them uniformly over score bins, write the Thinking-156k layout.

    python -m sophiavl.data_prep.trm_build balance --annotations DIR [DIR ...] --out DIR [--bins E0 E1 ...]
        [--min 5000] [--max 15000] [--seed 0] [--max-response-chars 8192] [--agree-tol 0.2]

Three passes (docs/trm-data-build.md, "3. Filter and balance"):

1. every annotation line of every folder is read once into a temporary SQLite table of small per-line facts
   (:mod:`~.staging`); lines that do not parse are counted by reason;
2. the table, sorted by ``rid``, gives each row with all its lines; the rules (:mod:`~.rules`) apply in order, the
   first failing one counted; an eligible row goes into its bin's reservoir (:mod:`~.reservoir`, at most ``--max``
   rows, seeded per bin);
3. the chosen rows, in ``rid`` order, are read again and written in the released layout (:mod:`~.layout`).

Writes ``OUT/json/multimodal_part.json``, ``OUT/text_part.jsonl``, ``OUT/images/``, and the report
``OUT/report/report.json`` with the picture ``OUT/report/histogram.png`` (in a subfolder, because the Thinking-156k
converter reads every ``*.json`` at the root of ``OUT``). Same input and seed: byte-identical files.

Exit status: 0 done (bins under ``--min`` are reported as short, not an error); 1 no row selected; 2 bad options or a
missing annotation folder (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from .annotation import GRID
from .bins import DEFAULT_EDGES, bin_names, bin_of, check_edges
from .digests import DigestSet
from .histogram import draw_histogram
from .layout import IMAGES_DIR, MULTIMODAL_FILE, TEXT_FILE, LayoutWriter, remove_outputs
from .reservoir import Reservoir
from .rules import LINE_REASONS, RULES, disagrees, snapped_mean
from .staging import Staging, split_location

COMMAND = "balance"
HELP = "filter annotated responses, sample them uniformly over score bins, write the Thinking-156k layout"
REPORT_DIR = "report"
DEFAULTS = {"min": 5000, "max": 15000, "seed": 0, "max_response_chars": 8192, "agree_tol": 0.2}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``balance`` (see the module docstring)."""
    parser.add_argument("--annotations", nargs="+", required=True, metavar="DIR",
                        help="annotation folders (annotations-*.jsonl and images/); lines of one rid in several "
                        "folders (a second judge) are grouped")  # fmt: skip
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (the Thinking-156k layout)")
    parser.add_argument("--bins", nargs="+", type=float, default=list(DEFAULT_EDGES), metavar="EDGE",
                        help="bin edges from 0 to 1; the last bin is closed (default: the paper's ten intervals "
                        "0 0.1 ... 1.0)")  # fmt: skip
    parser.add_argument(
        "--min",
        type=int,
        default=DEFAULTS["min"],
        metavar="N",
        help="a bin with fewer eligible rows is reported as short (never padded) (default %(default)s)",
    )
    parser.add_argument(
        "--max",
        type=int,
        default=DEFAULTS["max"],
        metavar="N",
        help="at most N rows per bin, a seeded uniform sample (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="sampling seed (default %(default)s)")
    parser.add_argument(
        "--max-response-chars",
        type=int,
        default=DEFAULTS["max_response_chars"],
        metavar="N",
        help="drop responses longer than N characters; 0: no limit (default %(default)s)",
    )
    parser.add_argument("--agree-tol", type=float, default=DEFAULTS["agree_tol"], metavar="T",
                        help="drop rows whose scores (K samples, several judges) spread by more than T "
                        "(default %(default)s)")  # fmt: skip


def _check(args: argparse.Namespace) -> tuple[float, ...]:
    edges = check_edges(args.bins)
    if args.max < 1 or args.min < 0 or args.min > args.max:
        raise ValueError(f"need 0 <= --min <= --max and --max >= 1, got --min {args.min} --max {args.max}")
    if args.max_response_chars < 0 or args.agree_tol < 0:
        raise ValueError("--max-response-chars and --agree-tol must be >= 0")
    for folder in args.annotations:
        if not Path(folder).is_dir():
            raise ValueError(f"no annotation folder {folder}")
    return edges


def run(args: argparse.Namespace) -> int:
    """Runs ``balance``; prints the per-bin table; returns the exit status (see the module docstring)."""
    try:
        edges = _check(args)
    except ValueError as e:
        print(f"balance: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_outputs(out)
    with tempfile.TemporaryDirectory(dir=out, prefix=".balance-") as tmp:
        staging = Staging(Path(tmp) / "lines.sqlite", args.max_response_chars)
        try:
            report = balance(staging, args, edges, out)
        finally:
            staging.close()
    print(table(report))
    elapsed = time.perf_counter() - t0
    print(f"{report['lines']['read']} annotation lines in {elapsed:.1f} s "
          f"({report['lines']['read'] / max(elapsed, 1e-9):.0f} lines/s)")  # fmt: skip
    print(f"report: {out / REPORT_DIR / 'report.json'}; picture: {out / REPORT_DIR / 'histogram.png'}")
    if not report["written"]["rows"]:
        print("balance: no row selected; nothing to convert", file=sys.stderr)
        return 1
    print(f"convert it: python -m sophiavl.data_prep.thinking_156k --src {out} --out DIR   (or make prepare-trm-data "
          f"SRC={out})")  # fmt: skip
    return 0


def balance(staging: Staging, args: argparse.Namespace, edges: tuple[float, ...], out: Path) -> dict:
    """The three passes (module docstring); returns the report, also written to ``OUT/report/report.json``."""
    folders = [Path(f) for f in args.annotations]
    files = [staging.add_folder(f) for f in folders]
    names = bin_names(edges)
    reservoirs = [Reservoir(args.max, f"{args.seed}:{i}") for i in range(len(names))]
    seen = DigestSet()
    rejected: Counter[str] = Counter()
    examples: dict[str, dict] = {}
    labelled: Counter[int] = Counter()
    eligible: Counter[int] = Counter()
    rows = multi = 0
    judges: Counter[str] = Counter()

    def reject(rule: str, rid: str, detail: str) -> None:
        rejected[rule] += 1
        examples.setdefault(rule, {"rid": rid, "detail": detail[:300]})

    for ordinal, (rid, lines) in enumerate(staging.groups()):
        rows += 1
        multi += len(lines) > 1
        judges.update({ln.judge for ln in lines})
        first = lines[0]
        if len({ln.rollout_h for ln in lines}) > 1:
            reject("conflicting_rollout", rid, f"{len(lines)} lines with different rollout records")
            continue
        tenths = [t for ln in lines for t in ln.tenths]
        if not tenths:
            reject("failed_annotation", rid, next((ln.fail for ln in lines if ln.fail), "no sample"))
            continue
        label = snapped_mean(tenths)
        labelled[label] += 1
        if disagrees(tenths, args.agree_tol):
            reject("disagreement", rid, f"scores {[t / 10 for t in tenths]} spread by more than {args.agree_tol}")
            continue
        if first.problem is not None:
            reject(first.problem, rid, first.detail or "")
            continue
        if not seen.add(first.dup_h):
            reject("duplicate", rid, "same question, images and response as an earlier row")
            continue
        eligible[label] += 1
        reservoirs[bin_of(label / 10, edges)].offer(ordinal, first.loc, label)

    keys, locs, labels = (np.concatenate(a) for a in zip(*(r.arrays() for r in reservoirs), strict=True))
    order = np.argsort(keys, kind="stable")  # rid order; arrays, not tuples: 17 bytes per chosen row
    writer = LayoutWriter(out)
    selected: Counter[int] = Counter()
    for i in order:
        loc, label = int(locs[i]), int(labels[i])
        ann = staging.read_annotation(loc)
        lines = staging.lines_of(ann.rollout.rid)
        samples = [t for ln in lines for t in ln.tenths]
        line_judges = sorted({ln.judge for ln in lines})
        images_dir = staging.files[split_location(loc)[0]].parent / IMAGES_DIR
        writer.write(ann, images_dir, label, samples, line_judges)
        selected[label] += 1
    writer.close()

    report = _report(args, edges, names, staging, files, folders, rows, multi, judges, rejected, examples,
                     labelled, eligible, selected, writer)  # fmt: skip
    rdir = out / REPORT_DIR
    rdir.mkdir(exist_ok=True)
    (rdir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    before = [b["eligible"] for b in report["bins"]]
    after = [b["selected"] for b in report["bins"]]
    title = f"thinking-reward rows per score bin: {sum(before)} eligible, {sum(after)} selected (seed {args.seed})"
    draw_histogram(rdir / "histogram.png", names, before, after, title)
    return report


def _per_bin(counts: Counter[int], edges: tuple[float, ...], n: int) -> list[int]:
    out = [0] * n
    for tenths, c in counts.items():
        out[bin_of(tenths / 10, edges)] += c
    return out


def _report(args, edges, names, staging, files, folders, rows, multi, judges, rejected, examples, labelled,
            eligible, selected, writer) -> dict:  # fmt: skip
    stats = staging.stats
    n = len(names)
    lab, eli, sel = (_per_bin(c, edges, n) for c in (labelled, eligible, selected))
    bins = [
        {"bin": name, "low": edges[i], "high": edges[i + 1], "labelled": lab[i], "eligible": eli[i],
         "selected": sel[i], "short": sel[i] < args.min}
        for i, name in enumerate(names)
    ]  # fmt: skip
    return {
        "parameters": {
            "annotations": [str(f) for f in folders],
            "annotation_files": files,
            "bins": list(edges),
            "min": args.min,
            "max": args.max,
            "seed": args.seed,
            "max_response_chars": args.max_response_chars,
            "agree_tol": args.agree_tol,
            "label": "mean of all scored samples of the row, snapped to the grid (halves up)",
        },
        "lines": {
            "read": stats.read,
            "valid": stats.valid,
            "rejected": {r: stats.rejected.get(r, 0) for r in LINE_REASONS},
            "examples": stats.examples,
            "sample_errors": dict(sorted(stats.sample_errors.items())),
            "row_errors": dict(sorted(stats.row_errors.items())),
        },
        "rows": {
            "total": rows,
            "with_several_lines": multi,
            "judges": dict(sorted(judges.items())),
            "rules_order": list(RULES),
            "rejected": {r: rejected.get(r, 0) for r in RULES},
            "examples": {r: examples[r] for r in RULES if r in examples},
            "eligible": sum(eligible.values()),
            "selected": sum(selected.values()),
        },
        "grid": {
            f"{g:.1f}": {"labelled": labelled[i], "eligible": eligible[i], "selected": selected[i]}
            for i, g in enumerate(GRID)
        },
        "bins": bins,
        "short_bins": [b["bin"] for b in bins if b["short"]],
        "written": {
            "rows": writer.image_rows + writer.text_rows,
            "image_rows": writer.image_rows,
            "text_rows": writer.text_rows,
            "distinct_images": writer.distinct_images,
            "files": [f for f, k in ((MULTIMODAL_FILE, writer.image_rows), (TEXT_FILE, writer.text_rows)) if k],
        },
    }


def table(report: dict) -> str:
    """The per-bin table printed at the end: labelled, eligible and selected rows per bin, short bins marked."""
    lines = [f"{'bin':<12}{'labelled':>10}{'eligible':>10}{'selected':>10}"]
    for b in report["bins"]:
        mark = f"   short (< --min {report['parameters']['min']})" if b["short"] else ""
        lines.append(f"{b['bin']:<12}{b['labelled']:>10}{b['eligible']:>10}{b['selected']:>10}{mark}")
    r = report["rows"]
    total_l = sum(b["labelled"] for b in report["bins"])
    lines.append(f"{'total':<12}{total_l:>10}{r['eligible']:>10}{r['selected']:>10}")
    dropped = ", ".join(f"{k} {v}" for k, v in r["rejected"].items() if v) or "none"
    bad = ", ".join(f"{k} {v}" for k, v in report["lines"]["rejected"].items() if v) or "none"
    lines.append(f"rows: {r['total']}; dropped by rule: {dropped}; unusable lines: {bad}")
    return "\n".join(lines)
