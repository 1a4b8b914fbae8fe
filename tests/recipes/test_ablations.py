"""The ablation recipes (paper Table 3 and the v2 design ablations) composed on verl's stock ``ppo_trainer``.

Each recipe starts from ``sophiavl`` and must change exactly the keys its ablation names: the test resolves both
configs and compares every leaf.
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from sophiavl.rewards.trm.config import ThinkingRMConfig
from sophiavl.rewards.trust.config import TrustConfig

SAMPLER = "trainer.v1.sampler.custom_sampler"

#: recipe -> every leaf that differs from `sophiavl` after resolution, with its value
ABLATIONS = {
    "sophiavl_grpo": {
        "algorithm.adv_estimator": "grpo",
        "algorithm.trust_grpo.trust": "off",
        f"{SAMPLER}.path": None,
        f"{SAMPLER}.name": None,
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.trust": "off",
        "trainer.v1.sampler.sampler_kwargs.adv_estimator": "grpo",
        "reward.reward_model.enable": False,
        "reward.reward_model.enable_resource_pool": False,
        "reward.thinking_rm.enable": False,
    },
    "sophiavl_wo_trust": {
        "algorithm.trust_grpo.trust": "off",
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.trust": "off",
    },
    "sophiavl_wo_trust_anneal": {
        "algorithm.trust_grpo.trust": "off",
        "algorithm.trust_grpo.anneal": "none",
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.trust": "off",
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.anneal": "none",
    },
    "sophiavl_linear": {
        "algorithm.trust_grpo.anneal": "linear",
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.anneal": "linear",
    },
    "sophiavl_variance": {
        "algorithm.trust_grpo.trust": "variance",
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.trust": "variance",
        "reward.thinking_rm.samples": 3,
        "reward.thinking_rm.temperature": 1.0,
    },
    "sophiavl_untrained_trm": {
        "reward.reward_model.model_path": "Qwen/Qwen2.5-VL-3B-Instruct",
    },
    # beyond the paper (docs/beyond-the-paper.md)
    "sophiavl_posterior": {
        "algorithm.trust_grpo.gate": "correct",
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.gate": "correct",
    },
    "sophiavl_gdpo": {
        "algorithm.trust_grpo.normalize": "decoupled",
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.normalize": "decoupled",
    },
    "sophiavl_papo": {
        "algorithm.trust_grpo.normalize": "papo",
        "trainer.v1.sampler.sampler_kwargs.trust_grpo.normalize": "papo",
    },
}


def leaves(node, prefix=""):
    """Flattened ``{dotted.key: value}`` of a resolved container."""
    out = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out.update(leaves(value, f"{prefix}{key}."))
    else:
        out[prefix[:-1]] = node
    return out


def resolved(cfg):
    return leaves(OmegaConf.to_container(cfg, resolve=True))


@pytest.fixture(scope="module")
def paper(request):
    from hydra import compose, initialize_config_module

    with initialize_config_module("verl.trainer.config", version_base=None):
        return resolved(compose("ppo_trainer", overrides=["+recipe=sophiavl"]))


@pytest.mark.parametrize("recipe", sorted(ABLATIONS))
def test_recipe_changes_only_what_it_ablates(compose_ppo, paper, recipe):
    cfg = compose_ppo(f"+recipe={recipe}")
    assert "recipe" not in cfg  # the group was found: `+recipe=x` without it would add a string key
    ours = resolved(cfg)  # resolving runs the wiring check (algorithm.trust_grpo.check_wiring)
    assert set(ours) == set(paper)
    diff = {k: ours[k] for k in ours if ours[k] != paper[k]}
    assert diff == ABLATIONS[recipe]
    # both parsers accept the result
    TrustConfig.from_config(cfg.algorithm.trust_grpo)
    ThinkingRMConfig.from_config(cfg.reward.thinking_rm)


@pytest.mark.parametrize(
    ("recipe", "overrides", "expected"),
    [
        ("sophiavl_grpo", ["algorithm.adv_estimator=grpo_vectorized"], {"algorithm.adv_estimator": "grpo_vectorized"}),
        ("sophiavl_wo_trust", ["algorithm.trust_grpo.trust=group"], {"algorithm.trust_grpo.trust": "group"}),
        ("sophiavl_wo_trust_anneal", ["algorithm.trust_grpo.anneal=exp"], {"algorithm.trust_grpo.anneal": "exp"}),
        ("sophiavl_linear", ["algorithm.trust_grpo.anneal_T=300"], {"algorithm.trust_grpo.anneal_T": 300}),
        (
            "sophiavl_variance",
            ["reward.thinking_rm.samples=5", "reward.thinking_rm.temperature=0.7", "reward.thinking_rm.seed=11"],
            {"reward.thinking_rm.samples": 5, "reward.thinking_rm.temperature": 0.7, "reward.thinking_rm.seed": 11},
        ),
        (
            "sophiavl_untrained_trm",
            ["reward.reward_model.model_path=/models/qwen-3b"],
            {"reward.reward_model.model_path": "/models/qwen-3b"},
        ),
        ("sophiavl_posterior", ["algorithm.trust_grpo.gate=none"], {"algorithm.trust_grpo.gate": "none"}),
        (
            "sophiavl_gdpo",
            ["algorithm.trust_grpo.whiten_batch=false", "algorithm.trust_grpo.trust=off"],
            {"algorithm.trust_grpo.whiten_batch": False, "algorithm.trust_grpo.trust": "off"},
        ),
        (
            "sophiavl_papo",
            ["algorithm.trust_grpo.normalize=decoupled"],
            {"algorithm.trust_grpo.normalize": "decoupled"},
        ),
    ],
)
def test_command_line_overrides_win(compose_ppo, recipe, overrides, expected):
    for order in (
        [f"+recipe={recipe}", *overrides, "algorithm.trust_grpo.alpha=0.5"],
        [*overrides, f"+recipe={recipe}"],
    ):
        cfg = compose_ppo(*order)
        for key, value in expected.items():
            assert OmegaConf.select(cfg, key) == value, (order, key)
    assert compose_ppo(f"+recipe={recipe}", "algorithm.trust_grpo.alpha=0.5").algorithm.trust_grpo.alpha == 0.5


def test_grpo_baseline_builds_verls_own_replay_buffer(compose_ppo):
    """verl's PPOTrainer._build_replay_buffer on the resolved `sophiavl_grpo`: the stock buffer, no trust sampler."""
    from types import MethodType, SimpleNamespace

    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from sophiavl.recipes.trust_sampler import TrustSampler

    cfg = compose_ppo("+recipe=sophiavl_grpo")
    OmegaConf.resolve(cfg)
    fake_trainer = SimpleNamespace(config=cfg, trainer_mode="sync", _add_prompts_to_generate=lambda n: None)
    # verl's own helper, bound to the stand-in (the built-in buffer asks it for DAPO's group filter)
    fake_trainer._resolve_filter_groups_metric = MethodType(PPOTrainer._resolve_filter_groups_metric, fake_trainer)
    buffer = PPOTrainer._build_replay_buffer(fake_trainer)
    assert type(buffer) is ReplayBuffer and not isinstance(buffer, TrustSampler)


def test_variance_recipe_builds_a_variance_trust_sampler(compose_ppo):
    from types import SimpleNamespace

    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from sophiavl.recipes.trust_sampler import TrustSampler

    cfg = compose_ppo(
        "+recipe=sophiavl_variance",
        "reward.reward_model.enable=false",
        "reward.reward_model.enable_resource_pool=false",
        "reward.thinking_rm.base_url=http://judge:8000/v1",
    )
    OmegaConf.resolve(cfg)
    fake_trainer = SimpleNamespace(config=cfg, trainer_mode="sync", _add_prompts_to_generate=lambda n: None)
    sampler = PPOTrainer._build_replay_buffer(fake_trainer)
    assert type(sampler) is TrustSampler and sampler.trust.trust == "variance"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # thinking off while verl would still start the TRM pool
        (["+recipe=sophiavl", "reward.thinking_rm.enable=false"], r"reward\.reward_model\.enable=true: verl would"),
        # a trust mode needs thinking scores
        (["+recipe=sophiavl_grpo", "algorithm.trust_grpo.trust=group"], r"trust=group needs thinking scores"),
        (["+recipe=sophiavl_grpo", "algorithm.trust_grpo.trust=variance"], r"trust=variance needs thinking scores"),
        # the RM pool back on in the baseline
        (
            [
                "+recipe=sophiavl_grpo",
                "reward.reward_model.enable=true",
                "reward.reward_model.enable_resource_pool=true",
            ],
            r"never asked",
        ),
        # variance of one judge sample is always 0
        (["+recipe=sophiavl_variance", "reward.thinking_rm.samples=1"], r"trust=variance needs .*samples >= 2"),
        # K > 1 needs sampling
        (["+recipe=sophiavl_variance", "reward.thinking_rm.temperature=0"], r"samples=3 needs .*temperature > 0"),
        # routed advantages: only trust_grpo reads them, and they ignore a KL penalty in the reward
        (["+recipe=sophiavl_gdpo", "algorithm.use_kl_in_reward=true"], r"normalize=decoupled .*use_kl_in_reward=false"),
        (["+recipe=sophiavl_papo", "algorithm.adv_estimator=grpo"], r"adv_estimator=grpo would treat every row"),
        (["+recipe=sophiavl", "algorithm.trust_grpo.whiten_batch=true", "algorithm.use_kl_in_reward=true"], r"KL"),
        # the released code has none of these modes
        (["+recipe=sophiavl_official", "algorithm.trust_grpo.normalize=papo"], r"semantics=official reproduces"),
    ],
)
def test_wiring_check_rejects_inconsistent_thinking_switches(compose_ppo, overrides, message):
    cfg = compose_ppo(*overrides)
    with pytest.raises(Exception, match=message):
        OmegaConf.to_container(cfg, resolve=True)  # what verl's TaskRunner.run does before building the trainer


@pytest.mark.parametrize(("recipe", "normalize", "gate", "whiten"), [
    ("sophiavl_posterior", "joint", "correct", False),
    ("sophiavl_gdpo", "decoupled", "none", True),
    ("sophiavl_papo", "papo", "none", False),
])  # fmt: skip
def test_beyond_the_paper_recipes_build_their_trust_sampler(compose_ppo, recipe, normalize, gate, whiten):
    """verl's own PPOTrainer._build_replay_buffer on the resolved recipe gives a TrustSampler in that mode."""
    from types import SimpleNamespace

    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from sophiavl.recipes.trust_sampler import TrustSampler

    cfg = compose_ppo(
        f"+recipe={recipe}",
        "reward.reward_model.enable=false",
        "reward.reward_model.enable_resource_pool=false",
        "reward.thinking_rm.base_url=http://judge:8000/v1",
        "algorithm.norm_adv_by_std_in_grpo=false",
    )
    OmegaConf.resolve(cfg)
    fake_trainer = SimpleNamespace(config=cfg, trainer_mode="sync", _add_prompts_to_generate=lambda n: None)
    sampler = PPOTrainer._build_replay_buffer(fake_trainer)
    assert type(sampler) is TrustSampler
    assert (sampler.trust.normalize, sampler.trust.gate, sampler.trust.whiten) == (normalize, gate, whiten)
    assert sampler.norm_by_std is False  # algorithm.norm_adv_by_std_in_grpo reaches the sampler
