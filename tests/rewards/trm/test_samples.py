"""K judge samples per response (``reward.thinking_rm.samples``), temperature and seed, against the loopback judge."""

from __future__ import annotations

import asyncio

import pytest

from sophiavl.rewards.trm.client import ThinkingJudge
from sophiavl.rewards.trm.codes import ERROR_MALFORMED, ERROR_UNPARSEABLE
from sophiavl.rewards.trm.config import ThinkingRMConfig

FAST = {"timeout_s": 0.5, "max_retries": 1, "backoff_s": 0.01, "backoff_max_s": 0.02}


def judge_once(url, **kwargs):
    async def go():
        async with ThinkingJudge(url, "fake-thinking-rm", **{**FAST, **kwargs}) as judge:
            return await judge.judge("What is 2+2?", "<think>2+2=4</think><answer>4</answer>"), judge.snapshot()

    return asyncio.run(go())


def test_k_samples_in_one_request(fake_judge):
    fake_judge.push(("choices", ["<answer>0.6</answer>", "<answer>0.7</answer>", "<answer>0.8</answer>"]))
    result, stats = judge_once(fake_judge.base_url, samples=3, temperature=1.0, seed=7)
    assert len(fake_judge.requests) == 1
    payload = fake_judge.requests[0]
    assert payload["n"] == 3 and payload["temperature"] == 1.0 and payload["seed"] == 7
    assert result.scores == (pytest.approx(0.6), pytest.approx(0.7), pytest.approx(0.8))
    assert result.sample_errors == (0, 0, 0)
    assert result.score == pytest.approx(0.7)  # (0.6 + 0.7 + 0.8) / 3
    assert result.error == 0 and result.detail == "" and result.reply == "<answer>0.6</answer>"
    assert stats["samples"] == 3 and stats["sample_failures"] == 0 and stats["successes"] == 1


def test_one_failing_sample_is_left_out(fake_judge):
    fake_judge.push(("choices", ["<answer>0.2</answer>", "no score here", "<answer>0.9</answer>"]))
    result, stats = judge_once(fake_judge.base_url, samples=3, temperature=0.7)
    assert result.scores == (pytest.approx(0.2), None, pytest.approx(0.9))
    assert result.sample_errors == (0, ERROR_UNPARSEABLE, 0)
    assert result.usable_scores == [pytest.approx(0.2), pytest.approx(0.9)]
    assert result.score == pytest.approx(0.55)  # (0.2 + 0.9) / 2, the failed sample is not a 0
    assert result.error == 0 and "no score" in result.detail
    assert stats["sample_failures"] == 1 and stats["successes"] == 1 and stats["parse_failures"] == 0


def test_choice_without_text_is_a_malformed_sample(fake_judge):
    fake_judge.push(("choices", [None, "<answer>0.4</answer>"]))
    result, _ = judge_once(fake_judge.base_url, samples=2, temperature=1.0)
    assert result.scores == (None, pytest.approx(0.4)) and result.sample_errors == (ERROR_MALFORMED, 0)
    assert result.score == pytest.approx(0.4)


def test_every_sample_unparseable_is_a_failed_judgement(fake_judge):
    fake_judge.push(("choices", ["nothing", "still nothing"]))
    result, stats = judge_once(fake_judge.base_url, samples=2, temperature=1.0)
    assert result.score is None and result.error == ERROR_UNPARSEABLE and result.scores == (None, None)
    assert stats["parse_failures"] == 1 and stats["sample_failures"] == 2 and stats["successes"] == 0


def test_server_ignoring_n_is_asked_again_for_the_rest(fake_judge):
    # a server without `n` support answers one choice per request; the seed moves on with the samples received
    fake_judge.push(
        ("choices", ["<answer>0.1</answer>"]),
        ("choices", ["<answer>0.3</answer>"]),
        ("choices", ["<answer>0.5</answer>"]),
    )
    result, stats = judge_once(fake_judge.base_url, samples=3, temperature=1.0, seed=10)
    assert [r.get("n", 1) for r in fake_judge.requests] == [3, 2, 1]
    assert [r["seed"] for r in fake_judge.requests] == [10, 11, 12]
    assert result.scores == (pytest.approx(0.1), pytest.approx(0.3), pytest.approx(0.5))
    assert result.score == pytest.approx(0.3) and result.attempts == 3 and stats["attempts"] == 3


def test_request_failure_fails_every_sample(fake_judge):
    fake_judge.default = ("status", 500)
    result, stats = judge_once(fake_judge.base_url, samples=3, temperature=1.0)
    assert result.score is None and result.error == 500 and result.scores == (None, None, None)
    assert result.sample_errors == (500, 500, 500) and result.attempts == 2  # first attempt + 1 retry
    assert stats["failures"] == 1 and stats["sample_failures"] == 3


def test_single_sample_request_is_unchanged(fake_judge):
    result, _ = judge_once(fake_judge.base_url)
    payload = fake_judge.requests[0]
    assert "n" not in payload and "seed" not in payload and payload["temperature"] == 0.0
    assert (
        result.score == pytest.approx(0.7) and result.scores == (pytest.approx(0.7),) and result.sample_errors == (0,)
    )


def test_corrupt_input_fails_every_sample_without_request(fake_judge):
    async def go():
        async with ThinkingJudge(fake_judge.base_url, "m", samples=2, temperature=1.0, **FAST) as judge:
            return await judge.judge("q", "r", image=b"not an image")

    result = asyncio.run(go())
    assert result.scores == (None, None) and result.sample_errors == (-5, -5) and fake_judge.requests == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samples": 3, "temperature": 0.0}, "temperature > 0"),
        ({"samples": 0, "temperature": 1.0}, "samples must be an integer >= 1"),
        ({"samples": 1, "temperature": -0.5}, "temperature must be a finite number >= 0"),
    ],
)
def test_temperature_rule_in_the_client(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ThinkingJudge("http://127.0.0.1:1/v1", "m", **kwargs)


@pytest.mark.parametrize(
    ("node", "match"),
    [
        ({"samples": 3}, r"reward\.thinking_rm\.samples=3 needs reward\.thinking_rm\.temperature > 0"),
        ({"samples": 2.5, "temperature": 1.0}, r"reward\.thinking_rm\.samples must be an integer"),
        ({"seed": "abc"}, r"reward\.thinking_rm\.seed must be an integer"),
        ({"enable": "no"}, r"reward\.thinking_rm\.enable must be true or false"),
    ],
)
def test_config_errors(node, match):
    with pytest.raises(ValueError, match=match):
        ThinkingRMConfig.from_config(node)


def test_config_defaults_and_values():
    default = ThinkingRMConfig.from_config({})
    assert (default.enable, default.temperature, default.samples, default.seed) == (True, 0.0, 1, None)
    cfg = ThinkingRMConfig.from_config({"samples": 3, "temperature": 1.0, "seed": 1234, "enable": False})
    assert (cfg.enable, cfg.temperature, cfg.samples, cfg.seed) == (False, 1.0, 3, 1234)
