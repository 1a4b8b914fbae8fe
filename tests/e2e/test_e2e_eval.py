"""End to end on CPU: the `make demo-eval` run (tiny hub copies -> sophiavl.eval.prepare -> verl main_ppo
+recipe=sophiavl_eval with vLLM rollouts -> sophiavl.eval.report), checked from the outside: the report's shape and
that every prepared row was generated and scored. The scoring and aggregation themselves are checked exactly by the
unit tests (tests/eval/).

Needs the e2e venv (`make e2e-venv`); without it the test is skipped, unless SOPHIAVL_E2E=require (what `make test`
sets), where it fails.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import NamedTuple

import pytest

import tiny_benchmarks as fx  # examples/cpu (on pytest's path)

# the e2e tests' shared harness: the venv check, the runner (SIGTERM on timeout, so that the demo stops its own
# processes, then SIGKILL) and the process scans
from sophiavl_testing import e2e_harness as harness

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TIMEOUT_S = harness.TIMEOUT_S
DEADLINE_S = TIMEOUT_S - 120  # the demo's own limit for all its stages; then it stops its processes


class EvalRun(NamedTuple):
    stdout: str
    summary: dict
    report: dict
    dump: list[dict]
    rows: list[dict]
    work: Path


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    harness.require_e2e_venv()
    work = tmp_path_factory.mktemp("e2e-eval")
    demo_eval = REPO / "examples" / "cpu" / "demo_eval.py"
    cmd = [str(harness.E2E_PY), str(demo_eval), "--workdir", str(work), "--deadline", str(DEADLINE_S)]
    proc = harness._run_demo(cmd, dict(os.environ, DEMO_QUIET="1"), work, TIMEOUT_S, work)
    summary = json.loads((work / "summary.json").read_text()) if (work / "summary.json").exists() else {}
    if proc.returncode != 0:
        log = (work / "eval.log").read_text()[-6000:] if (work / "eval.log").exists() else ""
        pytest.fail(f"demo-eval exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
                    f"--- stderr ---\n{proc.stderr[-3000:]}\n--- eval.log (tail) ---\n{log}")  # fmt: skip
    dump = [json.loads(line) for line in (work / "dump" / "0.jsonl").read_text().splitlines() if line.strip()]
    rows = [json.loads(line) for line in (work / "rows.jsonl").read_text().splitlines()]
    return EvalRun(proc.stdout, summary, json.loads((work / "report.json").read_text()), dump, rows, work)


def test_exit_status_and_table_printed(eval_run):
    assert eval_run.summary["exit_status"] == 0
    assert "| benchmark | this model | SophiaVL-R1-7B (paper) |" in eval_run.stdout


def test_report_has_every_benchmark_and_every_row(eval_run):
    benchmarks = eval_run.report["benchmarks"]
    assert list(benchmarks) == ["mathvista", "mathverse", "mmmu", "mme", "chartqa", "mmbench", "mmstar"]
    for name, b in benchmarks.items():
        assert b["n"] == fx.EXPECTED[name][1], name  # every prepared row ...
        assert b["missing"] == 0, name  # ... has a scored generation in the dump
        assert math.isfinite(b["score"]) and b["score"] >= 0
        assert b["score"] <= (400.0 if name == "mme" else 100.0)  # MME: 2 subtasks of at most 200 points here
        assert 0.0 <= b["answer_format_share"] <= 1.0
        assert b["paper"]["SophiaVL-R1-7B"] is not None and b["sub_scores"]
    assert set(benchmarks["mme"]["sub_scores"]) >= {"perception", "cognition"}


def test_dump_rows_carry_the_scoring_keys(eval_run):
    rows = eval_run.dump
    assert len(rows) == sum(written for _, written, _ in fx.EXPECTED.values())  # one greedy generation per row
    for row in rows:
        assert row["step"] == 0  # validation before any training step, no checkpoint resumed
        assert row["acc"] in (0.0, 1.0) and row["score"] == row["acc"]
        assert row["benchmark"] in fx.EXPECTED and row["id"]
        assert row["decided_by"] in ("rule", "none")
    assert len({(r["benchmark"], r["id"]) for r in rows}) == len(rows)


def test_greedy_answers_are_tagged_and_scored(eval_run):
    """The greedy warm-up's policy closes its answer tags, so the greedy table has verdicts: some benchmarks
    non-zero, and every multiple-choice row answered with its gold letter is right."""
    benchmarks = eval_run.report["benchmarks"]
    assert sum(b["answer_format_share"] for b in benchmarks.values()) > 0
    assert any(b["score"] > 0 for b in benchmarks.values())
    letters = [
        r
        for r in eval_run.dump
        if r["pred_source"] == "answer" and r["pred"] == r["gts"] and r["gts"] in ("A", "B", "C", "D")
    ]
    assert letters and all(r["acc"] == 1.0 for r in letters)


def test_rows_jsonl_audits_every_row_and_is_shown(eval_run):
    rows = eval_run.rows
    assert len(rows) == sum(written for _, written, _ in fx.EXPECTED.values())
    dump = {(r["benchmark"], r["id"]): r for r in eval_run.dump}
    for row in rows:
        line = dump[(row["benchmark"], row["id"])]
        assert row["correct"] == (line["acc"] == 1.0) == row["rule_correct"]
        assert row["decided_by"] == line["decided_by"] and row["gold"] == line["gts"]
        assert row["extracted"] == line["pred"] and row["missing"] is False
    assert "lines of" in eval_run.stdout and json.dumps(rows[0], ensure_ascii=False) in eval_run.stdout


def test_no_process_left_behind(eval_run):
    assert eval_run.summary["marker"] == harness.demo.MARKER
    assert harness.demo.marked_pids(eval_run.summary["run_id"]) == []
    assert harness._pids_naming(str(eval_run.work)) == []
