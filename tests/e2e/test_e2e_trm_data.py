"""End to end on CPU: `make demo-trm-data` (issue 27, section 5), checked from the outside. It starts from the rollout
shards the session's GRPO run collected (fixture ``grpo_rollouts``, tests/e2e/conftest.py; the same demo assets),
instead of a GRPO run of its own: the tiny judge on loopback vLLM annotates them, balance filters and samples them over
the paper's ten bins, the Thinking-156k converter takes the result with 0 rejects, and one SFT step of
``+recipe=sophiavl_trm`` trains on it.

Needs the e2e venv (skipped without it, failed under SOPHIAVL_E2E=require as `make test` sets).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from sophiavl_testing import e2e_harness as harness

TIMEOUT_S = 600  # judge start-up, annotation, balance, conversion and one SFT step under torchrun
DEADLINE_S = TIMEOUT_S - 90
MAX_PER_BIN = 3  # demo_trm_data.py's --max default
GRID = {round(i / 10, 1) for i in range(11)}


class TrmDataRun(NamedTuple):
    proc: subprocess.CompletedProcess
    summary: dict
    work: Path
    assets: Path
    rollouts: Path


@pytest.fixture(scope="module")
def run(grpo_rollouts, tmp_path_factory):
    harness.require_e2e_venv()
    work = tmp_path_factory.mktemp("e2e-trm-data")
    assets = harness.shared_assets(tmp_path_factory)
    cmd = [str(harness.E2E_PY), str(harness.REPO / "examples" / "cpu" / "demo_trm_data.py"), "--workdir", str(work),
           "--assets", str(assets), "--rollouts", str(grpo_rollouts), "--deadline", str(DEADLINE_S)]  # fmt: skip
    proc = harness._run_demo(cmd, dict(os.environ, DEMO_QUIET="1"), work, TIMEOUT_S, assets)
    summary_path = work / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if proc.returncode != 0:
        tail = (work / "train.log").read_text()[-5000:] if (work / "train.log").exists() else ""
        pytest.fail(f"demo-trm-data exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-5000:]}\n"
                    f"--- stderr ---\n{proc.stderr[-3000:]}\n--- train.log (tail) ---\n{tail}")  # fmt: skip
    return TrmDataRun(proc, summary, work, assets, grpo_rollouts)


def test_every_collected_response_is_annotated_on_the_grid(run):
    from sophiavl.rewards.collect import iter_shard_records

    rids = {r.rid for r in iter_shard_records(run.rollouts)}
    assert run.summary["records"] == len(rids) == 32  # the GRPO run: 1 step x 4 prompts x 8 responses
    lines = [json.loads(line) for p in sorted((run.work / "annotations").glob("annotations-*.jsonl"))
             for line in p.read_text().splitlines()]  # fmt: skip
    assert sorted(a["rollout"]["rid"] for a in lines) == sorted(rids)  # each once
    for a in lines:
        assert a["row_error"] is None and a["judge_model"] == "thinking-rm"
        (score,) = a["scores"]
        assert score in GRID, a  # structured output held the random judge on the grid
        assert a["images"] and all((run.work / "annotations" / "images" / name).is_file() for name in a["images"])


def test_balance_samples_the_bins_and_the_converter_takes_all(run):
    report = run.summary["balance"]
    assert report["rows"]["total"] == 32
    assert all(b["selected"] <= min(MAX_PER_BIN, b["eligible"]) for b in report["bins"])
    # every bin that had eligible rows gave min(eligible, 3) of them: uniform sampling up to --max
    assert [b["selected"] for b in report["bins"]] == [min(MAX_PER_BIN, b["eligible"]) for b in report["bins"]]
    selected = report["rows"]["selected"]
    assert selected > 0 and report["written"]["rows"] == selected
    png = Path(run.summary["histogram"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    convert = run.summary["convert"]
    assert convert["rows_rejected"]["total"] == 0 and convert["rows_written"]["total"] == selected
    assert "bin" in run.proc.stdout and str(png) in run.proc.stdout  # the per-bin table and the picture's path


def test_one_sft_step_trains_on_the_result(run):
    steps = [s for s in run.summary["sft_steps"] if "train/loss" in s]
    assert [s["step"] for s in steps] == [1]
    assert math.isfinite(steps[0]["train/loss"]) and steps[0]["train/loss"] > 0
    assert "+recipe=sophiavl_trm" in (run.work / "command.txt").read_text().split()


def test_no_process_left_behind(run):
    demo_run = harness.DemoRun(run.proc, run.summary, run.work, "external", run.assets)
    harness.assert_nothing_left(demo_run)
