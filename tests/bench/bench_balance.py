"""Benchmark: ``python -m sophiavl.data_prep.trm_build balance`` on generated annotation folders of 50,000 and
200,000 lines (memory stays flat, rows/s).

    python tests/bench/bench_balance.py --out DIR [--rows 50000,200000] [--smoke]

Each folder is annotate-like: ``annotations-0.jsonl`` with one line per rollout (one judge, K = 1), responses of
about 600 characters, 64 distinct images under ``images/`` (every fourth row has one), scores skewed towards the
middle and the top as in the paper's Fig. 2, and a share of lines for each rule: 3% bad format, 2% failed
annotations, 3% exact duplicates, 1% over the length limit, plus 10 unparsable lines. Each run is the real command in
a subprocess with the defaults (bins of 0.1, at most 15,000 rows per bin, so the 200k run fills its reservoirs and
writes about 110k rows), measured as in ``bench_data_prep.py`` (peak summed RSS of the process tree every 20 ms,
``ru_maxrss``, wall time) plus its CPU seconds, and lines per wall and per CPU second.

Goal (issue 27): the peak (``ru_maxrss``) of the largest run within 20% of the smallest. ``--smoke`` runs 2,000 and
4,000 lines and writes the same keys. Writes ``DIR/balance.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

import bench_data_prep as _base  # the sibling script: this folder is on sys.path (run as a script, or by pytest)
from sophiavl.data_prep.trm_build.annotation import Annotation
from sophiavl.rewards.collect import RolloutRecord

GOAL_PEAK_RATIO = 1.2
_WORDS = "first then next the value of step so we check that result because therefore gives sum".split()
# relative weights of the labels 0.0 .. 1.0: few low scores, a bump in the middle, many at the top
_WEIGHTS = [3, 2, 2, 3, 5, 8, 9, 8, 9, 12, 14]


def make_folder(root: Path, n: int, seed: int = 0) -> None:
    """Writes ``n`` annotation lines (and 10 unparsable ones) and 64 images into ``root``."""
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True)
    names = []
    for i in range(64):
        data = _base._png(rng)
        name = f"{i:064x}.png"
        (root / "images" / name).write_bytes(data)
        names.append(name)
    dup = ""
    words = [" ".join(rng.choice(_WORDS) for _ in range(100)) for _ in range(256)]  # about 600 characters each
    with open(root / "annotations-0.jsonl", "w", encoding="utf-8") as f:
        for i in range(n):
            kind = rng.random()
            think = words[rng.randrange(256)]
            response = f"<think>Row {i}: {think}</think><answer>{i % 7}</answer>"
            question = f"Question {i}: what does the picture show?"
            if kind < 0.03:
                response = f"<answer>{i % 7}</answer>"  # bad format
            elif kind < 0.06 and i:
                question, response = "Question 0: what does the picture show?", dup  # row 0's pair again
            elif kind < 0.07:
                response = f"<think>{think * 20}</think><answer>1</answer>"  # over 8192 characters
            if i == 0:
                dup = response
            images = [names[i % 64]] if i % 4 == 0 else []
            rollout = RolloutRecord(f"r{i:07d}", "train", i, f"p{i}", "bench", "numerical", question, response, 1.0,
                                    1 + i // 1024, f"g{i // 8}", "grpo")  # fmt: skip
            if 0.07 <= kind < 0.09:
                ann = Annotation(rollout, "judge", "c" * 64, images, [None], [None], ["timeout: 30 s"])
            else:
                score = rng.choices(range(11), weights=_WEIGHTS)[0] / 10
                ann = Annotation(rollout, "judge", "c" * 64, images, [score], [str(score)], [None])
            f.write(ann.to_line())
        for _ in range(10):
            f.write("{not json\n")


def measure(cmd: list[str]) -> dict:
    """``bench_data_prep.measure`` (wall, exit code, sampled tree RSS, ``ru_maxrss``) plus the command's CPU seconds
    (user + system, from the same ``wait4``), which the machine's load does not inflate as it does the wall time."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.02)
    return {
        "wall_s": round(time.perf_counter() - t0, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "exit_code": os.waitstatus_to_exitcode(status),
        "peak_tree_rss_mb": round(peak / 2**20, 1),
        "max_single_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for balance.json")
    ap.add_argument("--rows", default="50000,200000", help="annotation lines per run, comma-separated")
    ap.add_argument("--smoke", action="store_true", help="2,000 and 4,000 lines (seconds)")
    args = ap.parse_args(argv)
    sizes = [2000, 4000] if args.smoke else sorted(int(x) for x in args.rows.split(","))
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_balance_") as tmp:
        for n in sizes:
            src, out = Path(tmp) / f"ann{n}", Path(tmp) / f"out{n}"
            make_folder(src, n)
            cmd = [sys.executable, "-m", "sophiavl.data_prep.trm_build", "balance", "--annotations", str(src),
                   "--out", str(out)]  # fmt: skip
            m = measure(cmd)
            report = json.loads((out / "report" / "report.json").read_text()) if m["exit_code"] == 0 else {}
            rows = report.get("rows", {})
            runs.append({"lines": n, **m, "lines_per_s": round((n + 10) / m["wall_s"]),
                         "lines_per_cpu_s": round((n + 10) / max(m["cpu_s"], 0.01)),
                         "eligible": rows.get("eligible"), "selected": rows.get("selected"),
                         "rejected": rows.get("rejected"),
                         "lines_rejected": report.get("lines", {}).get("rejected")})  # fmt: skip
    # ru_maxrss is the exact peak of the one process (balance starts no other); the sampled tree peak can miss a spike
    ratio = round(runs[-1]["max_single_rss_mb"] / runs[0]["max_single_rss_mb"], 3)
    result = {
        "name": "balance",
        "smoke": args.smoke,
        "runs": runs,
        "peak_ratio_largest_to_smallest": ratio,
        "goals": {
            "peak_ratio_max": GOAL_PEAK_RATIO,
            "peak_ratio_ok": ratio <= GOAL_PEAK_RATIO,
            "all_exit_0": all(r["exit_code"] == 0 for r in runs),
        },  # fmt: skip
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "balance.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
