"""Outcome scoring with a wall-clock bound that holds in any thread.

math-verify bounds sympy with SIGALRM, which only works in a process's main thread; verl calls the reward function
from worker threads, where a short answer such as ``\\int_0^{1} x^{100} e^{x} \\sin(x) dx`` keeps sympy busy for
minutes. So every scoring runs in a small pool of persistent helper processes (``python -m
sophiavl.rewards.outcome.helper``, one request at a time each, JSON lines over two pipes of their own): the caller
waits at most ``timeout_s`` seconds for the reply, and a helper that does not answer in time is killed, reaped and
replaced. This bound is the only one: the scorers set no timeout of their own (math-verify's would race it).

Every failure of a scoring is a ``BoundedScore(0.0, failed=True, reason)``, never an exception out of
:meth:`ScorerPool.score`: a timeout, a scorer that raised (its helper goes on), a helper that died, a reply that does
not parse (the helper is killed). Requests and replies travel on pipes passed to the helper by descriptor number,
not on its stdin and stdout, so a scorer that prints (or reads stdin) cannot break the protocol; the helper's
stdout and stderr are the caller's. Pipes are watched with ``poll``, which takes descriptors of any number (``select``
fails above 1024, which a long-lived worker can reach). A helper that cannot start is an error (``RuntimeError``),
after its process is killed and reaped.

Cost: one pipe round trip per scoring (0.6-0.8 ms measured on a loaded 2-core machine); a helper starts in
about a second (it imports the scorers' libraries before it accepts work), once per process and after each kill.
"""

from __future__ import annotations

import atexit
import json
import math
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
    """One helper process and its two pipes; used by one thread at a time (the pool hands it out)."""

    def __init__(self, scorers: str) -> None:
        self.proc: subprocess.Popen | None = None
        self._requests = self._replies = -1  # our ends: we write requests, we read replies
        self._buffer = b""
        try:
            self._start(scorers)
        except BaseException:
            self.kill()
            raise

    def _start(self, scorers: str) -> None:
        child_ends: list[int] = []
        try:
            request_end, self._requests = os.pipe()
            child_ends.append(request_end)
            self._replies, reply_end = os.pipe()
            child_ends.append(reply_end)
            command = [sys.executable, "-m", HELPER_MODULE, "--scorers", scorers]
            command += ["--requests", str(request_end), "--replies", str(reply_end)]
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, pass_fds=tuple(child_ends))
        finally:
            for fd in child_ends:  # the helper holds its ends now; ours would keep its end of input from coming
                os.close(fd)
        self._poll = select.poll()
        self._poll.register(self._replies, select.POLLIN)
        line = self._read_line(time.monotonic() + STARTUP_TIMEOUT_S)
        if line != _READY:
            raise RuntimeError(
                f"the outcome scorer's helper process (python -m {HELPER_MODULE} --scorers {scorers}) did not start: "
                f"got {line!r} within {STARTUP_TIMEOUT_S:g} s (see its error output above)"
            )

    def alive(self) -> bool:
        return self.proc is not None and self._replies >= 0 and self.proc.poll() is None

    def kill(self) -> None:
        """Kills the process if it runs, reaps it and closes our pipe ends; safe to call again."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        for fd in (self._requests, self._replies):
            if fd >= 0:
                os.close(fd)
        self._requests = self._replies = -1

    def _read_line(self, deadline: float) -> bytes | None:
        """The next reply line, ``b""`` at end of file, or None when ``deadline`` (monotonic) passes first."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poll.poll(math.ceil(remaining * 1000)):
                return None
            chunk = os.read(self._replies, 65536)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def score(self, kind: str, answer: str, truth: str, timeout_s: float) -> BoundedScore:
        """One request and its reply within ``timeout_s`` seconds; the helper is killed on any failure but a scorer's
        exception (reported by the helper, which goes on)."""
        request = json.dumps({"kind": kind, "answer": answer, "truth": truth}).encode() + b"\n"
        deadline = time.monotonic() + timeout_s
        try:
            view = memoryview(request)
            while view:
                view = view[os.write(self._requests, view) :]
            line = self._read_line(deadline)
        except OSError as exc:  # a broken pipe: the helper is gone
            self.kill()
            return BoundedScore(0.0, True, f"scorer process died ({exc})")
        if line is None:
            self.kill()
            return BoundedScore(0.0, True, f"timed out after {timeout_s:g} s")
        if not line:
            code = self.proc.wait()
            self.kill()
            return BoundedScore(0.0, True, f"scorer process died (exit code {code})")
        try:
            return parse_reply(line)
        except ValueError as exc:
            self.kill()
            return BoundedScore(0.0, True, f"malformed reply from the scorer process ({exc}): {line[:200]!r}")


def parse_reply(line: bytes) -> BoundedScore:
    """A helper's reply line as a result: ``{"score": x}`` with ``x`` a finite number, or ``{"error": "text"}`` (the
    scorer raised: failed, with that reason). Anything else raises ``ValueError`` saying what is wrong."""
    reply = json.loads(line)  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    if not isinstance(reply, dict):
        raise ValueError(f"a JSON {type(reply).__name__}, not an object")
    if isinstance(reply.get("error"), str):
        return BoundedScore(0.0, True, reply["error"])
    score = reply.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise ValueError(f"score {score!r} is not a finite number")
    return BoundedScore(float(score), False)


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
        ``SCORERS``), waiting at most ``timeout_s`` seconds (> 0) for the helper's reply.

        Every failure comes back as ``BoundedScore(0.0, failed=True, reason)`` (module docstring); only a helper that
        cannot start raises (``RuntimeError``)."""
        if not timeout_s > 0:
            raise ValueError(f"scorer_timeout_s must be > 0, got {timeout_s!r}")
        with self._slots:
            with self._lock:
                helper = self._idle.pop() if self._idle else None
            if helper is not None and not helper.alive():
                helper.kill()  # reaps it and closes its pipes
                helper = None
            if helper is None:
                helper = _Helper(self.scorers)  # raises RuntimeError, its process reaped, when it cannot start
            try:
                result = helper.score(kind, answer, truth, timeout_s)
            except Exception as exc:  # noqa: BLE001  (a fault of ours: still a counted failure, never a leak)
                helper.kill()
                result = BoundedScore(0.0, True, f"scorer pool error ({type(exc).__name__}: {exc})")
            except BaseException:
                helper.kill()
                raise
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
