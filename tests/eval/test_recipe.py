"""`+recipe=sophiavl_eval` composed on verl 0.9.1's real ppo_trainer config, as main_ppo composes it."""

from __future__ import annotations

from omegaconf import OmegaConf

from sophiavl.eval.compute_score import compute_score
from sophiavl.recipes.trust_wiring_check import check_trust_wiring


def test_the_contract_keys(compose_ppo):
    cfg = compose_ppo("+recipe=sophiavl_eval")
    assert not isinstance(cfg.get("recipe"), str), "the recipe group was not found (+recipe=x then adds a string key)"
    t = cfg.trainer
    # verl 0.9.1 reads val_only only inside `if val_before_train` (trainer_base.fit): both must hold
    assert t.val_before_train is True and t.val_only is True
    assert t.resume_mode == "disable"  # "auto" would load the newest checkpoint of default_local_dir
    assert t.validation_data_dir == "checkpoints/sophiavl_eval/eval/eval_dump"
    assert t.save_freq == -1 and t.total_training_steps == 1
    assert cfg.reward.reward_model.enable is False and cfg.reward.reward_model.enable_resource_pool is False
    assert cfg.reward.custom_reward_function.path == "pkg://sophiavl.eval.compute_score"
    assert cfg.reward.custom_reward_function.name == "compute_score"
    assert cfg.reward.reward_manager.name == "naive"  # verl's own manager: no thinking RM wiring
    vk = cfg.actor_rollout_ref.rollout.val_kwargs
    assert (vk.temperature, vk.top_p, vk.top_k, vk.n, vk.do_sample) == (0, 1.0, -1, 1, False)  # greedy, once
    assert cfg.actor_rollout_ref.rollout.name == "vllm"
    assert cfg.data.max_response_length == 2048
    assert cfg.data.max_prompt_length >= 16384 + 1024  # one image at max_pixels plus the text
    assert cfg.data.filter_overlong_prompts is False and cfg.data.validation_shuffle is False
    assert cfg.algorithm.adv_estimator == "grpo"  # no critic worker
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["actor_rollout_ref"]["rollout"]["response_length"] == 2048
    assert resolved["actor_rollout_ref"]["rollout"]["prompt_length"] == cfg.data.max_prompt_length


def test_command_line_overrides_win(compose_ppo):
    cfg = compose_ppo(
        "+recipe=sophiavl_eval",
        "trainer.validation_data_dir=/tmp/dump",
        "data.max_response_length=512",
        "actor_rollout_ref.rollout.val_kwargs.n=4",
        "trainer.resume_mode=auto",
    )
    assert cfg.trainer.validation_data_dir == "/tmp/dump" and cfg.data.max_response_length == 512
    assert cfg.actor_rollout_ref.rollout.val_kwargs.n == 4 and cfg.trainer.resume_mode == "auto"


def test_passes_verl_checks_and_not_the_trust_wiring(compose_ppo):
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.config import validate_config

    cfg = compose_ppo("+recipe=sophiavl_eval")
    validate_config(cfg, use_reference_policy=False, use_critic=False)
    assert check_trust_wiring(cfg) is None  # a plain grpo run: the Trust-GRPO check does not apply
    fn = get_custom_reward_fn(cfg)  # verl's own loader, as the reward loop uses it
    got = fn(data_source="mme", solution_str="<answer>No</answer>", ground_truth="No",
             extra_info={"benchmark": "mme", "id": "3"})  # fmt: skip
    want = compute_score("mme", "<answer>No</answer>", "No", {"benchmark": "mme", "id": "3"})
    assert got == want and got["acc"] == 1.0
