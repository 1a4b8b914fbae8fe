"""The ``trust_grpo`` estimator through verl's own advantage path, and the fail-fast wiring checks."""

import numpy as np
import pytest
import torch
import verl  # noqa: F401  (loads the sophiavl plugin: registers trust_grpo and the wiring resolver)
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

from sophiavl.recipes.trust_advantage_routing import ROUTED_ADVANTAGES, SESSION_OUTPUTS
from sophiavl.recipes.trust_grpo_estimator import (
    PAD_ADV_MAX,
    PAD_ROWS,
    SHAPED_UIDS,
    _pad_abs_max,
    compute_trust_grpo_advantage,
)
from sophiavl.recipes.trust_wiring_check import check_trust_wiring

EPS = 1e-6


@pytest.fixture(autouse=True)
def _fresh_registry():
    for record in (SHAPED_UIDS, SESSION_OUTPUTS, ROUTED_ADVANTAGES, PAD_ROWS, PAD_ADV_MAX):
        record.clear()
    yield
    for record in (SHAPED_UIDS, SESSION_OUTPUTS, ROUTED_ADVANTAGES, PAD_ROWS, PAD_ADV_MAX):
        record.clear()


def make_batch(scores_by_uid: dict[str, list[float]], width: int = 6):
    """token-level rewards with the score on the last valid token, ragged response lengths."""
    uids, rows, masks = [], [], []
    for k, (uid, scores) in enumerate(scores_by_uid.items()):
        for j, s in enumerate(scores):
            length = 2 + (k + j) % (width - 1)
            row = torch.zeros(width)
            row[length - 1] = s
            rows.append(row)
            masks.append((torch.arange(width) < length).to(torch.int64))
            uids.append(uid)
    return torch.stack(rows), torch.stack(masks), np.array(uids, dtype=object)


def run_verl_path(tlr, mask, uids, norm=True):
    """verl 0.9.1 V1: _compute_advantage -> compute_advantage_for_multi_trajectories -> compute_advantage."""
    data = DataProto.from_dict(tensors={"token_level_rewards": tlr, "response_mask": mask}, non_tensors={"uid": uids})
    keys = [f"{u}_{i}_0" for i, u in enumerate(uids)]
    algo = OmegaConf.create({"adv_estimator": "trust_grpo", "norm_adv_by_std_in_grpo": norm})
    out = compute_advantage_for_multi_trajectories(
        data, batch_keys=keys, adv_estimator="trust_grpo", num_repeat=4, norm_adv_by_std_in_grpo=norm, config=algo
    )
    return out.batch["advantages"], out.batch["returns"]


def test_registered_by_plugin():
    assert get_adv_estimator_fn("trust_grpo") is compute_trust_grpo_advantage


def test_through_verl_compute_advantage_hand_computed():
    # group a: R = [1.15, 0.15] -> mean 0.65, std = sqrt(0.5) = 0.7071067811865476, adv = +-0.5/(std + eps)
    # group b: one response R = 0.4 -> 0.4/(1 + eps) ; group c: equal rewards -> 0
    tlr, mask, uids = make_batch({"a": [1.15, 0.15], "b": [0.4], "c": [0.7, 0.7, 0.7]})
    SHAPED_UIDS.add(["a", "b", "c"])
    adv, ret = run_verl_path(tlr, mask, uids)
    s = 0.7071067811865476
    expected = torch.tensor([0.5 / (s + EPS), -0.5 / (s + EPS), 0.4 / (1 + EPS), 0, 0, 0])
    assert torch.allclose(adv, expected.unsqueeze(-1) * mask, atol=1e-6)
    assert torch.equal(adv, ret)
    assert torch.all(adv[mask == 0] == 0)  # broadcast over the response mask only


def test_norm_adv_by_std_false_from_config():
    tlr, mask, uids = make_batch({"a": [1.15, 0.15], "b": [0.4]})
    SHAPED_UIDS.add(["a", "b"])
    adv, _ = run_verl_path(tlr, mask, uids, norm=False)
    # R - mean: +-0.5 ; group of one: R - 0 = 0.4
    expected = torch.tensor([0.5, -0.5, 0.4])
    assert torch.allclose(adv, expected.unsqueeze(-1) * mask, atol=1e-6)


def test_equals_verl_grpo_on_random_batch():
    gen = torch.Generator().manual_seed(1)
    sizes = {f"u{k}": n for k, n in enumerate([8, 8, 1, 3, 5, 8, 2])}
    tlr, mask, uids = make_batch({u: torch.rand(n, generator=gen).tolist() for u, n in sizes.items()}, width=9)
    SHAPED_UIDS.add(sizes)
    for norm in (True, False):
        ours, _ = run_verl_path(tlr, mask, uids, norm=norm)
        ref, _ = compute_grpo_outcome_advantage(tlr, mask, uids, norm_adv_by_std_in_grpo=norm)
        assert torch.allclose(ours, ref, atol=1e-5)


def test_unshaped_group_raises_naming_the_sampler_key():
    tlr, mask, uids = make_batch({"a": [1.0, 0.0], "b": [0.4]})
    with pytest.raises(RuntimeError, match=r"trainer\.v1\.sampler\.custom_sampler") as exc:  # nothing shaped at all
        run_verl_path(tlr, mask, uids)
    assert "'a'" in str(exc.value) and "2 of 2 groups" in str(exc.value)
    assert "shaped no batch in this process" in str(exc.value)


def test_group_added_after_sampling_is_named_as_such():
    tlr, mask, uids = make_batch({"a": [1.0, 0.0], "b": [0.4]})
    SHAPED_UIDS.add(["a"])  # the sampler ran, but b was not in its batch
    with pytest.raises(RuntimeError, match="added to the batch after sampling") as exc:
        run_verl_path(tlr, mask, uids)
    assert "'b'" in str(exc.value) and "1 of 2 groups" in str(exc.value)
    assert "custom_sampler.path" not in str(exc.value)  # the sampler is there: not blamed


PAD = "pad0123456789abcdef0123456789abcdef"  # verl's f"pad{uuid.uuid4().hex}"


def test_pad_rows_get_zero_advantage_and_stay_out_of_the_groups():
    # group a: R = [1.15, 0.15] -> +-0.5 / (sqrt(0.5) + eps); two pad rows: zero mask and zero reward
    tlr, mask, uids = make_batch({"a": [1.15, 0.15], PAD: [0.0, 0.0]})
    mask[2:] = 0
    SHAPED_UIDS.add(["a"])
    adv, _ = run_verl_path(tlr, mask, uids)
    s = 0.7071067811865476
    assert torch.allclose(adv[:2], torch.tensor([0.5 / (s + EPS), -0.5 / (s + EPS)]).unsqueeze(-1) * mask[:2])
    assert torch.all(adv[2:] == 0)


def test_pad_figures_cover_the_per_row_advantage_not_only_the_masked_tensor():
    """Pad rows carrying a reward (verl's carry 0): without the zeroing, a pad group of one would get R / (1 + E)
    before the mask; trust/pad_adv_abs_max reads that per-row value too, so it would show 5 / (1 + E), not 0."""
    tlr, mask, uids = make_batch({"a": [1.0, 0.0], PAD: [5.0, 5.0]})
    mask[2:] = 0
    SHAPED_UIDS.add(["a"])
    count, largest = PAD_ROWS.open(), PAD_ADV_MAX.open()
    assert torch.isnan(largest)
    run_verl_path(tlr, mask, uids)
    assert float(count) == 2.0 and float(largest) == 0.0
    # the figure itself: the largest |value| over the pad rows' per-row advantage and every position of their rows
    adv, out = torch.tensor([3.0, -0.5, 0.0]), torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, -0.25]])
    assert _pad_abs_max(adv, out, np.array([False, True, True])) == 0.5
    assert _pad_abs_max(adv, out, np.array([False, False, False])) == 0.0


def test_multi_output_sessions_match_verls_grpo_through_verls_path():
    """Issue 28's repro through verl's compute_advantage_for_multi_trajectories, at the estimator's level: keys
    g_0_0, g_0_1, g_1_0, g_2_0, R = [1, 1, 0, 0.5]. verl's grpo: last outputs R 1, 0, 0.5 (mean 0.5, unbiased std
    0.5), session 0's first output takes its last one's advantage: [1, 1, -1, 0] over (0.5 + E). For trust_grpo
    the rows of session 0 carry their keys as uid and are recorded as the sampler does (trust_sampler)."""
    keys = ["g_0_0", "g_0_1", "g_1_0", "g_2_0"]
    tlr = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 0, 0]])
    SHAPED_UIDS.add(["g"])  # (verl's grpo reads neither record)
    SESSION_OUTPUTS.add(["g_0_0", "g_0_1"], ["g", "g"], ["g_0_1", "g_0_1"])
    results = {}
    for estimator, uids in (("grpo", ["g"] * 4), ("trust_grpo", ["g_0_0", "g_0_1", "g", "g"])):
        data = DataProto.from_dict(
            tensors={"token_level_rewards": tlr.clone(), "response_mask": mask},
            non_tensors={"uid": np.array(uids, dtype=object)},
        )
        algo = OmegaConf.create({"adv_estimator": estimator, "norm_adv_by_std_in_grpo": True})
        out = compute_advantage_for_multi_trajectories(
            data, batch_keys=keys, adv_estimator=estimator, num_repeat=4, config=algo
        )
        results[estimator] = out.batch["advantages"]
    a = 0.5 / (0.5 + EPS)
    expected = torch.tensor([a, a, -a, 0.0]).unsqueeze(-1) * mask
    assert torch.allclose(results["grpo"], expected, atol=1e-6)
    assert torch.allclose(results["trust_grpo"], expected, atol=1e-6)


def test_a_session_row_without_its_last_output_is_refused():
    SHAPED_UIDS.add(["g"])
    SESSION_OUTPUTS.add(["g_0_0", "g_0_1"], ["g", "g"], ["g_0_1", "g_0_1"])
    with pytest.raises(RuntimeError, match="without its session's last output 'g_0_1'"):
        compute_trust_grpo_advantage(torch.zeros(2, 2), torch.ones(2, 2), index=np.array(["g_0_0", "g"], dtype=object))


def test_routed_mode_rows_that_arrive_unrouted_are_named_as_such():
    """After the sampler routed a batch, a row that arrives with a prompt uid, or with a row key no batch recorded,
    gets an error that says the sampler ran in a routed mode (not that it is missing)."""
    ROUTED_ADVANTAGES.add(["r_0_0"], [1.0])
    for label, cause in (("r", "is not a row key"), ("r_7_0", "is a row key that no recent batch recorded")):
        with pytest.raises(RuntimeError, match="did not shape") as exc:
            compute_trust_grpo_advantage(torch.zeros(1, 2), torch.ones(1, 2), index=np.array([label], dtype=object))
        text = str(exc.value)
        assert "ran in this process in a routed mode" in text and "recorded the advantages of 1 batch(es)" in text
        assert cause in text and "it is missing" not in text


def test_a_pad_named_group_with_response_tokens_is_not_a_pad_group():
    tlr, mask, uids = make_batch({"a": [1.0, 0.0], PAD: [0.0]})  # mask of the "pad" row is not zero
    SHAPED_UIDS.add(["a"])
    with pytest.raises(RuntimeError, match="named like verl's pad rows but has response tokens"):
        run_verl_path(tlr, mask, uids)


def test_float_mask_is_left_unchanged():
    # two responses of one group, rewards 1 and 0: advantages +-0.7071 (std of [1, 0] is sqrt(0.5))
    rewards = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    mask = torch.ones(2, 2)
    SHAPED_UIDS.add(["g"])
    adv, _ = compute_trust_grpo_advantage(rewards, mask, index=np.array(["g", "g"], dtype=object))
    assert torch.equal(mask, torch.ones(2, 2))
    assert adv[0, 0].item() == pytest.approx(0.5 / (0.5**0.5 + EPS))
    assert adv[1, 0].item() == pytest.approx(-0.5 / (0.5**0.5 + EPS))


def test_missing_index_raises():
    with pytest.raises(RuntimeError, match="uid"):
        compute_trust_grpo_advantage(torch.zeros(1, 2), torch.ones(1, 2))


# ------------------------------------------------------------------------------------------ wiring checks
def wired(**changes):
    cfg = {
        "algorithm": {"adv_estimator": "trust_grpo", "trust_grpo": {"semantics": "paper", "anneal_T": 1500}},
        "trainer": {
            "use_v1": True,
            "v1": {
                "trainer_mode": "sync",
                "sampler": {"custom_sampler": {"path": "pkg://sophiavl.recipes.trust_sampler", "name": "TrustSampler"}},
            },
        },
        "reward": {
            "reward_model": {"enable": False},
            "thinking_rm": {"base_url": "http://127.0.0.1:8000/v1", "max_failure_rate": 0.2},
        },
    }
    cfg = OmegaConf.create(cfg)
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def test_wiring_ok_returns_trust_config():
    trust = check_trust_wiring(wired())
    assert trust.semantics == "paper" and trust.anneal_T == 1500
    assert check_trust_wiring(OmegaConf.to_container(wired())).alpha == 0.3  # plain dicts work too


def test_wiring_not_used():
    cfg = wired(**{"algorithm.adv_estimator": "grpo", "trainer.v1.sampler.custom_sampler": None})
    assert check_trust_wiring(cfg) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trainer.v1.sampler.custom_sampler": None}, r"trainer\.v1\.sampler\.custom_sampler is not set"),
        ({"trainer.v1.sampler.custom_sampler.path": None}, r"custom_sampler\.path=pkg://sophiavl"),
        ({"algorithm.adv_estimator": "trust_grpx"}, "unknown advantage estimator"),
        ({"trainer.v1.sampler.custom_sampler.name": "Other"}, "must be TrustSampler"),
        ({"trainer.v1.trainer_mode": "separate_async"}, "trainer_mode=sync"),
        ({"trainer.use_v1": False}, "use_v1=true"),
        ({"reward.reward_model.enable": True}, "enable_resource_pool=true"),
        # an external judge and a verl-managed one: the latter would hold GPUs for nothing
        (
            {"reward.reward_model.enable": True, "reward.reward_model.enable_resource_pool": True},
            r"base_url=http://127\.0\.0\.1:8000/v1 .* are both set",
        ),
        ({"reward.thinking_rm.base_url": None}, "no thinking reward model"),
        ({"reward.thinking_rm.max_failure_rate": 1.5}, "max_failure_rate"),
        ({"algorithm.trust_grpo.anneal": "cosine"}, "anneal must be one of"),
    ],
)
def test_wiring_problems(changes, message):
    with pytest.raises(ValueError, match=message):
        check_trust_wiring(wired(**changes))


def test_recipe_resolver_fails_fast_before_trainer(compose_ppo):
    """With the recipe, dropping the sampler key fails when verl resolves the config (TaskRunner.run does
    `OmegaConf.to_container(config, resolve=True)` before building the trainer)."""
    good = compose_ppo("+recipe=sophiavl")
    bad = compose_ppo("+recipe=sophiavl", "trainer.v1.sampler.custom_sampler=null")
    official = compose_ppo("+recipe=sophiavl_official")
    resolved = OmegaConf.to_container(good, resolve=True)
    assert resolved["algorithm"]["trust_grpo"]["check_wiring"] is True
    sampler = resolved["trainer"]["v1"]["sampler"]
    assert sampler["custom_sampler"] == {"path": "pkg://sophiavl.recipes.trust_sampler", "name": "TrustSampler"}
    assert sampler["sampler_kwargs"]["trust_grpo"]["anneal_T"] == 1500
    assert sampler["sampler_kwargs"]["max_failure_rate"] == 0.2
    assert sampler["sampler_kwargs"]["rm_endpoint"] is None
    official_kwargs = OmegaConf.to_container(official, resolve=True)["trainer"]["v1"]["sampler"]["sampler_kwargs"]
    assert official_kwargs["trust_grpo"]["semantics"] == "official"
    assert official_kwargs["trust_grpo"]["anneal_T"] == 12000
    with pytest.raises(Exception, match=r"trainer\.v1\.sampler\.custom_sampler is not set"):
        OmegaConf.to_container(bad, resolve=True)


def test_verl_builds_the_trust_sampler_from_the_recipe(compose_ppo):
    """verl's own PPOTrainer._build_replay_buffer, on the composed and resolved recipe config."""
    from types import SimpleNamespace

    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from sophiavl.recipes.trust_sampler import TrustSampler

    cfg = compose_ppo(
        "+recipe=sophiavl_official",
        "reward.reward_model.enable=false",
        "reward.reward_model.enable_resource_pool=false",
        "reward.thinking_rm.base_url=http://judge:8000/v1",
    )
    OmegaConf.resolve(cfg)
    fake_trainer = SimpleNamespace(config=cfg, trainer_mode="sync", _add_prompts_to_generate=lambda n: None)
    sampler = PPOTrainer._build_replay_buffer(fake_trainer)
    assert type(sampler) is TrustSampler
    assert sampler.trust.semantics == "official" and sampler.trust.anneal_T == 12000
    assert sampler.max_failure_rate == 0.2 and sampler.rm_endpoint == "http://judge:8000/v1"


def test_wiring_thinking_off_needs_no_reward_model_but_trust_off():
    off = {"reward.thinking_rm.enable": False, "reward.thinking_rm.base_url": None, "algorithm.trust_grpo.trust": "off"}
    assert check_trust_wiring(wired(**off)).trust == "off"  # Trust-GRPO with R = Ro: allowed, no RM needed
    with pytest.raises(ValueError, match=r"trust=group needs thinking scores") as exc:
        check_trust_wiring(wired(**{**off, "algorithm.trust_grpo.trust": "group"}))
    assert "no thinking reward model" not in str(exc.value)
    # not a Trust-GRPO run, but the thinking switch is still checked
    plain = {**off, "algorithm.adv_estimator": "grpo", "trainer.v1.sampler.custom_sampler": None}
    assert check_trust_wiring(wired(**plain)) is None
    with pytest.raises(ValueError, match="never asked"):
        check_trust_wiring(wired(**{**plain, "reward.reward_model.enable": True}))


def test_wiring_rejects_a_yaml_boolean_trust():
    with pytest.raises(ValueError, match=r'write trust: "off"'):
        check_trust_wiring(wired(**{"algorithm.trust_grpo.trust": False}))
