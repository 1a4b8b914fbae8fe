"""The balance benchmark runs in its smoke size and writes its figures (``make bench`` runs the full sizes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_balance.py"


@pytest.mark.slow
def test_bench_balance_smoke_writes_its_keys(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "balance.json").read_text())
    assert result["smoke"] is True and [r["lines"] for r in result["runs"]] == [2000, 4000]
    assert result["goals"]["all_exit_0"] is True
    for run in result["runs"]:
        assert run["lines_rejected"]["bad_json"] == 10  # the 10 unparsable lines, counted, not fatal
        assert run["selected"] == run["eligible"] > 0  # under 15,000 per bin: everything eligible is kept
    assert set(result) >= {"runs", "peak_ratio_largest_to_smallest", "goals"}
