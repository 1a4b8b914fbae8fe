"""Benchmark: converting generated 10,000- and 20,000-row datasets with images (data_prep streaming check).

    python tests/bench/bench_data_prep.py --out DIR [--rows 10000,20000] [--workers 1,2]
    python tests/bench/bench_data_prep.py --out DIR --smoke    # --rows 20,40 --workers 1: seconds

Each dataset has two subsets: ``math`` with unpacked images and ``chart`` with its images in ``Chart.zip``
(64x64 noise PNGs, about 12 KB each, every one distinct). Each conversion runs the real command as a subprocess.

Measured per run: wall time and rows/s; peak resident memory of the whole command tree, as the maximum over
time of the *sum* of RSS of the command and all its descendants, sampled every 20 ms with psutil
(``peak_tree_rss_mb``); and, as a cross-check, ``ru_maxrss`` from ``wait4`` for that one command
(``max_single_rss_mb``: the largest single process, not a sum). Every image in the output is compared with the
source file's SHA-256 (``images_byte_identical``).

Goals (issue 5): peak memory of the largest run within 20% of the smallest (streaming), under 1.5 GB, and all
images byte-identical. Writes ``DIR/data_prep.json`` and prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import psutil
import pyarrow.parquet as pq
from PIL import Image

GOAL_RATIO, GOAL_PEAK_MB = 1.2, 1536


def _png(rng: random.Random, side: int = 64) -> bytes:
    img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def make_dataset(root: Path, n: int, seed: int = 0) -> dict[str, str]:
    """Writes ``n`` records (half unpacked, half zipped); returns problem key -> SHA-256 of its image."""
    rng = random.Random(seed)
    (root / "json").mkdir(parents=True)
    (root / "Math" / "img").mkdir(parents=True)
    shas: dict[str, str] = {}
    types = ["numerical", "multiple choice", "OCR", "free-form", "text"]
    for subset, top in (("math", "Math"), ("chart", "Chart")):
        recs = []
        zf = zipfile.ZipFile(root / "Chart.zip", "w", zipfile.ZIP_STORED) if top == "Chart" else None
        for i in range(n // 2 if top == "Math" else n - n // 2):
            data = _png(rng)
            rel = f"{top}/img/{i:06d}.png"
            if zf is None:
                (root / rel).write_bytes(data)
            else:
                zf.writestr(rel, data)
            ptype = types[i % len(types)]
            recs.append(
                {
                    "problem_id": i,
                    "problem": f"<image>Question {i} about the picture: what is shown?",
                    "data_type": "image",
                    "problem_type": ptype,
                    "options": ["A. one", "B. two", "C. three", "D. four"] if ptype == "multiple choice" else [],
                    "process": "",
                    "solution": f"<answer>{'B' if ptype == 'multiple choice' else i}</answer>",
                    "path": "./" + rel,
                    "data_source": f"bench-{subset}",
                }
            )
            shas[f"bench-{subset}/{i}"] = hashlib.sha256(data).hexdigest()
        if zf is not None:
            zf.close()
        (root / "json" / f"{subset}.json").write_text(json.dumps(recs, indent=1))
    return shas


def measure(cmd: list[str]) -> dict:
    """Runs ``cmd``; returns wall seconds, exit code, peak summed tree RSS and wait4's ru_maxrss (MiB)."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            tree = [proc] + proc.children(recursive=True)
            total = 0
            for p in tree:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, total)
        except psutil.Error:
            pass
        time.sleep(0.02)
    return {
        "wall_s": round(time.perf_counter() - t0, 2),
        "exit_code": os.waitstatus_to_exitcode(status),
        "peak_tree_rss_mb": round(peak / 2**20, 1),
        "max_single_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
    }


def check_images(out: Path, shas: dict[str, str]) -> tuple[int, bool]:
    """Counts output images and checks each against its source SHA-256, one row group at a time."""
    n, ok = 0, True
    for f in sorted(out.glob("*.parquet")):
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            t = pf.read_row_group(g, columns=["images", "extra_info"]).to_pylist()
            for row in t:
                key = f"{row['extra_info']['data_source']}/{row['extra_info']['problem_id']}"
                for img in row["images"]:
                    n += 1
                    ok &= hashlib.sha256(img["bytes"]).hexdigest() == shas[key]
    return n, ok


def run_benchmark(
    argv: list[str] | None,
    *,
    name: str,
    description: str,
    module: str,
    val_size: int,
    make_dataset: Callable[[Path, int], dict[str, str]],
    check_images: Callable[[Path, dict[str, str]], tuple[int, bool]],
    source_mb: bool = False,
) -> int:
    """The benchmark shared by both converters: parses ``--out/--rows/--workers``, generates each dataset with
    ``make_dataset(root, n)`` (returns one source SHA-256 per image), runs ``python -m <module>`` on it under
    :func:`measure` (``--val-size val_size``, each worker count on the largest dataset), checks the output with
    ``check_images``, and writes ``<out>/<name>.json`` (runs, peak ratio, goals) and prints it. ``source_mb`` adds
    each dataset's size on disk to its runs. Returns 0."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", required=True, help=f"folder for {name}.json")
    ap.add_argument("--rows", default="10000,20000", help="dataset sizes, comma-separated")
    ap.add_argument("--workers", default="1,2", help="worker counts to run on the largest dataset")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (--rows 20,40 --workers 1): seconds")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rows, args.workers = "20,40", "1"
    sizes = sorted(int(x) for x in args.rows.split(","))
    worker_counts = [int(x) for x in args.workers.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix=f"bench_{name}_") as tmp:
        for n in sizes:
            src = Path(tmp) / f"src{n}"
            t0 = time.perf_counter()
            shas = make_dataset(src, n)
            gen_s = time.perf_counter() - t0
            for w in worker_counts if n == sizes[-1] else worker_counts[:1]:
                out = Path(tmp) / f"out{n}_w{w}"
                cmd = [sys.executable, "-m", module, "--src", str(src), "--out", str(out)]
                cmd += ["--val-size", str(val_size), "--workers", str(w), "--no-progress"]
                m = measure(cmd)
                report = json.loads((out / "report.json").read_text())
                n_img, identical = check_images(out, shas)
                run = {
                    "rows": n,
                    "workers": w,
                    **m,
                    "rows_per_s": round(n / m["wall_s"], 1),
                    "rows_per_s_in_report": report["rows_per_s"],
                    "rows_written": report["rows_written"]["total"],
                    "rows_rejected": report["rows_rejected"]["total"],
                    "images_checked": n_img,
                    "images_byte_identical": identical and n_img == len(shas),
                    "parquet_mb": round(sum(f.stat().st_size for f in out.glob("*.parquet")) / 2**20, 1),
                }
                if source_mb:
                    run["source_mb"] = round(sum(f.stat().st_size for f in src.rglob("*") if f.is_file()) / 2**20, 1)
                run["dataset_generation_s"] = round(gen_s, 1)
                runs.append(run)
                print(json.dumps(run), flush=True)
                for f in out.iterdir():
                    f.unlink()
    base = [r for r in runs if r["workers"] == worker_counts[0]]
    small, large = base[0], base[-1]
    ratio = large["peak_tree_rss_mb"] / small["peak_tree_rss_mb"]
    peak = max(r["peak_tree_rss_mb"] for r in runs)
    result = {
        "benchmark": name,
        "memory_method": "max over time of summed RSS of the command and its descendants, psutil every 20 ms",
        "runs": runs,
        f"peak_ratio_{large['rows']}_vs_{small['rows']}": round(ratio, 3),
        "peak_ratio_largest_vs_smallest": round(ratio, 3),  # the same figure under a name that --rows leaves alone
        "peak_tree_rss_mb_max": peak,
        "goals": {
            "peak_ratio_within_20pct": ratio <= GOAL_RATIO,
            "peak_under_1_5_gb": peak < GOAL_PEAK_MB,
            "images_byte_identical": all(r["images_byte_identical"] for r in runs),
            "all_exit_0": all(r["exit_code"] == 0 for r in runs),
        },
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(
        argv,
        name="data_prep",
        description=__doc__.split("\n")[0],
        module="sophiavl.data_prep.sophiavl_130k",
        val_size=500,
        make_dataset=make_dataset,
        check_images=check_images,
    )


if __name__ == "__main__":
    sys.exit(main())
