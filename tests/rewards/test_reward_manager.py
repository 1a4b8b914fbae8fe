"""ThinkingRewardManager with real DataProto samples, a tiny offline tokenizer and the loopback judge server."""

from __future__ import annotations

import asyncio
import io
import math
import time

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from verl import DataProto

from sophiavl.rewards.reward_info import EXTRA_KEYS
from sophiavl.rewards.reward_manager import ThinkingRewardManager
from sophiavl_testing.byte_tokenizer import byte_bpe_tokenizer

GOOD = "<think>2 plus 2 is 4</think><answer>4</answer>"
WRONG = "<think>2 plus 2 is 5</think><answer>5</answer>"


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level BPE built in memory (no hub): decodes any text it encodes."""
    return byte_bpe_tokenizer([GOOD, WRONG, "<think></think><answer></answer> the cat sat"])


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 128, 255)).save(buf, format="PNG")
    return buf.getvalue()


def sample(tokenizer, response, gt="4", problem_type="numerical", split="train", prompt=None, pad=3) -> DataProto:
    """One sample shaped as verl's agent loop hands it to the reward loop (left-padded prompt, right-padded
    response, attention mask over both)."""
    prompt_ids = torch.tensor([5, 6, 7])
    response_ids = torch.tensor(tokenizer.encode(response) + [tokenizer.pad_token_id] * pad)
    mask = torch.cat([torch.ones(3), torch.ones(len(response_ids) - pad), torch.zeros(pad)]).long()
    batch = {
        "prompts": prompt_ids[None],
        "responses": response_ids[None],
        "attention_mask": mask[None],
        "input_ids": torch.cat([prompt_ids, response_ids])[None],
    }
    if prompt is None:
        prompt = [
            {"role": "system", "content": "Think first."},
            {"role": "user", "content": [{"type": "image", "bytes": _png()}, {"type": "text", "text": "What is 2+2?"}]},
        ]
    raw_prompt = np.empty(1, dtype=object)
    raw_prompt[0] = prompt
    extra = {"problem_type": problem_type, "index": 0}
    if split is not None:
        extra["split"] = split
    non_tensor = {
        "data_source": np.array(["demo"], dtype=object),
        "reward_model": np.array([{"ground_truth": gt, "style": "rule"}], dtype=object),
        "extra_info": np.array([extra], dtype=object),
        "raw_prompt": raw_prompt,
    }
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor)


def config(base_url, semantics="paper", **thinking_rm):
    rm = {"base_url": base_url, "model": "fake-thinking-rm", "timeout_s": 0.5, "max_retries": 1, "backoff_s": 0.01}
    rm.update(thinking_rm)
    return OmegaConf.create(
        {
            "algorithm": {"trust_grpo": {"semantics": semantics, "anneal_T": 100}},
            "reward": {"num_workers": 2, "thinking_rm": rm, "reward_model": {"enable": False, "model_path": None}},
        }
    )


def score(manager, data):
    return asyncio.run(manager.run_single(data))


def test_training_row_gets_outcome_and_thinking(fake_judge, tokenizer):
    manager = ThinkingRewardManager(config(fake_judge.base_url), tokenizer, None)
    before = time.time()
    out = score(manager, sample(tokenizer, GOOD))
    after = time.time()
    info = dict(out["reward_extra_info"])
    latency = info.pop("rm_latency_s")
    begin, end = info.pop("reward_begin_t"), info.pop("reward_end_t")
    assert before <= begin <= end <= after and end - begin >= latency  # the judge call lies inside the window
    assert out["reward_score"] == 1.0
    assert info == {
        "outcome": 1.0,
        "thinking": pytest.approx(0.7),
        "thinking_status": 0.0,
        "thinking_error": 0.0,
        "format_ok": 1.0,
        "scorer_failed": 0.0,
        "acc": 1.0,
    }
    assert latency > 0
    user = fake_judge.requests[0]["messages"][-1]["content"]
    assert "What is 2+2?" in user[0]["text"] and "2 plus 2 is 4" in user[0]["text"]
    assert "Think first." not in user[0]["text"]
    assert user[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert manager.judge.max_concurrency == 32  # 64 in total over reward.num_workers = 2


def test_same_keys_for_every_sample(fake_judge, tokenizer):
    manager = ThinkingRewardManager(config(fake_judge.base_url), tokenizer, None)
    fake_judge.push(("reply", "no score"))
    outs = [
        score(manager, sample(tokenizer, GOOD)),  # unparseable reply
        score(manager, sample(tokenizer, WRONG, split="test")),  # validation
        score(manager, sample(tokenizer, "no tags at all")),  # broken format, still judged
    ]
    for out in outs:
        assert tuple(out["reward_extra_info"]) == EXTRA_KEYS
        assert all(isinstance(v, float) for v in out["reward_extra_info"].values())
    failed, val, broken = (o["reward_extra_info"] for o in outs)
    assert math.isnan(failed["thinking"]) and failed["thinking_status"] == 2 and failed["thinking_error"] == -3
    assert outs[0]["reward_score"] == 1.0  # a failed judgement never changes Ro
    assert math.isnan(val["thinking"]) and val["thinking_status"] == 1 and val["rm_latency_s"] == 0.0
    assert outs[1]["reward_score"] == 0.0 and val["acc"] == 0.0
    assert broken["format_ok"] == 0.0 and broken["thinking"] == pytest.approx(0.7) and outs[2]["reward_score"] == 0.0
    assert len(fake_judge.requests) == 2  # the validation row was not judged


def test_official_semantics_skip_low_outcomes(fake_judge, tokenizer):
    manager = ThinkingRewardManager(config(fake_judge.base_url, semantics="official"), tokenizer, None)
    low = score(manager, sample(tokenizer, "<think>x</think><answer>hello word</answer>", "hello world", "OCR"))
    wrong = score(manager, sample(tokenizer, WRONG))
    # exp(-0.5) = 0.607 >= 0.2: judged; a wrong numerical answer has Ro = 0 < 0.2: skipped
    assert low["reward_extra_info"]["thinking_status"] == 0 and low["reward_score"] == pytest.approx(0.606531, 1e-5)
    assert wrong["reward_extra_info"]["thinking_status"] == 1 and wrong["reward_extra_info"]["rm_latency_s"] == 0.0
    assert len(fake_judge.requests) == 1
    paper = ThinkingRewardManager(config(fake_judge.base_url), tokenizer, None)
    assert score(paper, sample(tokenizer, WRONG))["reward_extra_info"]["thinking_status"] == 0


def test_server_failure_is_status_2_with_http_code(fake_judge, tokenizer):
    fake_judge.default = ("status", 503)
    manager = ThinkingRewardManager(config(fake_judge.base_url), tokenizer, None)
    info = score(manager, sample(tokenizer, GOOD))["reward_extra_info"]
    assert info["thinking_status"] == 2 and info["thinking_error"] == 503 and math.isnan(info["thinking"])
    assert info["rm_latency_s"] > 0 and manager.judge.stats.failures == 1 and manager.judge.stats.retries == 1


def test_refused_connection_is_status_2(refused_url, tokenizer):
    manager = ThinkingRewardManager(config(refused_url), tokenizer, None)
    info = score(manager, sample(tokenizer, GOOD))["reward_extra_info"]
    assert info["thinking_status"] == 2 and info["thinking_error"] == -2


def test_image_forms(fake_judge, tokenizer, tmp_path):
    png = _png()
    path = tmp_path / "img.png"
    path.write_bytes(png)
    pil = Image.open(io.BytesIO(png))
    forms = [
        {"type": "image", "bytes": png, "image": Image.new("RGB", (9, 9))},  # original bytes win over the PIL copy
        {"type": "image", "image": str(path)},
        {"type": "image", "image": pil},
    ]
    manager = ThinkingRewardManager(config(fake_judge.base_url), tokenizer, None)
    for part in forms:
        prompt = [{"role": "user", "content": [part, {"type": "text", "text": "Q"}]}]
        score(manager, sample(tokenizer, GOOD, prompt=prompt))
    urls = [r["messages"][-1]["content"][1]["image_url"]["url"] for r in fake_judge.requests]
    import base64

    assert urls[0] == urls[1] == "data:image/png;base64," + base64.b64encode(png).decode()
    decoded = Image.open(io.BytesIO(base64.b64decode(urls[2].split(",", 1)[1])))
    assert decoded.size == (4, 4) and decoded.getpixel((0, 0)) == (0, 128, 255)


def test_text_only_and_corrupt_image(fake_judge, tokenizer):
    manager = ThinkingRewardManager(config(fake_judge.base_url), tokenizer, None)
    text_only = [{"role": "user", "content": "<image>What is 2+2?"}]
    ok = score(manager, sample(tokenizer, GOOD, prompt=text_only))["reward_extra_info"]
    assert ok["thinking_status"] == 0
    content = fake_judge.requests[0]["messages"][-1]["content"]
    assert len(content) == 1 and "<image>" not in content[0]["text"]
    corrupt = [{"role": "user", "content": [{"type": "image", "bytes": b"garbage"}, {"type": "text", "text": "Q"}]}]
    bad = score(manager, sample(tokenizer, GOOD, prompt=corrupt))["reward_extra_info"]
    assert bad["thinking_status"] == 2 and bad["thinking_error"] == -5 and math.isnan(bad["thinking"])


def test_custom_outcome_function_and_verl_default(fake_judge, tokenizer):
    from verl.utils.reward_score import default_compute_score

    manager = ThinkingRewardManager(config(fake_judge.base_url), tokenizer, default_compute_score)
    assert score(manager, sample(tokenizer, GOOD))["reward_score"] == 1.0  # verl's default replaced by ours
    manager = ThinkingRewardManager(config(fake_judge.base_url), tokenizer, lambda **kw: 0.25)
    info = score(manager, sample(tokenizer, GOOD))["reward_extra_info"]
    assert info["outcome"] == 0.25 and info["format_ok"] == 1.0


def test_endpoint_selection_and_config_errors(fake_judge, tokenizer):
    cfg = config(None)
    cfg.reward.reward_model.model_path = "bunny127/SophiaVL-R1-Thinking-Reward-Model-3B"
    cfg.reward.thinking_rm.model = None
    manager = ThinkingRewardManager(cfg, tokenizer, None, reward_router_address="10.0.0.7:4321")
    assert manager.judge.url == "http://10.0.0.7:4321/v1/chat/completions"
    assert manager.judge.model == "bunny127/SophiaVL-R1-Thinking-Reward-Model-3B"
    with pytest.raises(ValueError, match="base_url"):
        ThinkingRewardManager(config(None), tokenizer, None)
    with pytest.raises(ValueError, match="timeout"):
        ThinkingRewardManager(config(fake_judge.base_url, timeuot_s=3), tokenizer, None)


# ------------------------------------------------------------------------ K judge samples, thinking off (issue 12)
def test_k_samples_travel_as_same_keys_for_every_sample(fake_judge, tokenizer):
    manager = ThinkingRewardManager(config(fake_judge.base_url, samples=3, temperature=1.0, seed=5), tokenizer, None)
    keys = (*EXTRA_KEYS, "thinking_sample_0", "thinking_sample_1", "thinking_sample_2")
    fake_judge.push(("choices", ["<answer>0.6</answer>", "garbled", "<answer>0.8</answer>"]))
    judged = score(manager, sample(tokenizer, GOOD))["reward_extra_info"]
    val = score(manager, sample(tokenizer, GOOD, split="test"))["reward_extra_info"]
    fake_judge.default = ("status", 503)
    failed = score(manager, sample(tokenizer, GOOD))["reward_extra_info"]
    for info in (judged, val, failed):
        assert tuple(info) == keys and all(isinstance(v, float) for v in info.values())
    assert judged["thinking"] == pytest.approx(0.7)  # (0.6 + 0.8) / 2: the garbled sample is left out, not 0
    assert judged["thinking_sample_0"] == pytest.approx(0.6) and math.isnan(judged["thinking_sample_1"])
    assert judged["thinking_sample_2"] == pytest.approx(0.8) and judged["thinking_status"] == 0
    assert all(math.isnan(val[f"thinking_sample_{j}"]) for j in range(3)) and val["thinking_status"] == 1
    assert all(math.isnan(failed[f"thinking_sample_{j}"]) for j in range(3)) and failed["thinking_status"] == 2
    first = fake_judge.requests[0]
    assert first["n"] == 3 and first["temperature"] == 1.0 and first["seed"] == 5


def test_temperature_rule_stops_the_manager(fake_judge, tokenizer):
    with pytest.raises(ValueError, match=r"samples=2 needs reward\.thinking_rm\.temperature > 0"):
        ThinkingRewardManager(config(fake_judge.base_url, samples=2), tokenizer, None)


def test_grpo_recipe_never_calls_the_judge(compose_ppo, fake_judge, tokenizer):
    # the composed baseline recipe, pointed at the loopback judge: were any call made, the server would count it
    cfg = compose_ppo("+recipe=sophiavl_grpo", f"reward.thinking_rm.base_url={fake_judge.base_url}")
    manager = ThinkingRewardManager(cfg, tokenizer, None)
    assert manager.judge is None
    outs = [
        score(manager, sample(tokenizer, r, problem_type=p)) for r, p in ((GOOD, "numerical"), (WRONG, "numerical"))
    ]
    assert [o["reward_score"] for o in outs] == [1.0, 0.0]  # Ro as under `sophiavl`
    for out in outs:
        info = out["reward_extra_info"]
        assert tuple(info) == EXTRA_KEYS and info["thinking_status"] == 1 and math.isnan(info["thinking"])
        assert info["rm_latency_s"] == 0.0
    assert fake_judge.requests == []


def test_runaway_outcome_is_bounded_and_reported_through_verls_reward_kwargs(fake_judge, tokenizer):
    """The recipe's reward_kwargs reach compute_score through verl's own loader; the manager scores in an executor
    thread, where only the helper-process bound can stop sympy."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = config(fake_judge.base_url)
    cfg.reward.custom_reward_function = {
        "path": "pkg://sophiavl.rewards.outcome",
        "name": "compute_score",
        "reward_kwargs": {"scorer_timeout_s": 1.0, "scorer_processes": 1},
    }
    manager = ThinkingRewardManager(cfg, tokenizer, get_custom_reward_fn(cfg))
    runaway = "<think>t</think><answer>\\int_0^{1} x^{100} e^{x} \\sin(x) dx</answer>"
    start = time.monotonic()
    out = score(manager, sample(tokenizer, runaway, gt="3"))
    assert time.monotonic() - start < 30.0  # 1 s bound, generous for a loaded 2-core machine
    info = out["reward_extra_info"]
    assert out["reward_score"] == 0.0 and info["outcome"] == 0.0 and info["scorer_failed"] == 1.0
    good = score(manager, sample(tokenizer, GOOD))["reward_extra_info"]
    assert good["outcome"] == 1.0 and good["scorer_failed"] == 0.0
