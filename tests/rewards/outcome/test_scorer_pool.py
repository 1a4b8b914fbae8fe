"""The scorer pool under faults: every failure is ``scorer_failed``, a helper that failed is killed and reaped, the pool
never holds more helpers than its size, and a scorer's own output never reaches the reply channel. Real helper
processes serving ``sophiavl_testing.odd_scorers`` (scorers that misbehave on purpose); nothing patched."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from pathlib import Path

import pytest

from sophiavl.rewards.outcome.bounded import BoundedScore, ScorerPool

SUPPORT = Path(__file__).resolve().parents[2] / "support"  # tests/support, where sophiavl_testing lives
ODD = "sophiavl_testing.odd_scorers"
SLOW_S = "60"  # the `sleeps` scorer's answer: far past any bound used here


@pytest.fixture
def helper_path(monkeypatch):
    """tests/support on the helpers' PYTHONPATH, so that a helper can import ``sophiavl_testing.odd_scorers``."""
    paths = [str(SUPPORT), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


@pytest.fixture
def pool(helper_path):
    """One helper serving the odd scorers."""
    pool = ScorerPool(processes=1, scorers=ODD)
    yield pool
    pool.close()


def helper_pid(pool: ScorerPool) -> int:
    result = pool.score("pid", "", "", timeout_s=30.0)
    assert not result.failed, result.reason
    return int(result.score)


def reaped(pid: int) -> bool:
    """True when process ``pid`` has exited and its parent has collected it (a zombie keeps its /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


def helpers_alive() -> set[int]:
    """Child processes of this process that run a helper serving the odd scorers (zombies have an empty cmdline)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and ODD.encode() in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
    return found


def test_a_timed_out_helper_is_killed_and_reaped(pool):
    first = helper_pid(pool)
    result = pool.score("sleeps", SLOW_S, "", timeout_s=1.0)
    assert result == BoundedScore(0.0, True, "timed out after 1 s")
    assert reaped(first)
    assert helper_pid(pool) != first  # a new helper took its place


def test_a_scorer_that_prints_to_stdout_still_scores(pool):
    first = helper_pid(pool)
    assert pool.score("prints", "2", "2", timeout_s=30.0) == BoundedScore(1.0, False)
    assert pool.score("prints", "2", "3", timeout_s=30.0) == BoundedScore(0.0, False)
    assert helper_pid(pool) == first  # the same helper goes on


@pytest.mark.parametrize(
    "line",
    ["not json", '{"score": "high"}', '{"points": 1}', "[1.0]", '{"score": NaN}', '{"score": Infinity}'],
)
def test_a_malformed_reply_is_a_failure_and_its_helper_is_killed(pool, line):
    first = helper_pid(pool)
    result = pool.score("garbles", line, "", timeout_s=30.0)
    assert result.failed and result.score == 0.0
    assert result.reason.startswith("malformed reply from the scorer process"), result.reason
    assert reaped(first)
    assert pool.score("prints", "1", "1", timeout_s=30.0) == BoundedScore(1.0, False)  # a new helper scores


def test_a_scorer_that_raises_is_a_failure_and_its_helper_goes_on(pool):
    first = helper_pid(pool)
    assert pool.score("raises", "boom", "", timeout_s=30.0) == BoundedScore(0.0, True, "ArithmeticError: boom")
    assert helper_pid(pool) == first


def test_a_helper_that_cannot_start_is_an_error_and_leaves_no_process(helper_path):
    pool = ScorerPool(processes=1, scorers="sophiavl_testing.no_such_scorers")
    with pytest.raises(RuntimeError, match="did not start"):
        pool.score("pid", "", "", timeout_s=30.0)
    assert not [p for p in Path("/proc").glob("[0-9]*") if _is_child(p, "no_such_scorers")]


def _is_child(proc: Path, needle: str) -> bool:
    with contextlib.suppress(OSError):
        ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        return ppid == os.getpid() and needle.encode() in (proc / "cmdline").read_bytes()
    return False


def test_the_pool_never_holds_more_than_its_size(helper_path):
    """Six threads share two helpers, each thread a mix of timeouts, malformed replies, prints and exceptions; a
    watcher samples this process's helper children all along. Every helper it saw is reaped after close()."""
    size = 2
    pool = ScorerPool(processes=size, scorers=ODD)
    calls = [
        ("sleeps", SLOW_S, 0.5),
        ("garbles", "not json", 30.0),
        ("prints", "1", 30.0),
        ("raises", "x", 30.0),
        ("garbles", '{"score": "x"}', 30.0),
    ]
    results: list = []
    errors: list = []
    seen: set[int] = set()
    most = 0
    done = threading.Event()

    def watch():
        nonlocal most
        while not done.is_set():
            alive = helpers_alive()
            seen.update(alive)
            most = max(most, len(alive))
            time.sleep(0.005)

    def work():
        for kind, answer, timeout_s in calls:
            try:
                results.append((kind, pool.score(kind, answer, "1", timeout_s=timeout_s)))
            except Exception as exc:  # noqa: BLE001  (an exception out of score() is itself a failure of the test)
                errors.append(exc)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    workers = [threading.Thread(target=work, daemon=True) for _ in range(6)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    pool.close()
    done.set()
    watcher.join(10)
    assert seen and most <= size, f"{most} helpers alive at once, pool size {size}"
    assert not errors
    assert len(results) == 6 * len(calls)
    assert {kind for kind, r in results if r.failed} == {"sleeps", "garbles", "raises"}
    assert all(r == BoundedScore(1.0, False) for kind, r in results if kind == "prints")
    assert all(reaped(pid) for pid in seen)


def test_more_than_1024_descriptors_in_the_calling_process(helper_path):
    """A long-lived worker can hold more descriptors than select() takes (1024): the pool still starts, scores and
    times out its helpers, whose pipes then get descriptor numbers above 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1100 + 64
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the hard limit on open files is {hard}, below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    held = []
    pool = ScorerPool(processes=1, scorers=ODD)
    try:
        while len(held) < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        assert max(held) > 1024
        first = helper_pid(pool)
        assert pool.score("prints", "1", "1", timeout_s=30.0) == BoundedScore(1.0, False)
        assert pool.score("sleeps", SLOW_S, "", timeout_s=0.5) == BoundedScore(0.0, True, "timed out after 0.5 s")
        assert reaped(first)
        helper_pid(pool)
    finally:
        pool.close()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
