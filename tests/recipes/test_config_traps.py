"""Configurations verl 0.9.1 runs wrongly without a word are refused when the config resolves (the recipe's resolver),
through the real Hydra composition of ``main_ppo``'s config and, once, the real ``main_ppo --cfg job --resolve``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from sophiavl.recipes.config_traps import config_trap_problems

EXTERNAL_JUDGE = ("reward.reward_model.enable=false", "reward.thinking_rm.base_url=http://127.0.0.1:8000/v1")


def test_main_ppo_resolve_refuses_a_reserved_but_disabled_reward_pool(tmp_path):
    """The user's command: an external judge with verl's RM switched off but its pool left on."""
    args = [sys.executable, "-m", "verl.trainer.main_ppo", "+recipe=sophiavl", *EXTERNAL_JUDGE, "--cfg", "job"]
    proc = subprocess.run([*args, "--resolve"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "enable_resource_pool=true" in proc.stderr
    assert "set reward.reward_model.enable_resource_pool=false" in proc.stderr
    assert "(1 x 4 GPUs)" in proc.stderr  # the recipe's pool that would sit idle


@pytest.mark.parametrize("recipe", ["sophiavl", "sophiavl_official", "sophiavl_grpo", "sophiavl_variance"])
def test_reserved_but_disabled_reward_pool_is_refused_for_every_training_recipe(compose_ppo, recipe):
    cfg = compose_ppo(f"+recipe={recipe}", *EXTERNAL_JUDGE, "reward.reward_model.enable_resource_pool=true")
    with pytest.raises(Exception, match=r"enable_resource_pool=true.*set reward\.reward_model\.enable_resource_pool"):
        OmegaConf.to_container(cfg, resolve=True)
    fixed = compose_ppo(f"+recipe={recipe}", *EXTERNAL_JUDGE, "reward.reward_model.enable_resource_pool=false")
    if recipe == "sophiavl_grpo":  # no thinking reward: no judge URL either
        fixed = compose_ppo(f"+recipe={recipe}")
    OmegaConf.to_container(fixed, resolve=True)


def test_filter_groups_beside_the_trust_sampler_is_refused(compose_ppo):
    cfg = compose_ppo("+recipe=sophiavl", "algorithm.filter_groups.enable=true")
    with pytest.raises(Exception, match=r"algorithm\.filter_groups\.enable=true .*set algorithm\.filter_groups"):
        OmegaConf.to_container(cfg, resolve=True)


def test_filter_groups_with_verls_own_replay_buffer_is_left_to_verl(compose_ppo):
    """sophiavl_grpo runs verl's replay buffer, which does filter groups: no refusal."""
    cfg = compose_ppo("+recipe=sophiavl_grpo", "algorithm.filter_groups.enable=true")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["algorithm"]["filter_groups"]["enable"] is True
    assert resolved["algorithm"]["trust_grpo"]["check_wiring"] is True


def test_both_traps_and_a_wiring_problem_are_listed_together(compose_ppo):
    cfg = compose_ppo(
        "+recipe=sophiavl",
        *EXTERNAL_JUDGE,
        "algorithm.filter_groups.enable=true",
        "trainer.v1.trainer_mode=separate_async",
    )
    with pytest.raises(Exception) as exc:
        OmegaConf.to_container(cfg, resolve=True)
    text = str(exc.value)
    assert "trainer_mode=sync" in text and "enable_resource_pool" in text and "filter_groups" in text


def test_trap_problems_on_plain_dicts():
    ok = {"reward": {"reward_model": {"enable": True, "enable_resource_pool": True}}}
    assert config_trap_problems(ok) == []
    pool = {"enable": False, "enable_resource_pool": True, "nnodes": 2, "n_gpus_per_node": 8}
    half = {"reward": {"reward_model": pool}}
    (line,) = config_trap_problems(half)
    assert "(2 x 8 GPUs)" in line
    sampler = {"path": "pkg://sophiavl/recipes/trust_sampler", "name": "TrustSampler"}  # '/' spelling works too
    trainer = {"v1": {"sampler": {"custom_sampler": sampler}}}
    dapo = {"algorithm": {"filter_groups": {"enable": True}}, "trainer": trainer}
    (line,) = config_trap_problems(dapo)
    assert line.startswith("algorithm.filter_groups.enable=true")


@pytest.mark.parametrize("recipe", ["sophiavl", "sophiavl_gdpo"])
def test_parameter_sync_step_above_one_beside_the_trust_sampler_is_refused(compose_ppo, recipe):
    """verl would whiten sub-batches instead of the step and average the trust/ counts (docs/verl-known-issues.md)."""
    cfg = compose_ppo(f"+recipe={recipe}", *EXTERNAL_JUDGE, "+trainer.v1.sync.parameter_sync_step=2")
    with pytest.raises(Exception) as exc:
        OmegaConf.to_container(cfg, resolve=True)
    text = str(exc.value)
    assert "trainer.v1.sync.parameter_sync_step=2: the trust sampler needs one sample() per training step" in text
    assert "whiten_batch would whiten sub-batches" in text and "average the trust/pad_rows" in text
    pool_off = "reward.reward_model.enable_resource_pool=false"
    one = compose_ppo(f"+recipe={recipe}", *EXTERNAL_JUDGE, pool_off, "+trainer.v1.sync.parameter_sync_step=1")
    assert OmegaConf.to_container(one, resolve=True)["trainer"]["v1"]["sync"]["parameter_sync_step"] == 1


def test_parameter_sync_step_with_verls_own_replay_buffer_is_left_to_verl(compose_ppo):
    cfg = compose_ppo("+recipe=sophiavl_grpo", "+trainer.v1.sync.parameter_sync_step=2")
    assert OmegaConf.to_container(cfg, resolve=True)["trainer"]["v1"]["sync"]["parameter_sync_step"] == 2
