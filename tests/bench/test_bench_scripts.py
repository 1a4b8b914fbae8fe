"""Every benchmark script ``tests/bench/bench_*.py`` (found by glob, so a new one is covered) runs at its smoke size
(``--smoke --out DIR``) with this venv's python and writes ``DIR/<name>.json``: a moved name or a changed interface
fails here, in `make test`, instead of in `make bench`. The figures themselves are `make bench`'s business."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parents[1]
SCRIPTS = sorted(BENCH.glob("bench_*.py"))
#: A smoke run takes seconds; this is the limit past which it counts as hung (a loaded 2-core machine included).
SMOKE_TIMEOUT_S = 180


def test_the_glob_finds_the_benchmarks():
    assert {"bench_outcome_bound.py", "bench_trust.py", "bench_judge.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_the_benchmark_runs_at_smoke_size_and_writes_its_json(script, tmp_path):
    name = script.stem.removeprefix("bench_")
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{script.name} --smoke exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    written = out / f"{name}.json"
    assert written.is_file(), f"{script.name} --smoke wrote no {written.name} (found: {sorted(out.glob('*'))})"
    result = json.loads(written.read_text())
    assert isinstance(result, dict) and result, f"{written.name} holds no figures: {result!r}"
