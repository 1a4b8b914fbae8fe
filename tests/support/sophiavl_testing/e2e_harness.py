"""Shared harness of the end-to-end tests (tests/e2e/test_e2e_demo.py, tests/e2e/test_e2e_resume.py; its venv check,
runner and process scans also serve tests/e2e/test_e2e_trm.py and tests/e2e/test_e2e_eval.py): runs demo.py in a
fresh work folder with the session's shared assets, stops it cleanly on timeout, and checks from outside that
nothing of a run is left. Not a test module: the tests import it as ``sophiavl_testing.e2e_harness`` (tests/support is
on pytest's path)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

import demo  # examples/cpu/demo.py (on pytest's path): its process scans are reused here

REPO = Path(__file__).resolve().parents[3]
E2E_PY = REPO / os.environ.get("E2E_VENV", ".venv-e2e") / "bin" / "python"
TIMEOUT_S = 780  # the whole demo, judge start-up included; with GRACE_S and the clean-up, under 15 minutes
GRACE_S = 60  # after the timeout: SIGTERM (the demo stops its processes), then SIGKILL after this long


def shared_assets(tmp_path_factory) -> Path:
    """One folder per test session for the demo's rows and tiny models (demo.py --assets builds them once)."""
    return tmp_path_factory.getbasetemp() / "e2e-assets"


def require_e2e_venv() -> None:
    """Fails (SOPHIAVL_E2E=require, as `make test` sets) or skips when the e2e venv is missing."""
    if not E2E_PY.exists():
        if os.environ.get("SOPHIAVL_E2E") == "require":
            pytest.fail(f"{E2E_PY} missing: `make e2e-venv` should have made it")
        pytest.skip(f"no e2e venv at {E2E_PY}: run `make e2e-venv` (or `make test`)")


class DemoRun(NamedTuple):
    proc: subprocess.CompletedProcess
    summary: dict
    work: Path
    topology: str
    assets: Path


_pids_naming = demo.pids_naming  # live processes whose command line contains a text


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


def _run_demo(cmd: list[str], env: dict, work: Path, timeout_s: float, assets: Path) -> subprocess.CompletedProcess:
    """Runs the demo; past timeout_s it gets SIGTERM, which it turns into its own clean-up (SIGKILL, which
    subprocess.run would send, skips that and leaves its process groups running), then SIGKILL after GRACE_S."""
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
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
            _kill_leftovers(assets)
            how = f"still running {GRACE_S} s after SIGTERM: killed"
    pytest.fail(f"demo did not finish within {timeout_s:.0f} s ({how})\n--- stdout ---\n{stdout[-4000:]}\n"
                f"--- stderr ---\n{stderr[-3000:]}")  # fmt: skip


def run_demo(tmp_path_factory, name: str, args: list[str], timeout_s: float = TIMEOUT_S) -> DemoRun:
    """Runs demo.py with ``args`` in a fresh work folder, the shared assets and a deadline below ``timeout_s``;
    fails the test with the demo's output when it exits non-zero."""
    require_e2e_venv()
    work = tmp_path_factory.mktemp(name)
    env = dict(os.environ, DEMO_QUIET="1")
    cmd = [str(E2E_PY), str(REPO / "examples" / "cpu" / "demo.py"), "--workdir", str(work),
           "--assets", str(shared_assets(tmp_path_factory)), "--deadline", str(timeout_s - 120), *args]  # fmt: skip
    proc = _run_demo(cmd, env, work, timeout_s, shared_assets(tmp_path_factory))
    summary_path = work / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if proc.returncode != 0:
        logs = sorted(work.glob("train*.log"))
        tail = "".join(f"--- {p.name} (tail) ---\n{p.read_text()[-5000:]}\n" for p in logs)
        pytest.fail(f"demo exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
                    f"--- stderr ---\n{proc.stderr[-3000:]}\n{tail}")  # fmt: skip
    topology = args[args.index("--rm") + 1] if "--rm" in args else "external"
    return DemoRun(proc, summary, work, topology, shared_assets(tmp_path_factory))


def assert_nothing_left(demo_run: DemoRun) -> None:
    """No process of the run is alive: none carries one of its marker values, none names its work folder or the
    shared assets (judge and trainer name them in their command lines), and the judge's (and proxy's) port is
    closed."""
    summary, work = demo_run.summary, demo_run.work
    # the demo's own scan: nothing carries one of the run's marker values (judge, each training run)
    assert summary["marker"] == demo.MARKER
    assert summary["run_id"] in summary["run_ids"]
    for run_id in summary["run_ids"]:
        assert demo.marked_pids(run_id) == [], run_id
    # independent of the demo's bookkeeping: no process names the run's work folder (the trainer's checkpoint
    # folder) or the shared assets (the judge serves ASSETS/models/judge, the trainer reads ASSETS/rows) ...
    assert (demo_run.assets / "models" / "judge").is_dir()
    assert _pids_naming(str(work)) == []
    assert _pids_naming(str(demo_run.assets)) == []
    # ... and the ports of the demo's own servers are closed
    ports = [p for p in (summary["judge_port"], summary.get("proxy_port")) if p is not None]
    # an external judge has a port; verl's own (--rm verl) and a recipe without a judge (no base_url) have none
    external_judge = "reward.thinking_rm.base_url=http" in (work / "command.txt").read_text()
    assert ports or demo_run.topology == "verl" or not external_judge
    for port in ports:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still accepts connections"
