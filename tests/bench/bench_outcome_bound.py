"""Benchmark: the cost of the outcome scorer's wall-clock bound (helper processes) per scoring.

Scores the same mixed answers (multiple choice, OCR, free-form, numerical; 1/4 each) from 4 worker threads, as verl's
reward workers call the scorer, two ways in alternating runs: ``compute_score`` (bounded: each scoring goes to one of
``--processes`` helper processes and back) and the unbounded in-thread ``outcome_score``. Reports the median wall time
per scoring of each, the overhead per scoring (goal: <= 2 ms; a training step scores 64 responses spread over the
reward workers), and the time a runaway answer (a symbolic integral) takes to come back with ``--timeout`` 1 s (goal:
<= timeout + 3 s, the replacement helper's start included). Writes ``DIR/outcome_bound.json``.

    python tests/bench/bench_outcome_bound.py --out bench-results [--runs 5] [--calls 400] [--processes 4]
    python tests/bench/bench_outcome_bound.py --out DIR --smoke    # 1 run of 16 calls on 2 helpers: seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sophiavl.rewards.outcome.score import compute_score, outcome_score

GOAL_OVERHEAD_MS = 2.0
GOAL_RUNAWAY_EXTRA_S = 3.0
CASES = [
    ("B. 40", "B", "multiple choice"),
    ("hello word of text", "hello world of text", "OCR"),
    ("the cat sat on the mat", "a cat sat on a mat", "free-form"),
    ("\\frac{1}{2}", "0.5", "numerical"),
]
RUNAWAY = "\\int_0^{1} x^{100} e^{x} \\sin(x) dx"


def wrap(answer: str) -> str:
    return f"<think>reasoning</think><answer>{answer}</answer>"


def timed(fn, calls: int) -> float:
    """Seconds for ``calls`` scorings by 4 threads."""
    jobs = [CASES[i % len(CASES)] for i in range(calls)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda job: fn(*job), jobs))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (1 run, 16 calls, 2 helpers): seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.calls, args.processes = 1, 16, 2

    def bounded(answer, truth, kind):
        return compute_score("bench", wrap(answer), truth, {"problem_type": kind}, scorer_processes=args.processes)

    def direct(answer, truth, kind):
        return outcome_score(wrap(answer), truth, kind)

    timed(bounded, 4 * args.processes)  # start the helpers
    timed(direct, len(CASES))  # load the scorers' libraries in this process
    ours, base = [], []
    for _ in range(args.runs):
        ours.append(timed(bounded, args.calls) / args.calls)
        base.append(timed(direct, args.calls) / args.calls)
    start = time.perf_counter()
    runaway = compute_score("bench", wrap(RUNAWAY), "3", {"problem_type": "numerical"}, scorer_timeout_s=1.0)
    runaway_s = time.perf_counter() - start
    result = {
        "bounded_ms_per_call": 1000 * statistics.median(ours),
        "unbounded_ms_per_call": 1000 * statistics.median(base),
        "overhead_ms_per_call": 1000 * (statistics.median(ours) - statistics.median(base)),
        "goal_overhead_ms": GOAL_OVERHEAD_MS,
        "runaway_timeout_s": 1.0,
        "runaway_returned_after_s": runaway_s,
        "runaway_scorer_failed": runaway["scorer_failed"],
        "goal_runaway_s": 1.0 + GOAL_RUNAWAY_EXTRA_S,
        "runs": args.runs,
        "calls": args.calls,
        "processes": args.processes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "outcome_bound.json").write_text(json.dumps(result, indent=1))
    print(
        f"outcome bound: {result['bounded_ms_per_call']:.3f} ms per scoring bounded, "
        f"{result['unbounded_ms_per_call']:.3f} ms in-thread: overhead {result['overhead_ms_per_call']:.3f} ms "
        f"(goal <= {GOAL_OVERHEAD_MS} ms); a runaway answer came back after {runaway_s:.2f} s with a 1 s bound "
        f"(goal <= {result['goal_runaway_s']:.0f} s), scorer_failed={runaway['scorer_failed']:g}"
    )
    return result


if __name__ == "__main__":
    main()
