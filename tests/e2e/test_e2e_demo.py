"""End to end on CPU: the `make demo` run (verl main_ppo + recipe sophiavl + our reward manager, trust sampler and
trust_grpo estimator, vLLM rollouts, a vLLM judge on loopback), checked from the outside.

Needs the e2e venv (`make e2e-venv`; `make test` makes it). Without it the test is skipped, unless
SOPHIAVL_E2E=require (what `make test` sets), where it fails. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[2]
E2E_PY = REPO / os.environ.get("E2E_VENV", ".venv-e2e") / "bin" / "python"
STEPS = 2
TIMEOUT_S = 780  # the whole demo, judge start-up included; with GRACE_S and the clean-up, under 15 minutes
DEADLINE_S = TIMEOUT_S - 120  # the demo's own limit for all its stages; it then stops its processes (< 1 minute)
GRACE_S = 60  # after the timeout: SIGTERM (the demo stops its processes), then SIGKILL after this long


def _load_demo_module():
    """The demo driver, loaded by path (tests are never imported as packages): its process scan is reused here."""
    spec = importlib.util.spec_from_file_location("sophiavl_e2e_demo", Path(__file__).with_name("demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load_demo_module()

# Keys every training step must log: the summary's columns (the trust sampler's metrics and verl's step time), and
# the estimator's advantages and the actor's loss.
STEP_KEYS = (
    *(key for _, key in demo.SUMMARY_COLUMNS),
    "critic/score/mean",
    "critic/rewards/mean",
    "critic/advantages/mean",
    "actor/pg_loss",
)
FINITE_KEYS = ("trust/outcome_mean", "trust/thinking_mean", "trust/reward_mean", "critic/score/mean",
               "critic/rewards/mean", "critic/advantages/mean", "trust/gamma_mean", "trust/alpha_t")  # fmt: skip


class DemoRun(NamedTuple):
    proc: subprocess.CompletedProcess
    summary: dict
    work: Path


def _pids_naming(text: str) -> list[int]:
    """Live processes whose command line contains text (zombies have an empty one)."""
    needle = text.encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def _kill_leftovers(work: Path) -> None:
    """Last resort after a SIGKILLed demo: the run's processes, found by the work directory in their command line
    (judge, trainer) and by the run id those carry in their environment (Ray's and vLLM's processes)."""
    run_ids = set()
    for pid in _pids_naming(str(work)):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                for var in f.read().split(b"\0"):
                    if var.startswith(f"{demo.MARKER}=".encode()):
                        run_ids.add(var.split(b"=", 1)[1].decode())
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
    for run_id in run_ids:
        demo.kill_marked(run_id)


def _run_demo(cmd: list[str], env: dict, work: Path) -> subprocess.CompletedProcess:
    """Runs the demo; past TIMEOUT_S it gets SIGTERM, which it turns into its own clean-up (SIGKILL, which
    subprocess.run would send, skips that and leaves its process groups running), then SIGKILL after GRACE_S."""
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=GRACE_S)
            how = "stopped with SIGTERM"
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            _kill_leftovers(work)
            how = f"still running {GRACE_S} s after SIGTERM: killed"
    pytest.fail(f"demo did not finish within {TIMEOUT_S} s ({how})\n--- stdout ---\n{stdout[-4000:]}\n"
                f"--- stderr ---\n{stderr[-3000:]}")  # fmt: skip


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    if not E2E_PY.exists():
        if os.environ.get("SOPHIAVL_E2E") == "require":
            pytest.fail(f"{E2E_PY} missing: `make e2e-venv` should have made it")
        pytest.skip(f"no e2e venv at {E2E_PY}: run `make e2e-venv` (or `make test`)")
    work = tmp_path_factory.mktemp("e2e")
    env = dict(os.environ, DEMO_QUIET="1")
    proc = _run_demo(
        [str(E2E_PY), str(REPO / "tests" / "e2e" / "demo.py"), "--workdir", str(work), "--steps", str(STEPS),
         "--deadline", str(DEADLINE_S)],
        env, work,
    )  # fmt: skip
    summary_path = work / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if proc.returncode != 0:
        tail = (work / "train.log").read_text()[-6000:] if (work / "train.log").exists() else ""
        pytest.fail(f"demo exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
                    f"--- stderr ---\n{proc.stderr[-3000:]}\n--- train.log (tail) ---\n{tail}")  # fmt: skip
    return DemoRun(proc, summary, work)


def test_exit_status_and_summary_printed(demo_run):
    proc, summary = demo_run.proc, demo_run.summary
    assert proc.returncode == 0
    assert summary["exit_status"] == 0
    assert "per-step summary" in proc.stdout


def test_every_step_logs_the_trust_metrics(demo_run):
    steps = demo_run.summary["steps"]
    assert [s["step"] for s in steps] == list(range(1, STEPS + 1))
    for step in steps:
        missing = [k for k in STEP_KEYS if k not in step]
        assert not missing, f"step {step['step']} lacks {missing}"


def test_rewards_are_finite_and_use_the_thinking_score(demo_run):
    for step in demo_run.summary["steps"]:
        for key in FINITE_KEYS:
            assert math.isfinite(step[key]), f"step {step['step']}: {key}={step[key]}"
        assert step["trust/rm_failed_count"] == 0
        assert 0.0 <= step["trust/thinking_mean"] <= 1.0
        # paper semantics: R = Ro + gamma * alpha_t * Rt; with alpha_t > 0 and Rt > 0 the thinking score shows
        assert step["trust/alpha_t"] > 0
        if step["trust/thinking_mean"] > 0:
            assert step["trust/reward_mean"] > step["trust/outcome_mean"]


def test_judge_server_received_the_requests(demo_run):
    summary = demo_run.summary
    asked = sum(s["trust/rm_requested_count"] for s in summary["steps"])
    assert asked > 0
    # the server counts every finished chat request; the manager counts the judgements it made for training
    assert summary["judge_requests"] >= asked


def test_no_process_left_behind(demo_run):
    summary, work = demo_run.summary, demo_run.work
    # the demo's own scan: nothing carries the run's marker variable
    assert summary["marker"] == demo.MARKER
    assert demo.marked_pids(summary["run_id"]) == []
    # independent of the demo's bookkeeping: no process names the run's work directory (the judge serves
    # WORKDIR/models/judge, the trainer reads WORKDIR/rows and WORKDIR/models/policy) ...
    assert (work / "models" / "judge").is_dir()
    assert _pids_naming(str(work)) == []
    # ... and the judge's port is closed
    port = summary["judge_port"]
    assert isinstance(port, int) and port > 0
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"the judge port {port} still accepts connections"
