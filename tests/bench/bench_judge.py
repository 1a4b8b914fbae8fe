"""Judge throughput: 1024 judgements against a loopback server with 50 ms fixed latency per request.

Compares, in one run, our ``ThinkingJudge`` (max_concurrency 64) with the ideal ``1024 x 0.05 / 64`` seconds and with
a sequential one-request-at-a-time client (the released code's pattern: a blocking ``httpx.post`` per judgement).
The server runs in a subprocess so that it does not share the client's interpreter lock.

    python tests/bench/bench_judge.py --out DIR      # writes DIR/judge.json, prints the ratios
    python tests/bench/bench_judge.py --out DIR --smoke    # 32 judgements: seconds

Goals: ours within 1.25x of the ideal; ours at least 40x faster than sequential.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import platform
import subprocess
import sys
import time

N = 1024
LATENCY_S = 0.05
CONCURRENCY = 64
SERVER = pathlib.Path(__file__).resolve().parents[1] / "support" / "sophiavl_testing" / "fake_judge_server.py"


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(LATENCY_S)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = json.loads(proc.stdout.readline())["port"]
    return proc, f"http://127.0.0.1:{port}/v1"


async def ours(base_url: str, n: int) -> tuple[float, dict]:
    from sophiavl.rewards.trm.client import JudgeStats, ThinkingJudge

    async with ThinkingJudge(base_url, "fake-thinking-rm", max_concurrency=CONCURRENCY, timeout_s=30) as judge:
        await judge.score("warm-up", "warm-up")  # connection set-up is not what we measure
        judge.stats = JudgeStats()
        started = time.perf_counter()
        scores = await asyncio.gather(*(judge.score(f"question {i}", f"response {i}") for i in range(n)))
        elapsed = time.perf_counter() - started
        stats = judge.snapshot()
    assert all(s is not None for s in scores), "some judgements failed"
    return elapsed, stats


def sequential(base_url: str, n: int) -> float:
    import httpx

    from sophiavl.rewards.trm.parse import parse_score
    from sophiavl.rewards.trm.prompt import build_messages, load_template

    template = load_template()
    url = base_url + "/chat/completions"
    started = time.perf_counter()
    for i in range(n):
        payload = {
            "model": "fake-thinking-rm",
            "temperature": 0.0,
            "messages": build_messages(template, f"question {i}", f"response {i}", None),
        }
        reply = httpx.post(url, json=payload, timeout=30).json()["choices"][0]["message"]["content"]
        assert parse_score(reply) is not None
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--judgements", type=int, default=N)
    parser.add_argument("--smoke", action="store_true", help="tiny size (32 judgements): seconds")
    args = parser.parse_args()
    n = 32 if args.smoke else args.judgements
    proc, base_url = start_server()
    try:
        ours_s, stats = asyncio.run(ours(base_url, n))
        seq_s = sequential(base_url, n)
    finally:
        proc.terminate()
        proc.wait(10)
    ideal_s = n * LATENCY_S / CONCURRENCY
    result = {
        "benchmark": "judge",
        "judgements": n,
        "server_latency_s": LATENCY_S,
        "max_concurrency": CONCURRENCY,
        "ideal_s": ideal_s,
        "ours_s": ours_s,
        "sequential_s": seq_s,
        "sequential_measured_on": n,  # every judgement measured, nothing extrapolated
        "ratio_ours_to_ideal": ours_s / ideal_s,
        "speedup_vs_sequential": seq_s / ours_s,
        "goal_ratio_ours_to_ideal_max": 1.25,
        "goal_speedup_vs_sequential_min": 40.0,
        "ours_latency_p50_s": stats["latency_p50_s"],
        "ours_latency_p99_s": stats["latency_p99_s"],
        "ours_attempts": stats["attempts"],
        "ours_failures": stats["failures"],
        "python": platform.python_version(),
    }
    result["meets_goals"] = result["ratio_ours_to_ideal"] <= 1.25 and result["speedup_vs_sequential"] >= 40.0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "judge.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"judge: ours {ours_s:.3f} s, ideal {ideal_s:.3f} s (ratio {result['ratio_ours_to_ideal']:.3f}, goal <= 1.25); "
        f"sequential {seq_s:.2f} s (speed-up {result['speedup_vs_sequential']:.1f}x, goal >= 40x)"
    )


if __name__ == "__main__":
    main()
