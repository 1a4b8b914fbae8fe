"""Shared harness of the end-to-end tests (tests/e2e/test_e2e_demo.py, tests/e2e/test_e2e_resume.py; its venv check,
runner and process scans also serve tests/e2e/test_e2e_trm.py and tests/e2e/test_e2e_eval.py): runs demo.py in a
fresh work folder with the session's shared assets, stops it cleanly on timeout, and checks from outside that
nothing of a run is left and that the run stayed on loopback (the sockets its processes listened on, sampled while it
ran, and the addresses in its logs). Not a test module: the tests import it as ``sophiavl_testing.e2e_harness``
(tests/support is on pytest's path)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
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
    listening: tuple = ()  # the sockets the run's processes listened on (SocketWatch), one dict each


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IPv4 or IPv6 literal, brackets allowed, or a name) is a loopback address: 127.0.0.0/8,
    ::1, the IPv4-mapped ::ffff:127.x.y.z, or the name ``localhost``. The wildcards 0.0.0.0 and :: (every interface)
    and every other address or name are not."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _proc_net_address(hex_address: str) -> str:
    """An address of /proc/net/tcp (8 hex digits) or /proc/net/tcp6 (32), written as 32-bit words in this machine's
    byte order, as text."""
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw))


def _listening_inodes() -> dict[str, tuple[str, int]]:
    """Socket inode -> (address, port) of every TCP socket in state LISTEN (0A) in this network namespace."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:  # no IPv6 on this machine
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":
                address, port = fields[1].split(":")
                out[fields[9]] = (_proc_net_address(address), int(port, 16))
    return out


def listening_sockets(pids) -> list[dict]:
    """The TCP sockets the processes ``pids`` listen on: {address, port, pid, process (its command line, 100
    characters), master_port (the process's ``MASTER_PORT`` at its start, or None)}; processes gone meanwhile are left
    out."""
    inodes = _listening_inodes()
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        master = next((v[len(b"MASTER_PORT=") :] for v in environ if v.startswith(b"MASTER_PORT=")), b"")
        master_port = int(master) if master.isdigit() else None
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = link[len("socket:[") : -1] if link.startswith("socket:[") else None
            if inode in inodes:
                address, port = inodes[inode]
                found.append(
                    {
                        "address": address,
                        "port": port,
                        "pid": pid,
                        "process": cmdline.strip()[:100],
                        "master_port": master_port,
                    }
                )
    return found


WATCH_VAR = "SOPHIAVL_E2E_WATCH"  # run_demo's tag in the demo's environment: every process of the run inherits it


class SocketWatch:
    """Looks every ``interval`` s, while a run lasts, at the sockets listened on by the processes whose environment
    carries WATCH_VAR=token (the demo and all it starts: the judge, the trainer, Ray's and vLLM's processes), and
    keeps each (address, port, pid) once. A socket opened and closed between two looks is missed."""

    def __init__(self, token: str, interval: float = 1.0):
        self.needle, self.interval = f"{WATCH_VAR}={token}".encode(), interval
        self.seen: dict[tuple, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            pids = demo._proc_pids("environ", lambda environ: self.needle in environ.split(b"\0"))
            for sock in listening_sockets(pids):
                self.seen.setdefault((sock["address"], sock["port"], sock["pid"]), sock)
            if self._stop.wait(self.interval):
                return

    def start(self) -> SocketWatch:
        self._thread.start()
        return self

    def stop(self) -> tuple:
        """Stops looking; returns every socket seen."""
        self._stop.set()
        self._thread.join(timeout=30)
        return tuple(self.seen.values())


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
    token = uuid.uuid4().hex
    env = dict(os.environ, DEMO_QUIET="1", **{WATCH_VAR: token})
    cmd = [str(E2E_PY), str(REPO / "examples" / "cpu" / "demo.py"), "--workdir", str(work),
           "--assets", str(shared_assets(tmp_path_factory)), "--deadline", str(timeout_s - 120), *args]  # fmt: skip
    watch = SocketWatch(token).start()
    try:
        proc = _run_demo(cmd, env, work, timeout_s, shared_assets(tmp_path_factory))
    finally:
        listening = watch.stop()
    summary_path = work / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if proc.returncode != 0:
        logs = sorted(work.glob("train*.log"))
        tail = "".join(f"--- {p.name} (tail) ---\n{p.read_text()[-5000:]}\n" for p in logs)
        pytest.fail(f"demo exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
                    f"--- stderr ---\n{proc.stderr[-3000:]}\n{tail}")  # fmt: skip
    topology = args[args.index("--rm") + 1] if "--rm" in args else "external"
    return DemoRun(proc, summary, work, topology, shared_assets(tmp_path_factory), listening)


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


# An address in a log: the host of a URL (scheme://host), Ray's "ip=HOST" (the node of a remote worker's line), or an
# IP literal followed by a port (host:port, [v6]:port)
_LOG_ADDRESS = re.compile(
    r"\b[a-z][a-z0-9+.-]*://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
    r"|\bip=(\[?[0-9A-Fa-f:.]+\]?)"
    r"|(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}\b"
)


def log_addresses(text: str) -> list[str]:
    """The hosts of the server addresses in a log text (``_LOG_ADDRESS``) that are IP literals, ``localhost`` or this
    machine's own name; names of other machines (documentation links such as https://docs.ray.io) are left out."""
    names = {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
    hosts = []
    for match in _LOG_ADDRESS.finditer(text):
        host = next(g for g in match.groups() if g)
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            if host.lower() not in names:
                continue
        hosts.append(host)
    return hosts


def _rendezvous(sock: dict) -> bool:
    """True for torch.distributed's rank rendezvous store (TCPStore) of a verl worker group: the socket listens on
    every interface (``::`` or ``0.0.0.0``) at the port verl gave the worker as ``MASTER_PORT``. torch 2.13's TCPStore
    has no bind-address setting (``MASTER_ADDR`` only tells the other ranks where to connect), so no demo setting can
    keep it on loopback; docs/training.md lists it among the ports a cluster keeps behind its firewall."""
    return sock["address"] in ("::", "0.0.0.0") and sock.get("master_port") == sock["port"]


def assert_on_loopback(demo_run: DemoRun) -> None:
    """Nothing of the run was open to the network: every socket its processes listened on (sampled while it ran:
    Ray's GCS, raylets, workers and agents, verl's vLLM HTTP servers, reward router and TransferQueue, the demo's
    judge and proxy) was bound to a loopback address (0.0.0.0 and :: are every interface), and every server address
    in its logs and command is a loopback address. Ray's record of its nodes, when the run had a --nodes cluster,
    too: each node's address and the GCS address."""
    listening = demo_run.listening
    assert listening, "no listening socket of the run was seen"
    exposed = sorted(
        {
            (s["address"], s["port"], s["process"])
            for s in listening
            if not is_loopback(s["address"]) and not _rendezvous(s)
        }
    )
    assert not exposed, f"listening beyond loopback: {exposed}"
    for path in sorted([*demo_run.work.glob("*.log"), demo_run.work / "command.txt"]):
        hosts = sorted({h for h in log_addresses(path.read_text(errors="replace")) if not is_loopback(h)})
        assert not hosts, f"{path.name} names non-loopback addresses: {hosts}"
    record = demo_run.summary.get("ray_nodes")
    if record:
        assert record["nodes"]
        assert [n["address"] for n in record["nodes"] if not is_loopback(n["address"])] == [], record["nodes"]
        assert is_loopback(record["address"].rsplit(":", 1)[0]), record["address"]
