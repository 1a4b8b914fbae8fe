"""The outcome scorer's wall-clock bound holds from worker threads (where math-verify's SIGALRM timeouts do nothing),
a failed scoring is counted and shown, and normal answers score as before. Real helper processes, no patching."""

from __future__ import annotations

import logging
import math
import threading
import time

import pytest

from sophiavl.rewards.outcome import compute_score
from sophiavl.rewards.outcome.bounded import ScorerPool, shared_pool
from sophiavl.rewards.outcome.metrics import scorer_failure_metrics

# sympy evaluates the integral symbolically: minutes in a worker thread (measured: not done after 20 s)
RUNAWAY = [
    "\\int_0^{1} x^{100} e^{x} \\sin(x) dx",
    "\\int_0^{2} x^{90} e^{x} \\cos(x) dx",
]
NUMERICAL = {"problem_type": "numerical"}
# a loaded 2-core machine: the bound is 1 s, a replacement helper starts in a few seconds
GENEROUS_S = 30.0


def wrap(answer: str) -> str:
    return f"<think>thinking</think><answer>{answer}</answer>"


def in_threads(calls):
    """Runs each zero-argument call in its own thread (as verl's reward workers do); results in order."""
    out: list = [None] * len(calls)

    def run(i, call):
        out[i] = call()

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GENEROUS_S * 2)
    assert not any(t.is_alive() for t in threads), "a scoring thread is still running"
    return out


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    """Starts the shared pool's helpers once, so the timed calls measure scoring, not the first start-up."""
    in_threads([lambda: compute_score("warm", wrap("1"), "1", NUMERICAL, scorer_processes=2)] * 2)


def test_runaway_answer_from_a_worker_thread_is_cut_off_and_reported(caplog):
    start = time.monotonic()
    answer = wrap(RUNAWAY[0])
    with caplog.at_level(logging.WARNING, logger="sophiavl.rewards.outcome"):
        (result,) = in_threads(
            [lambda: compute_score("mathvista", answer, "3", NUMERICAL, scorer_timeout_s=1.0, scorer_processes=2)]
        )
    elapsed = time.monotonic() - start
    assert result == {"score": 0.0, "acc": 0.0, "format_ok": 1.0, "scorer_failed": 1.0}
    assert 1.0 <= elapsed < GENEROUS_S
    (record,) = [r for r in caplog.records if "outcome scorer failed" in r.getMessage()]
    message = record.getMessage()
    assert "timed out after 1 s" in message
    assert "data_source='mathvista'" in message and "problem_type='numerical'" in message
    assert "x^{100} e^{x}" in message


def test_concurrent_runaways_all_return_and_the_pool_recovers():
    """Four runaway answers on two helpers: two rounds of 1 s plus restarts; then a normal answer scores 1."""
    start = time.monotonic()
    calls = [
        (lambda a=a: compute_score("src", wrap(a), "3", NUMERICAL, scorer_timeout_s=1.0, scorer_processes=2))
        for a in RUNAWAY * 2
    ]
    results = in_threads(calls)
    assert [r["scorer_failed"] for r in results] == [1.0] * 4
    assert [r["score"] for r in results] == [0.0] * 4
    assert time.monotonic() - start < 2 * GENEROUS_S
    after = compute_score("src", wrap("0.5"), "\\frac{1}{2}", NUMERICAL, scorer_timeout_s=1.0, scorer_processes=2)
    assert after == {"score": 1.0, "acc": 1.0, "format_ok": 1.0, "scorer_failed": 0.0}


@pytest.mark.slow
@pytest.mark.parametrize("timeout_s", [5.0, 8.0])
def test_a_runaway_answer_fails_every_time_whatever_the_bound(timeout_s):
    """math-verify's own timeout (5 s in a main thread, as in a helper) used to race the pool's bound: a runaway came
    back as a plain 0 (not failed) whenever math-verify gave up first (always with an 8 s bound: it returned after
    5 to 7 s). Now only the pool's bound stops it: scorer_failed every time, at the default 5 s and above it. Both
    runaway answers at once on two helpers, so four runs with the two bounds."""
    pool = ScorerPool(processes=2)
    try:
        results = in_threads([lambda a=a: pool.score("numerical", a, "3", timeout_s) for a in RUNAWAY])
        assert [r.failed for r in results] == [True, True], results
        assert [r.reason for r in results] == [f"timed out after {timeout_s:g} s"] * 2
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("answer", "truth", "problem_type", "expected"),
    [
        ("0.5", "\\frac{1}{2}", "numerical", 1.0),
        ("42.0", "42", "numerical", 1.0),
        ("3.14159", "3.14", "numerical", 0.0),
        ("A, C", "CA", "multiple choice", 1.0),
        ("B", "C", "multiple choice", 0.0),
        ("hello word", "hello world", "OCR", math.exp(-0.5)),  # WER 1/2
        ("the cat sat", "the cat sat", "free-form", 1.0),
        ("dog", "the cat sat", "text", 0.0),
    ],
)
def test_normal_answers_score_as_before_from_worker_threads(answer, truth, problem_type, expected):
    (result,) = in_threads([lambda: compute_score("src", wrap(answer), truth, {"problem_type": problem_type})])
    assert result["score"] == pytest.approx(expected, abs=1e-6)
    assert result["scorer_failed"] == 0.0


def test_broken_format_is_not_a_scorer_failure_and_data_errors_stay_loud():
    assert compute_score("src", "no tags", "3", NUMERICAL)["scorer_failed"] == 0.0
    with pytest.raises(ValueError, match="ground truth is missing"):
        compute_score("src", wrap("3"), None, NUMERICAL)
    with pytest.raises(ValueError, match="'essay'"):
        compute_score("src", wrap("3"), "3", {"problem_type": "essay"})


def test_a_scorer_that_raises_in_its_helper_is_a_reported_failure():
    pool = ScorerPool(processes=1)
    try:
        result = pool.score("no such scorer", "1", "1", timeout_s=5.0)  # KeyError inside the helper
        assert result.failed and result.score == 0.0 and result.reason.startswith("KeyError")
        assert pool.score("numerical", "2", "2", timeout_s=5.0).score == 1.0  # the same helper goes on
    finally:
        pool.close()


def test_pool_arguments_are_checked():
    with pytest.raises(ValueError, match="scorer_processes"):
        ScorerPool(processes=0)
    with pytest.raises(ValueError, match="scorer_timeout_s"):
        shared_pool(2).score("numerical", "1", "1", timeout_s=0)


def test_step_metric_counts_failed_rows_but_not_pad_rows():
    extras = [{"scorer_failed": 1.0}, {"scorer_failed": 0.0}, {"scorer_failed": 1.0}, {"scorer_failed": 1.0}]
    tags = [{}, {}, {"is_padding": False}, {"is_padding": True}]  # the last row is verl's copy of row 0
    assert scorer_failure_metrics(extras, tags, step=3) == {"outcome/scorer_failed_count": 2.0}
    assert scorer_failure_metrics(extras) == {"outcome/scorer_failed_count": 3.0}
    assert scorer_failure_metrics([{"outcome": 1.0}]) == {}  # a reward manager that does not report it
