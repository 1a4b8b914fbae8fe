"""The annotation benchmark runs end to end at smoke size and writes its JSON keys (its goals are checked by
`make bench`, never by a timed test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts two loopback servers and two annotate subprocesses

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_annotate.py"


def test_bench_annotate_smoke_writes_every_key(tmp_path):
    command = [sys.executable, str(BENCH), "--out", str(tmp_path), "--smoke"]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "annotate.json").read_text())
    keys = ["ideal_s", "ours_s", "judge_client_s", "ratio_ours_to_judge_client", "sequential_s", "ratio_ours_to_ideal"]
    keys += ["speedup_vs_sequential", "memory", "memory_peak_ratio_largest_to_smallest", "meets_goals"]
    for key in keys:
        assert key in result
    assert result["smoke"] is True and result["rows"] == 64
    assert [m["rows"] for m in result["memory"]] == [300, 1200]
    assert all(m["peak_rss_mib"] > 0 for m in result["memory"])
