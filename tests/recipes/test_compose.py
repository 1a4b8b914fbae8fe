"""The recipe config group composed into verl's real ``ppo_trainer`` config through Hydra's compose API."""

import pytest
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf


def test_paper_recipe_sets_keys_where_verl_reads_them(compose_ppo):
    cfg = compose_ppo("+recipe=sophiavl")
    # `+recipe=x` without a `recipe` group on the search path would just add a string key
    assert "recipe" not in cfg
    assert cfg.algorithm.adv_estimator == "trust_grpo"
    assert cfg.algorithm.use_kl_in_reward is False
    assert cfg.actor_rollout_ref.rollout.n == 8
    assert cfg.actor_rollout_ref.rollout.temperature == 1.0
    assert cfg.actor_rollout_ref.actor.optim.lr == pytest.approx(5e-7)
    assert cfg.actor_rollout_ref.actor.use_kl_loss is True
    assert cfg.actor_rollout_ref.actor.kl_loss_coef == pytest.approx(0.04)
    assert cfg.actor_rollout_ref.actor.kl_loss_type == "low_var_kl"
    assert cfg.trainer.total_training_steps == 1500
    assert cfg.trainer.use_v1 is True
    assert cfg.trainer.v1.trainer_mode == "sync"
    assert cfg.data.image_key == "images"
    assert cfg.data.train_batch_size == 8
    trust = cfg.algorithm.trust_grpo
    assert trust.semantics == "paper"
    assert trust.alpha == pytest.approx(0.3)
    assert trust.anneal == "exp"
    assert trust.anneal_T == 1500  # interpolated from trainer.total_training_steps
    # the rollout reads its lengths from data.*; the recipe's values must reach it
    assert cfg.actor_rollout_ref.rollout.response_length == 1024


def test_recipe_keeps_verl_defaults_it_does_not_mention(compose_ppo):
    plain = compose_ppo()
    cfg = compose_ppo("+recipe=sophiavl")
    assert cfg.actor_rollout_ref.actor.clip_ratio == plain.actor_rollout_ref.actor.clip_ratio
    assert cfg.critic.optim.lr == plain.critic.optim.lr
    assert cfg.trainer.project_name == plain.trainer.project_name


def test_official_recipe_changes_only_released_code_values(compose_ppo):
    cfg = compose_ppo("+recipe=sophiavl_official")
    trust = cfg.algorithm.trust_grpo
    assert trust.semantics == "official"
    assert trust.anneal_T == 12000
    assert trust.alpha == pytest.approx(0.3)
    assert cfg.actor_rollout_ref.actor.optim.lr == pytest.approx(6e-7)
    assert cfg.data.train_batch_size == 16
    assert cfg.actor_rollout_ref.actor.ppo_mini_batch_size == 16
    assert cfg.actor_rollout_ref.actor.entropy_coeff == pytest.approx(1e-3)
    assert cfg.actor_rollout_ref.rollout.top_p == pytest.approx(0.9)
    assert cfg.actor_rollout_ref.actor.grad_clip == pytest.approx(4.0)
    assert cfg.data.shuffle is False
    assert cfg.data.seed == 1
    # inherited from the paper recipe
    assert cfg.algorithm.adv_estimator == "trust_grpo"
    assert cfg.actor_rollout_ref.rollout.n == 8
    assert cfg.actor_rollout_ref.actor.kl_loss_coef == pytest.approx(0.04)


@pytest.mark.parametrize("recipe", ["sophiavl", "sophiavl_official"])
def test_command_line_override_wins_in_any_order(compose_ppo, recipe):
    for overrides in (
        (f"+recipe={recipe}", "algorithm.trust_grpo.alpha=0.5", "actor_rollout_ref.rollout.n=4"),
        ("algorithm.trust_grpo.alpha=0.5", "actor_rollout_ref.rollout.n=4", f"+recipe={recipe}"),
    ):
        cfg = compose_ppo(*overrides)
        assert cfg.algorithm.trust_grpo.alpha == pytest.approx(0.5)
        assert cfg.actor_rollout_ref.rollout.n == 4


def test_anneal_horizon_follows_total_steps_unless_set(compose_ppo):
    cfg = compose_ppo("+recipe=sophiavl", "trainer.total_training_steps=300")
    assert cfg.algorithm.trust_grpo.anneal_T == 300
    cfg = compose_ppo("+recipe=sophiavl", "trainer.total_training_steps=300", "algorithm.trust_grpo.anneal_T=50")
    assert cfg.algorithm.trust_grpo.anneal_T == 50


def test_every_recipe_value_resolves(compose_ppo):
    for recipe in ("sophiavl", "sophiavl_official"):
        cfg = compose_ppo(f"+recipe={recipe}")
        OmegaConf.to_container(cfg.algorithm, resolve=True)
        OmegaConf.to_container(cfg.trainer, resolve=True)
        OmegaConf.to_container(cfg.reward, resolve=True)


def test_unknown_recipe_fails(compose_ppo):
    with pytest.raises(MissingConfigException, match="nonexistent"):
        compose_ppo("+recipe=nonexistent")


@pytest.mark.parametrize("recipe", ["sophiavl", "sophiavl_official"])
def test_default_topology_fits_one_8_gpu_node(compose_ppo, recipe):
    cfg = compose_ppo(f"+recipe={recipe}")
    trainer_gpus = cfg.trainer.nnodes * cfg.trainer.n_gpus_per_node
    rm_gpus = cfg.reward.reward_model.nnodes * cfg.reward.reward_model.n_gpus_per_node
    assert (trainer_gpus, rm_gpus) == (4, 4)
    # verl requires the rollout batch (prompts x group size) to split evenly over the trainer's GPUs
    assert (cfg.data.train_batch_size * cfg.actor_rollout_ref.rollout.n) % trainer_gpus == 0
