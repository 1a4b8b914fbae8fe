"""Outcome scoring with a wall-clock bound that holds in any thread.

math-verify bounds sympy with SIGALRM, which only works in a process's main thread; verl calls the reward function
from worker threads, where a short answer such as ``\\int_0^{1} x^{100} e^{x} \\sin(x) dx`` keeps sympy busy for
minutes. So every scoring runs in a small pool of persistent helper processes (``python -m
sophiavl.rewards.outcome.helper``, one request at a time each, JSON lines over pipes): the caller waits at most
``timeout_s`` seconds for the reply, and a helper that does not answer in time is killed and replaced. In a helper
the scorers run in its main thread, so math-verify's own timeouts work there too.

Cost: one pipe round trip per scoring (0.6-0.8 ms measured on a loaded 2-core machine); a helper starts in
about a second (it imports the scorers' libraries before it accepts work), once per process and after each kill.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

#: Default wall-clock bound of one scoring, seconds (recipe key
#: ``reward.custom_reward_function.reward_kwargs.scorer_timeout_s``).
DEFAULT_TIMEOUT_S = 5.0
#: Default number of helper processes per process that scores (recipe key ``...reward_kwargs.scorer_processes``).
DEFAULT_PROCESSES = 4
#: How long a new helper may take to import the scorers and say it is ready, seconds (not part of ``timeout_s``).
STARTUP_TIMEOUT_S = 120.0
_READY = b"ready\n"
#: The module a helper process runs (:mod:`sophiavl.rewards.outcome.helper`).
HELPER_MODULE = "sophiavl.rewards.outcome.helper"
#: The module whose ``SCORERS`` (problem type -> scorer) a helper serves, imported by name in the helper.
DEFAULT_SCORERS = "sophiavl.rewards.outcome.score"


@dataclass(frozen=True)
class BoundedScore:
    """Result of one bounded scoring.

    Attributes:
        score: the scorer's value, or 0.0 when it failed.
        failed: True when the scorer timed out, raised, or its helper process died.
        reason: empty when it did not fail; else what happened (``"timed out after 5 s"``, the exception).
    """

    score: float
    failed: bool
    reason: str = ""


class _Helper:
    """One helper process; used by one thread at a time (the pool hands it out)."""

    def __init__(self, scorers: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", HELPER_MODULE, "--scorers", scorers],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        self._buffer = b""
        line = self._read_line(time.monotonic() + STARTUP_TIMEOUT_S)
        if line != _READY:
            self.kill()
            raise RuntimeError(
                f"the outcome scorer's helper process (python -m {HELPER_MODULE}) did not start: "
                f"got {line!r} within {STARTUP_TIMEOUT_S:g} s (see its error output above)"
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def _read_line(self, deadline: float) -> bytes | None:
        """The next reply line, ``b""`` at end of file, or None when ``deadline`` (monotonic) passes first."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def score(self, kind: str, answer: str, truth: str, timeout_s: float) -> BoundedScore:
        request = json.dumps({"kind": kind, "answer": answer, "truth": truth}).encode() + b"\n"
        deadline = time.monotonic() + timeout_s
        try:
            self.proc.stdin.write(request)
        except (BrokenPipeError, OSError) as exc:
            self.kill()
            return BoundedScore(0.0, True, f"scorer process died ({exc})")
        line = self._read_line(deadline)
        if line is None:
            self.kill()
            return BoundedScore(0.0, True, f"timed out after {timeout_s:g} s")
        if not line:
            code = self.proc.wait()
            self.kill()
            return BoundedScore(0.0, True, f"scorer process died (exit code {code})")
        reply = json.loads(line)
        if "error" in reply:
            return BoundedScore(0.0, True, reply["error"])
        return BoundedScore(float(reply["score"]), False)


class ScorerPool:
    """Up to ``processes`` helper processes, started on first use; a thread waits for a free one.

    ``scorers`` names the module whose ``SCORERS`` mapping the helpers serve (imported by name in each helper; the
    default is the outcome reward's :data:`sophiavl.rewards.outcome.score.SCORERS`).

    The wait for a free helper is not part of ``timeout_s``: each helper is busy for at most ``timeout_s`` per request,
    so a scoring returns within ``(queued requests / processes + 1) * timeout_s`` plus start-up.
    """

    def __init__(self, processes: int = DEFAULT_PROCESSES, scorers: str = DEFAULT_SCORERS) -> None:
        if processes < 1:
            raise ValueError(f"scorer_processes must be >= 1, got {processes!r}")
        self.processes = processes
        self.scorers = scorers
        self._slots = threading.BoundedSemaphore(processes)
        self._lock = threading.Lock()
        self._idle: list[_Helper] = []

    def score(self, kind: str, answer: str, truth: str, timeout_s: float) -> BoundedScore:
        """Scores ``answer`` against ``truth`` with the scorer of problem type ``kind`` (a key of the pool's
        ``SCORERS``), waiting at most ``timeout_s`` seconds (> 0) for the helper's
        reply."""
        if not timeout_s > 0:
            raise ValueError(f"scorer_timeout_s must be > 0, got {timeout_s!r}")
        with self._slots:
            with self._lock:
                helper = self._idle.pop() if self._idle else None
            if helper is None or not helper.alive():
                helper = _Helper(self.scorers)
            result = helper.score(kind, answer, truth, timeout_s)
            if helper.alive():
                with self._lock:
                    self._idle.append(helper)
            return result

    def close(self) -> None:
        """Stops the idle helpers. A helper that is busy now stays; it exits when its pipe closes (end of input)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for helper in idle:
            helper.kill()


_POOLS: dict[tuple[int, int], ScorerPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(processes: int = DEFAULT_PROCESSES) -> ScorerPool:
    """The process-wide pool of ``processes`` helpers (one per process id, so a forked child gets its own)."""
    key = (os.getpid(), processes)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ScorerPool(processes)
        return pool


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS.values()):
        pool.close()
