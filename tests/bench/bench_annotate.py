"""Annotation throughput and memory (issue 27): the real ``annotate`` command against a loopback judge.

Throughput: collected rows (256 prepared one-image rows, 4 rollouts each) annotated by ``annotate`` (in this process;
the annotation loop's own time, from its report) against a server with 50 ms fixed latency per request, at
``--concurrency 64``. ``ours_s`` is the time 1024 rows take at steady state: a run of 2048 rows minus a run of 1024
(fresh folders both), so the one-time start (the HTTP session, 64 connections) is left out as the judge benchmark's
warm-up leaves it out; ``ours_cold_s`` is the 1024-row run whole. Compared in one run with the ideal
``1024 x 0.05 / 64`` seconds and with a sequential client (one blocking ``httpx.post`` per row, the same request: the
released code's pattern), every row measured.

Control: the judge client alone (``bench_judge``'s measure: 1024 judgements after a warm-up) on the same server in
the same run, so that a loaded machine shows up in both figures; ``ratio_ours_to_judge_client`` is what annotation
adds over the client it is built on.

Memory: peak RSS of an ``annotate`` subprocess (``os.wait4``'s ``ru_maxrss``) for 50k and for 200k generated rows
against a zero-latency server (2048 prepared rows, small images): annotation keeps no per-row state but an 8-byte
resume key, so the peak should stay flat (within 20 %).

    python tests/bench/bench_annotate.py --out DIR [--smoke]    # writes DIR/annotate.json, prints the ratios

The servers run in subprocesses (``fake_judge_server.py``) so that they do not share the client's interpreter lock.
``--smoke``: tiny sizes (seconds), the same JSON keys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
SUPPORT = HERE.parent / "support"
SERVER = SUPPORT / "sophiavl_testing" / "fake_judge_server.py"
sys.path.insert(0, str(SUPPORT))

from sophiavl_testing.annotate_helpers import read_prepared, rollout, synthetic_prepared, write_rollouts  # noqa: E402

LATENCY_S = 0.05
CONCURRENCY = 64
FULL = {"rows": 1024, "prepared": 256, "memory_rows": (50_000, 200_000), "memory_prepared": 2048}
SMOKE = {"rows": 64, "prepared": 16, "memory_rows": (300, 1200), "memory_prepared": 64}


def start_server(latency_s: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(latency_s)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = json.loads(proc.stdout.readline())["port"]
    return proc, f"http://127.0.0.1:{port}/v1"


def make_rollouts(folder: pathlib.Path, prepared: pathlib.Path, n: int) -> None:
    """``n`` rollouts cycling over the prepared rows, four adjacent rollouts per row (as a GRPO group's)."""
    extra = [row["extra_info"] for _, row in sorted(read_prepared(prepared).items())]
    records = [rollout(f"r{i}", extra[(i // 4) % len(extra)]) for i in range(n)]
    write_rollouts(folder, records)


def annotate_argv(roll: pathlib.Path, prepared: pathlib.Path, base_url: str, out: pathlib.Path) -> list[str]:
    return [
        "annotate", "--rollouts", str(roll), "--data", str(prepared), "--base-url", base_url, "--model", "judge",
        "--out", str(out), "--concurrency", str(CONCURRENCY), "--no-progress",
    ]  # fmt: skip


def ours(tmp: pathlib.Path, prepared: pathlib.Path, base_url: str, n: int) -> dict:
    """The report of one in-process ``annotate`` run over ``n`` fresh rollouts into a fresh folder."""
    from sophiavl.data_prep.trm_build.cli import main

    roll, out = tmp / f"roll-ours-{n}", tmp / f"ours-{n}"
    make_rollouts(roll, prepared, n)
    assert main(annotate_argv(roll, prepared, base_url, out)) == 0
    report = json.loads((out / "annotate_report.json").read_text())
    assert report["rows"]["written"] == n and not report["sample_errors"], "rows failed"
    return report


async def judge_client(base_url: str, n: int) -> tuple[float, dict]:
    """The judge client alone on the same server: the judge benchmark's measure (``n`` judgements at concurrency 64
    after a warm-up), the floor ``annotate`` builds on."""
    import bench_judge  # tests/bench, this script's folder

    return await bench_judge.ours(base_url, n)


def sequential(prepared: pathlib.Path, n: int, base_url: str) -> float:
    """One blocking request per row, with the row's image, the labelling prompt and the reply parsed."""
    import httpx

    from sophiavl.data_prep.trm_build.labelling import label_template, parse_label
    from sophiavl.rewards.trm.prompt import build_messages, load_template

    template = load_template(label_template().path)
    rows = [row for _, row in sorted(read_prepared(prepared).items())]
    url = base_url + "/chat/completions"
    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            row = rows[(i // 4) % len(rows)]
            question = row["extra_info"]["question"]
            messages = build_messages(template, question, f"response {i}", row["images"][0])
            payload = {"model": "judge", "temperature": 0.0, "max_tokens": 16, "messages": messages}
            reply = client.post(url, json=payload).json()["choices"][0]["message"]["content"]
            assert parse_label(reply)[0] is not None
    return time.perf_counter() - started


def peak_rss_mib(tmp: pathlib.Path, prepared: pathlib.Path, base_url: str, n: int) -> dict:
    """Peak RSS (MiB) and wall seconds of one ``annotate`` subprocess over ``n`` generated rows."""
    roll, out = tmp / f"roll-{n}", tmp / f"out-{n}"
    make_rollouts(roll, prepared, n)
    cmd = [sys.executable, "-m", "sophiavl.data_prep.trm_build", *annotate_argv(roll, prepared, base_url, out)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read().decode() if proc.stderr else ""
    report = json.loads((out / "annotate_report.json").read_text())
    assert report["rows"]["written"] == n, report["rows"]
    return {"rows": n, "peak_rss_mib": usage.ru_maxrss / 1024, "wall_s": wall, "rows_per_s": n / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), the same JSON keys")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    n = sizes["rows"]
    with tempfile.TemporaryDirectory(prefix="bench-annotate-") as name:
        tmp = pathlib.Path(name)
        prepared = synthetic_prepared(tmp / "prep", sizes["prepared"])
        proc, base_url = start_server(LATENCY_S)
        try:
            cold = ours(tmp, prepared, base_url, n)
            double = ours(tmp, prepared, base_url, 2 * n)
            client_s, _ = asyncio.run(judge_client(base_url, n))
            seq_s = sequential(prepared, n, base_url)
        finally:
            proc.terminate()
            proc.wait(10)
        mem_prepared = synthetic_prepared(tmp / "prep-mem", sizes["memory_prepared"])
        proc, base_url = start_server(0.0)
        try:
            memory = [peak_rss_mib(tmp, mem_prepared, base_url, m) for m in sizes["memory_rows"]]
        finally:
            proc.terminate()
            proc.wait(10)
    ours_s = double["annotate_s"] - cold["annotate_s"]
    ideal_s = n * LATENCY_S / CONCURRENCY
    growth = memory[-1]["peak_rss_mib"] / memory[0]["peak_rss_mib"]
    result = {
        "benchmark": "annotate",
        "smoke": args.smoke,
        "rows": n,
        "server_latency_s": LATENCY_S,
        "concurrency": CONCURRENCY,
        "ideal_s": ideal_s,
        "ours_s": ours_s,
        "ours_cold_s": cold["annotate_s"],
        "ours_2n_s": double["annotate_s"],
        "ratio_ours_cold_to_ideal": cold["annotate_s"] / ideal_s,
        "ours_latency_p50_s": double["judge"]["latency_p50_s"],
        "judge_client_s": client_s,  # ThinkingJudge alone, 1024 judgements (bench_judge's measure), same server
        "ratio_ours_to_judge_client": ours_s / client_s * 1024 / n,
        "sequential_s": seq_s,
        "sequential_measured_on": n,  # every row measured, nothing extrapolated
        "ratio_ours_to_ideal": ours_s / ideal_s,
        "speedup_vs_sequential": seq_s / ours_s,
        "goal_ratio_ours_to_ideal_max": 1.25,
        "goal_speedup_vs_sequential_min": 40.0,
        "memory": memory,
        "memory_peak_ratio_largest_to_smallest": growth,
        "goal_memory_peak_ratio_max": 1.2,
        "python": platform.python_version(),
    }
    result["meets_goals"] = (
        result["ratio_ours_to_ideal"] <= 1.25 and result["speedup_vs_sequential"] >= 40.0 and growth <= 1.2
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "annotate.json").write_text(json.dumps(result, indent=2) + "\n")
    mem = ", ".join(f"{m['rows']} rows {m['peak_rss_mib']:.0f} MiB ({m['rows_per_s']:.0f} rows/s)" for m in memory)
    print(
        f"annotate: ours {ours_s:.3f} s, ideal {ideal_s:.3f} s (ratio {result['ratio_ours_to_ideal']:.3f}, goal <= "
        f"1.25; cold {result['ratio_ours_cold_to_ideal']:.3f}; judge client alone {client_s:.3f} s); "
        f"sequential {seq_s:.2f} s "
        f"(speed-up {result['speedup_vs_sequential']:.1f}x, goal >= 40x); "
        f"peak RSS {mem} (ratio {growth:.3f}, goal <= 1.2)"
    )


if __name__ == "__main__":
    main()
