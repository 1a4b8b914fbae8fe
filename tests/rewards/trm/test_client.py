"""The judge client against a real loopback chat-completions server with injected faults (``fake_judge``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sophiavl.rewards.trm.client import ThinkingJudge
from sophiavl.rewards.trm.codes import (
    ERROR_BAD_INPUT,
    ERROR_CONNECTION,
    ERROR_MALFORMED,
    ERROR_TIMEOUT,
    ERROR_UNPARSEABLE,
)
from sophiavl.rewards.trm.prompt import SCORE_REGEX

FAST = {"timeout_s": 0.5, "max_retries": 2, "backoff_s": 0.01, "backoff_max_s": 0.02}


def run(coro):
    return asyncio.run(coro)


async def _judge_once(url, *behaviours, server=None, **kwargs):
    if server is not None:
        server.push(*behaviours)
    async with ThinkingJudge(url, "fake-thinking-rm", **{**FAST, **kwargs}) as judge:
        result = await judge.judge("What is 2+2?", "<think>2+2=4</think><answer>4</answer>")
        return result, judge.snapshot()


def test_success_request_shape(fake_judge, monkeypatch):
    monkeypatch.setenv("MY_RM_KEY", "sk-secret")
    result, stats = run(_judge_once(fake_judge.base_url, api_key_env="MY_RM_KEY", max_tokens=32))
    assert result.score == pytest.approx(0.7) and result.error == 0 and result.attempts == 1
    assert stats["requests"] == 1 and stats["attempts"] == 1 and stats["retries"] == 0 and stats["failures"] == 0
    payload, headers = fake_judge.requests[0], fake_judge.headers[0]
    assert payload["model"] == "fake-thinking-rm" and payload["temperature"] == 0.0 and payload["max_tokens"] == 32
    assert "structured_outputs" not in payload and "guided_regex" not in payload
    assert headers["Authorization"] == "Bearer sk-secret"


def test_no_key_no_header_and_key_not_in_repr(fake_judge, monkeypatch):
    monkeypatch.delenv("THINKING_RM_API_KEY", raising=False)
    run(_judge_once(fake_judge.base_url))
    assert "Authorization" not in fake_judge.headers[0]
    monkeypatch.setenv("THINKING_RM_API_KEY", "sk-hidden")
    judge = ThinkingJudge(fake_judge.base_url, "m")
    assert "sk-hidden" not in repr(judge) and "sk-hidden" not in str(judge.snapshot())


def test_full_url_and_model_discovery(fake_judge):
    async def go():
        async with ThinkingJudge(fake_judge.base_url + "/chat/completions", None, **FAST) as judge:
            return await judge.score("q", "r")

    assert run(go()) == pytest.approx(0.7)
    assert fake_judge.requests[0]["model"] == "fake-thinking-rm"


@pytest.mark.parametrize("style, key", [("structured_outputs", "structured_outputs"), ("guided_regex", "guided_regex")])
def test_constrained_output_request(fake_judge, style, key):
    run(_judge_once(fake_judge.base_url, constrain_output=True, constrain_style=style))
    field = fake_judge.requests[0][key]
    assert field == {"regex": SCORE_REGEX} if key == "structured_outputs" else field == SCORE_REGEX


def test_500_then_success_is_retried(fake_judge):
    result, stats = run(_judge_once(fake_judge.base_url, ("status", 500), ("status", 503), server=fake_judge))
    assert result.score == pytest.approx(0.7) and result.attempts == 3
    assert stats["attempts"] == 3 and stats["retries"] == 2 and stats["failures"] == 0 and stats["successes"] == 1


def test_500_forever_fails_with_status(fake_judge):
    fake_judge.default = ("status", 500)
    result, stats = run(_judge_once(fake_judge.base_url))
    assert result.score is None and result.error == 500 and result.attempts == 3
    assert stats["failures"] == 1 and stats["retries"] == 2 and "HTTP 500" in stats["last_error"]


def test_429_honours_retry_after(fake_judge):
    started = time.monotonic()
    result, stats = run(_judge_once(fake_judge.base_url, ("status", 429, {"Retry-After": "0.3"}), server=fake_judge))
    assert result.score == pytest.approx(0.7) and stats["retries"] == 1
    assert time.monotonic() - started >= 0.3  # the backoff alone would have waited at most 0.01 s
    assert result.latency_s >= 0.3


def test_other_4xx_is_not_retried(fake_judge):
    result, stats = run(_judge_once(fake_judge.base_url, ("status", 400), server=fake_judge))
    assert result.score is None and result.error == 400 and result.attempts == 1 and stats["retries"] == 0
    assert len(fake_judge.requests) == 1


def test_timeout_then_success(fake_judge):
    result, stats = run(_judge_once(fake_judge.base_url, ("delay", 2.0, "<answer>0.1</answer>"), server=fake_judge))
    assert result.score == pytest.approx(0.7) and result.attempts == 2 and stats["retries"] == 1


def test_timeouts_exhaust_retries(fake_judge):
    fake_judge.default = ("delay", 2.0, "<answer>0.1</answer>")
    result, stats = run(_judge_once(fake_judge.base_url, timeout_s=0.2, max_retries=1))
    assert result.score is None and result.error == ERROR_TIMEOUT and result.attempts == 2
    assert stats["failures"] == 1 and "timed out" in stats["last_error"]


def test_dropped_connection_is_retried(fake_judge):
    result, stats = run(_judge_once(fake_judge.base_url, ("drop",), ("drop",), server=fake_judge))
    assert result.score == pytest.approx(0.7) and result.attempts == 3 and stats["retries"] == 2


def test_dropped_connections_exhaust_retries(fake_judge):
    fake_judge.default = ("drop",)
    result, stats = run(_judge_once(fake_judge.base_url))
    assert result.score is None and result.error == ERROR_CONNECTION and stats["failures"] == 1


def test_refused_connection(refused_url):
    result, stats = run(_judge_once(refused_url))
    assert result.score is None and result.error == ERROR_CONNECTION and result.attempts == 3
    assert stats["attempts"] == 3 and stats["failures"] == 1 and "connection error" in stats["last_error"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"choices": []}', b'{"choices": [{"message": {"content": null}}]}', b"[1, 2]"],
)
def test_malformed_responses_fail_without_retry(fake_judge, body):
    result, stats = run(_judge_once(fake_judge.base_url, ("raw", body), server=fake_judge))
    assert result.score is None and result.error == ERROR_MALFORMED and result.attempts == 1
    assert stats["failures"] == 1 and stats["parse_failures"] == 0


@pytest.mark.parametrize("reply", ["The reasoning looks fine.", "step 1 gets 0.5, step 2 gets 0.9", ""])
def test_unparseable_replies_are_none_not_zero(fake_judge, reply):
    result, stats = run(_judge_once(fake_judge.base_url, ("reply", reply), server=fake_judge))
    assert result.score is None and result.error == ERROR_UNPARSEABLE and result.attempts == 1
    assert stats["parse_failures"] == 1 and stats["failures"] == 0 and result.reply == reply


def test_several_numbers_in_the_answer_tag_is_the_last_tag(fake_judge):
    reply = "Step scores 0.2, 0.4. <answer>0.3</answer>"
    result, _ = run(_judge_once(fake_judge.base_url, ("reply", reply), server=fake_judge))
    assert result.score == pytest.approx(0.3)


def test_huge_replies(fake_judge):
    huge_ok = "blah " * 400_000 + "<answer>0.9</answer>"  # 2 MB
    huge_bad = "blah " * 400_000
    result, _ = run(_judge_once(fake_judge.base_url, ("reply", huge_ok), server=fake_judge))
    assert result.score == pytest.approx(0.9)
    result, stats = run(_judge_once(fake_judge.base_url, ("reply", huge_bad), server=fake_judge))
    assert result.score is None and result.error == ERROR_UNPARSEABLE and stats["parse_failures"] == 1
    result, stats = run(_judge_once(fake_judge.base_url, ("reply", huge_ok), server=fake_judge, max_body_bytes=1 << 20))
    assert result.score is None and result.error == ERROR_MALFORMED and "larger than" in stats["last_error"]


def test_corrupt_image_is_bad_input_without_request(fake_judge):
    async def go():
        async with ThinkingJudge(fake_judge.base_url, "m", **FAST) as judge:
            return await judge.judge("q", "r", image=b"not an image"), judge.snapshot()

    result, stats = run(go())
    assert result.score is None and result.error == ERROR_BAD_INPUT and result.attempts == 0
    assert stats["failures"] == 1 and fake_judge.requests == []


def test_concurrency_is_bounded_and_counters_add_up(fake_judge):
    fake_judge.latency_s = 0.05

    async def go():
        async with ThinkingJudge(fake_judge.base_url, "m", max_concurrency=4, **{**FAST, "timeout_s": 5}) as judge:
            peak = 0

            async def watch():
                nonlocal peak
                while True:
                    peak = max(peak, judge.stats.in_flight)
                    await asyncio.sleep(0.005)

            watcher = asyncio.create_task(watch())
            started = time.monotonic()
            scores = await asyncio.gather(*(judge.score("q", f"r{i}") for i in range(16)))
            elapsed = time.monotonic() - started
            watcher.cancel()
            return scores, elapsed, peak, judge.snapshot()

    scores, elapsed, peak, stats = run(go())
    assert scores == [pytest.approx(0.7)] * 16
    assert peak <= 4 and elapsed >= 4 * 0.05  # 16 requests, 4 at a time, 50 ms each: at least 4 rounds
    assert stats["requests"] == 16 and stats["successes"] == 16
    assert stats["latency_p50_s"] >= 0.05 and stats["latency_p99_s"] <= stats["latency_max_s"]


def test_judge_reusable_across_event_loops(fake_judge):
    judge = ThinkingJudge(fake_judge.base_url, "m", **FAST)
    assert run(judge.score("q", "r")) == pytest.approx(0.7)
    assert run(judge.score("q", "r")) == pytest.approx(0.7)  # a new loop gets a new session
    run(judge.aclose())
