"""The recipe's reward keys composed with verl 0.9.1's real config land where verl reads them."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from sophiavl.rewards.reward_manager import ThinkingRewardManager
from sophiavl.rewards.trm.config import ThinkingRMConfig


@pytest.mark.parametrize("recipe", ["sophiavl", "sophiavl_official"])
def test_reward_keys_reach_verl(compose_ppo, recipe):
    from verl.trainer.ppo.reward import get_custom_reward_fn, resolve_reward_manager_cls
    from verl.utils.config import omega_conf_to_dataclass

    cfg = compose_ppo(f"+recipe={recipe}")
    # the manager verl's reward loop instantiates (RewardLoopManager / load_reward_manager)
    assert resolve_reward_manager_cls(cfg) is ThinkingRewardManager
    # set, so RewardLoopWorker.compute_score calls run_single instead of its discriminative-RM path
    assert cfg.reward.custom_reward_function.path == "pkg://sophiavl.rewards.outcome"
    fn = get_custom_reward_fn(cfg)
    out = fn(
        data_source="d",
        solution_str="<think>a</think><answer>B</answer>",
        ground_truth="B",
        extra_info={"problem_type": "multiple choice"},
    )
    assert out["score"] == 1.0
    # verl builds RewardModelConfig from reward.reward_model (RewardModelManager)
    rm = omega_conf_to_dataclass(cfg.reward.reward_model)
    assert rm.enable and rm.enable_resource_pool and rm.nnodes >= 1 and rm.n_gpus_per_node >= 1
    assert rm.model_path == "bunny127/SophiaVL-R1-Thinking-Reward-Model-3B"
    assert rm.rollout.name == "vllm" and rm.rollout.free_cache_engine is False
    assert rm.n_gpus_per_node % rm.rollout.tensor_model_parallel_size == 0
    # the extra node parses, and no legacy keys are used
    rm_cfg = ThinkingRMConfig.from_config(cfg.reward.thinking_rm)
    assert rm_cfg.base_url is None and rm_cfg.max_failure_rate == 0.2
    assert OmegaConf.select(cfg, "reward_model.enable") in (None, False)
    assert all(v is None for v in cfg.custom_reward_function.values())


def test_external_server_overrides(compose_ppo):
    cfg = compose_ppo(
        "+recipe=sophiavl",
        "reward.reward_model.enable=false",
        "reward.thinking_rm.base_url=http://rm-node:8000/v1",
        "reward.thinking_rm.model=thinking-rm",
        "reward.thinking_rm.constrain_output=true",
    )
    rm_cfg = ThinkingRMConfig.from_config(cfg.reward.thinking_rm)
    assert rm_cfg.base_url == "http://rm-node:8000/v1" and rm_cfg.model == "thinking-rm" and rm_cfg.constrain_output
    assert cfg.reward.reward_model.enable is False


def test_misspelt_key_is_rejected(compose_ppo):
    with pytest.raises(Exception, match="max_concurency"):
        compose_ppo("+recipe=sophiavl", "reward.thinking_rm.max_concurency=8")


def test_manager_builds_from_the_composed_config(compose_ppo, fake_judge):
    from transformers import PreTrainedTokenizerFast

    cfg = compose_ppo(
        "+recipe=sophiavl",
        "reward.reward_model.enable=false",
        "reward.reward_model.enable_resource_pool=false",
        f"reward.thinking_rm.base_url={fake_judge.base_url}",
    )
    manager = ThinkingRewardManager(cfg, PreTrainedTokenizerFast, None)  # tokenizer unused at construction
    assert manager.judge.url == fake_judge.base_url + "/chat/completions"
    assert manager.judge.max_concurrency == 8  # 64 over reward.num_workers = 8
