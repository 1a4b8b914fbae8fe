"""Benchmark: the Thinking-156k converter on generated 10,000- and 20,000-row datasets (streaming check).

    python tests/bench/bench_data_prep_trm.py --out DIR [--rows 10000,20000] [--workers 1,2]
    python tests/bench/bench_data_prep_trm.py --out DIR --smoke    # --rows 20,40 --workers 1: seconds

Each dataset is released-like: ``json/multimodal_part.json`` (a JSON array; half the rows, each with its own
64x64 noise PNG, about 12 KB, half of those unpacked under ``OCR/`` and half inside ``Chart.zip``) and
``text_part.jsonl`` (JSON lines, text-only rows). Responses are about 1.5 KB of text, as the released rollouts'
reasoning is long; scores cycle through the 11 levels. Each conversion runs the real command as a subprocess.

Measured per run as in ``bench_data_prep.py`` (its ``run_benchmark`` and ``measure`` are reused): wall time and
rows/s; the peak of the summed RSS of the command and its descendants (psutil, every 20 ms); ``ru_maxrss`` of the
command. Every image in the output is compared with its source's SHA-256.

Goals (issue 9, as for the 130k converter): peak memory of the largest run within 20% of the smallest, under
1.5 GB, all images byte-identical, every run exit 0. Writes ``DIR/data_prep_trm.json`` and prints it.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import zipfile
from pathlib import Path

import pyarrow.parquet as pq

import bench_data_prep as _base  # the sibling script: this folder is on sys.path (run as a script, or by pytest)

noise_png = _base._png

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
    return _base.run_benchmark(
        argv,
        name="data_prep_trm",
        description=__doc__.split("\n")[0],
        module="sophiavl.data_prep.thinking_156k",
        val_size=1000,
        make_dataset=make_dataset,
        check_images=check_images,
        source_mb=True,
    )


if __name__ == "__main__":
    sys.exit(main())
