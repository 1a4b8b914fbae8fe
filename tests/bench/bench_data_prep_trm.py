"""Benchmark: the Thinking-156k converter on generated 10,000- and 20,000-row datasets (streaming check).

    python tests/bench/bench_data_prep_trm.py --out DIR [--rows 10000,20000] [--workers 1,2]

Each dataset is released-like: ``json/multimodal_part.json`` (a JSON array; half the rows, each with its own
64x64 noise PNG, about 12 KB, half of those unpacked under ``OCR/`` and half inside ``Chart.zip``) and
``text_part.jsonl`` (JSON lines, text-only rows). Responses are about 1.5 KB of text, as the released rollouts'
reasoning is long; scores cycle through the 11 levels. Each conversion runs the real command as a subprocess.

Measured per run as in ``bench_data_prep.py`` (its ``measure`` is reused): wall time and rows/s; the peak of the
summed RSS of the command and its descendants (psutil, every 20 ms); ``ru_maxrss`` of the command. Every image in
the output is compared with its source's SHA-256.

Goals (issue 9, as for the 130k converter): peak memory of the largest run within 20% of the smallest, under
1.5 GB, all images byte-identical, every run exit 0. Writes ``DIR/data_prep_trm.json`` and prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq

_spec = importlib.util.spec_from_file_location("bench_data_prep", Path(__file__).with_name("bench_data_prep.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
measure, noise_png = _base.measure, _base._png
GOAL_RATIO, GOAL_PEAK_MB = 1.2, 1536

_WORDS = "first then next the value of step so we check that result because therefore gives sum".split()


def _response(rng: random.Random, i: int) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(250))  # about 1.5 KB
    return f"<think>Row {i}: {words}</think><answer>{i % 7}</answer>"


def make_dataset(root: Path, n: int, seed: int = 0) -> dict[str, str]:
    """Writes ``n`` records; returns ``<id>`` -> SHA-256 of its image (image rows only)."""
    rng = random.Random(seed)
    (root / "json").mkdir(parents=True)
    (root / "OCR" / "img").mkdir(parents=True)
    shas: dict[str, str] = {}
    n_mm = n // 2
    with zipfile.ZipFile(root / "Chart.zip", "w", zipfile.ZIP_STORED) as zf:
        with open(root / "json" / "multimodal_part.json", "w") as f:
            f.write("[\n")
            for i in range(n_mm):
                data = noise_png(rng)
                rel = f"{'OCR' if i % 2 else 'Chart'}/img/{i:06d}.png"
                if i % 2:
                    (root / rel).write_bytes(data)
                else:
                    zf.writestr(rel, data)
                rec = {"id": f"mm-{i}", "problem": f"<image>Question {i} about the picture?",
                       "response": _response(rng, i), "score": (i % 11) / 10, "path": "./" + rel,
                       "data_source": "bench-ocr" if i % 2 else "bench-chart"}  # fmt: skip
                f.write(("," if i else "") + json.dumps(rec) + "\n")
                shas[f"mm-{i}"] = hashlib.sha256(data).hexdigest()
            f.write("]\n")
    with open(root / "text_part.jsonl", "w") as f:
        for i in range(n - n_mm):
            rec = {"question": f"Compute {i} + {i}.", "response": _response(rng, i), "score": f"{(i % 11) / 10:.1f}"}
            f.write(json.dumps(rec) + "\n")
    return shas


def check_images(out: Path, shas: dict[str, str]) -> tuple[int, bool]:
    """Counts output images and checks each against its source SHA-256, one row group at a time."""
    n, ok = 0, True
    for f in sorted(out.glob("*.parquet")):
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            for row in pf.read_row_group(g, columns=["images", "extra_info"]).to_pylist():
                for img in row["images"]:
                    n += 1
                    ok &= hashlib.sha256(img["bytes"]).hexdigest() == shas[row["extra_info"]["id"]]
    return n, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for data_prep_trm.json")
    ap.add_argument("--rows", default="10000,20000", help="dataset sizes, comma-separated")
    ap.add_argument("--workers", default="1,2", help="worker counts to run on the largest dataset")
    args = ap.parse_args(argv)
    sizes = sorted(int(x) for x in args.rows.split(","))
    worker_counts = [int(x) for x in args.workers.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_data_prep_trm_") as tmp:
        for n in sizes:
            src = Path(tmp) / f"src{n}"
            t0 = time.perf_counter()
            shas = make_dataset(src, n)
            gen_s = time.perf_counter() - t0
            for w in worker_counts if n == sizes[-1] else worker_counts[:1]:
                out = Path(tmp) / f"out{n}_w{w}"
                cmd = [sys.executable, "-m", "sophiavl.data_prep.thinking_156k", "--src", str(src), "--out", str(out)]
                cmd += ["--val-size", "1000", "--workers", str(w), "--no-progress"]
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
                    "source_mb": round(sum(f.stat().st_size for f in src.rglob("*") if f.is_file()) / 2**20, 1),
                    "dataset_generation_s": round(gen_s, 1),
                }
                runs.append(run)
                print(json.dumps(run), flush=True)
                for f in out.iterdir():
                    f.unlink()
    base = [r for r in runs if r["workers"] == worker_counts[0]]
    small, large = base[0], base[-1]
    ratio = large["peak_tree_rss_mb"] / small["peak_tree_rss_mb"]
    peak = max(r["peak_tree_rss_mb"] for r in runs)
    result = {
        "benchmark": "data_prep_trm",
        "memory_method": "max over time of summed RSS of the command and its descendants, psutil every 20 ms",
        "runs": runs,
        f"peak_ratio_{large['rows']}_vs_{small['rows']}": round(ratio, 3),
        "peak_tree_rss_mb_max": peak,
        "goals": {
            "peak_ratio_within_20pct": ratio <= GOAL_RATIO,
            "peak_under_1_5_gb": peak < GOAL_PEAK_MB,
            "images_byte_identical": all(r["images_byte_identical"] for r in runs),
            "all_exit_0": all(r["exit_code"] == 0 for r in runs),
        },
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "data_prep_trm.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
