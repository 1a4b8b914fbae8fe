"""The advantage modes of ``algorithm.trust_grpo`` (normalize joint|decoupled|papo, gate, whiten_batch) by hand.

Every expected number is written from the definitions in docs/beyond-the-paper.md with the arithmetic in comments;
``E`` is the 1e-6 added to every std. Most cases use ``trust=off, anneal=none`` so that the thinking weight is
``alpha`` itself.
"""

import math

import pytest
import torch

from sophiavl.rewards.trust.config import TrustConfig
from sophiavl.rewards.trust.variants import advantage_metrics, subset_z, variant_advantages, whiten
from sophiavl.rewards.trust.weights import shape_rewards

NAN = float("nan")
E = 1e-6
# z of two values a > b (unbiased std |a - b| / sqrt(2)): +-(|a - b| / 2) / (|a - b| / sqrt(2) + E)
S_TWO_1 = math.sqrt(0.5)  # std of {1, 0}
# Ro = [1, 1, 0, 0]: mean 0.5, unbiased var 4 * 0.25 / 3 = 1/3
Z_1100 = 0.5 / (math.sqrt(1 / 3) + E)
# Rt = [0.8, 0.4, 0.6]: mean 0.6, deviations 0.2, -0.2, 0, var 0.08 / 2 = 0.04, std 0.2
Z_RT3 = 0.2 / (0.2 + E)
# Rt = [0.8, 0.4]: mean 0.6, deviations +-0.2, var 0.08, std 0.28284271247461906
Z_RT2 = 0.2 / (math.sqrt(0.08) + E)


def cfg(**kw):
    base = dict(trust="off", anneal="none", alpha=0.5, whiten_batch=False)
    base.update(kw)
    return TrustConfig(**base)


def run(outcome, thinking, group, config, step=0, **kw):
    result = shape_rewards(outcome, thinking, group, step, config)
    return variant_advantages(result, outcome, config, **kw)


def close(actual, expected, tol=1e-9):
    actual = [float(x) for x in actual]
    assert len(actual) == len(expected), (actual, expected)
    for a, e in zip(actual, expected, strict=True):
        assert a == pytest.approx(e, abs=tol), (actual, expected)


# ------------------------------------------------------------------------------------------------------ decoupled
def test_decoupled_mixed_group_with_a_failed_judgement():
    adv = run([1, 1, 0, 0], [0.8, 0.4, 0.6, NAN], [0] * 4, cfg(normalize="decoupled"))
    close(adv.outcome, [Z_1100, Z_1100, -Z_1100, -Z_1100])
    # z_u over the three usable scores; the failed one gets no thinking advantage: w = alpha = 0.5
    close(adv.thinking, [0.5 * Z_RT3, -0.5 * Z_RT3, 0.0, 0.0])
    close(adv.advantage, [Z_1100 + 0.5 * Z_RT3, Z_1100 - 0.5 * Z_RT3, -Z_1100, -Z_1100])
    close(adv.rewards, [1.4, 1.2, 0.3, 0.0])  # Ro + w Rt, the failed one R = Ro


def test_decoupled_all_correct_all_wrong_single_correct_and_equal_groups():
    outcome = [1, 1, 1] + [0, 0] + [1, 0, 0] + [0.7, 0.7]
    thinking = [0.9, 0.5, 0.7] + [0.3, 0.1] + [0.2, 0.5, 0.5] + [0.3, 0.3]
    group = [0] * 3 + [1] * 2 + [2] * 3 + [3] * 2
    adv = run(outcome, thinking, group, cfg(normalize="decoupled", alpha=1.0))
    # all correct: z(Ro) = 0 (std 0); Rt 0.9, 0.5, 0.7: mean 0.7, std 0.2
    # all wrong: z(Ro) = 0; Rt 0.3, 0.1: +-0.1 / (sqrt(0.02) + E)
    # single correct: Ro 1, 0, 0: mean 1/3, deviations 2/3, -1/3, -1/3, var (4/9 + 2/9) / 2 = 1/3;
    #   Rt 0.2, 0.5, 0.5: mean 0.4, deviations -0.2, 0.1, 0.1, var 0.06 / 2 = 0.03
    # equal: Ro 0.7, 0.7 and Rt 0.3, 0.3 -> exactly 0 (std <= E), not verl gdpo's float noise / 1e-6
    s3, st = math.sqrt(1 / 3) + E, math.sqrt(0.03) + E
    z_w = 0.1 / (math.sqrt(0.02) + E)
    close(adv.outcome, [0, 0, 0] + [0, 0] + [(2 / 3) / s3, -(1 / 3) / s3, -(1 / 3) / s3] + [0, 0])
    close(adv.thinking, [Z_RT3, -Z_RT3, 0] + [z_w, -z_w] + [-0.2 / st, 0.1 / st, 0.1 / st] + [0, 0])
    assert adv.advantage[-2:].tolist() == [0.0, 0.0]  # exact zeros


def test_decoupled_one_response_group_and_one_usable_score_give_zero():
    adv = run([1, 0, 1], [0.9, NAN, 0.4], [0, 1, 1], cfg(normalize="decoupled"))
    # group 0 has one response: no statistics; group 1: Ro 0, 1 -> -+0.5 / (sqrt(0.5) + E), one usable Rt -> 0
    close(adv.outcome, [0.0, -0.5 / (S_TWO_1 + E), 0.5 / (S_TWO_1 + E)])
    close(adv.thinking, [0.0, 0.0, 0.0])


def test_decoupled_whitens_over_the_batch_by_default():
    config = TrustConfig(normalize="decoupled", trust="off", anneal="none", alpha=0.5)
    assert config.whiten
    adv = run([1, 1, 0, 0], [0.8, 0.4, 0.6, NAN], [0] * 4, config)
    raw = [Z_1100 + 0.5 * Z_RT3, Z_1100 - 0.5 * Z_RT3, -Z_1100, -Z_1100]  # mean 0
    std = math.sqrt(sum(a * a for a in raw) / 3)
    close(adv.advantage, [a / (std + E) for a in raw])
    close(adv.outcome, [Z_1100, Z_1100, -Z_1100, -Z_1100])  # the parts are reported before whitening


def test_decoupled_without_std_normalisation_only_centres():
    adv = run([1, 1, 0, 0], [0.8, 0.4, 0.6, NAN], [0] * 4, cfg(normalize="decoupled"), norm_by_std=False)
    close(adv.outcome, [0.5, 0.5, -0.5, -0.5])
    close(adv.thinking, [0.5 * 0.2, -0.5 * 0.2, 0.0, 0.0])


def test_decoupled_variance_trust_weights_each_response():
    # K = 2 judge samples: r0 0.6/0.8 (mean 0.7, var 0.01), r1 0.4/0.4 (var 0), r2 0.1/0.1 (var 0)
    config = TrustConfig(normalize="decoupled", trust="variance", anneal="none", alpha=1.0, whiten_batch=False)
    adv = run([1, 0, 0], [[0.6, 0.8], [0.4, 0.4], [0.1, 0.1]], [0] * 3, config)
    # z_u of Rt 0.7, 0.4, 0.1: mean 0.4, deviations 0.3, 0, -0.3, var 0.09, std 0.3; w_i = exp(-var_i)
    z = 0.3 / (0.3 + E)
    close(adv.thinking, [math.exp(-0.01) * z, 0.0, -z])


def test_decoupled_group_trust_uses_gamma():
    # Ro 1, 1, 0, 0 ; Rt 0.4, 0.4, 0.8, 0.6: mu_c 0.4 < mu_w 0.7 -> gamma = exp(-0.3); alpha 0.3, anneal none
    config = TrustConfig(normalize="decoupled", anneal="none", alpha=0.3, whiten_batch=False)
    adv = run([1, 1, 0, 0], [0.4, 0.4, 0.8, 0.6], [0] * 4, config)
    # z_u: mean 0.55, deviations -0.15, -0.15, 0.25, 0.05, var (0.0225 * 2 + 0.0625 + 0.0025) / 3 = 0.11 / 3
    st = math.sqrt(0.11 / 3) + E
    w = math.exp(-0.3) * 0.3
    close(adv.thinking, [w * -0.15 / st, w * -0.15 / st, w * 0.25 / st, w * 0.05 / st])


# ----------------------------------------------------------------------------------------------------------- papo
def test_papo_normalises_thinking_among_correct_responses_only():
    adv = run([1, 1, 0, 0], [0.8, 0.4, 0.6, NAN], [0] * 4, cfg(normalize="papo", alpha=1.0))
    close(adv.outcome, [Z_1100, Z_1100, -Z_1100, -Z_1100])
    close(adv.thinking, [Z_RT2, -Z_RT2, 0.0, 0.0])  # wrong responses: 0


def test_papo_all_correct_all_wrong_single_correct_failed_and_equal():
    outcome = [1, 1, 1, 1] + [0, 0, 0] + [1, 0, 0] + [1, 1, 0] + [1, 1]
    thinking = [0.5, NAN, 0.9, 0.1] + [0.2, 0.9, 0.4] + [0.8, 0.1, 0.3] + [0.5, NAN, 0.4] + [0.6, 0.6]
    group = [0] * 4 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 2
    adv = run(outcome, thinking, group, cfg(normalize="papo", alpha=1.0))
    # all correct, one failed: C usable = 0.5, 0.9, 0.1: mean 0.5, deviations 0, 0.4, -0.4, var 0.32 / 2 = 0.16
    # all wrong: A = 0; single correct: A_think = 0 (|C| < 2), A = z(Ro) (plain GRPO)
    # two correct but one failed: |C usable| = 1 -> A_think = 0; equal correct scores: 0
    s3 = math.sqrt(1 / 3) + E
    z_ro_110 = [(1 / 3) / s3, (1 / 3) / s3, -(2 / 3) / s3]  # Ro 1, 1, 0: mean 2/3
    close(adv.thinking, [0, 0, 0.4 / 0.4, -0.4 / 0.4] + [0] * 3 + [0] * 3 + [0] * 3 + [0, 0], tol=1e-5)
    close(adv.advantage[4:7], [0, 0, 0])
    close(adv.advantage[7:10], [(2 / 3) / s3, -(1 / 3) / s3, -(1 / 3) / s3])
    close(adv.advantage[10:13], z_ro_110)
    assert adv.advantage[13:].tolist() == [0.0, 0.0]
    # exactly: 0.4 / (0.4 + E)
    assert float(adv.thinking[2]) == pytest.approx(0.4 / (0.4 + E), abs=1e-12)


def test_papo_does_not_whiten_by_default_but_can():
    assert not TrustConfig(normalize="papo").whiten
    assert TrustConfig(normalize="papo", whiten_batch=True).whiten
    assert not TrustConfig(normalize="decoupled", whiten_batch=False).whiten


# ----------------------------------------------------------------------------------------------- gate and joint
def test_joint_gate_correct_is_posterior_grpo():
    adv = run([1, 1, 0, 0], [0.8, 0.4, 0.6, 0.2], [0] * 4, cfg(gate="correct"))
    # R' = 1.4, 1.2, 0, 0: mean 0.65, deviations 0.75, 0.55, -0.65, -0.65, var 1.71 / 3 = 0.57
    s = math.sqrt(0.57) + E
    close(adv.rewards, [1.4, 1.2, 0.0, 0.0])
    close(adv.advantage, [0.75 / s, 0.55 / s, -0.65 / s, -0.65 / s])
    # parts: Ro deviations +-0.5, bonus 0.4, 0.2, 0, 0 (mean 0.15)
    close(adv.outcome, [0.5 / s, 0.5 / s, -0.5 / s, -0.5 / s])
    close(adv.thinking, [0.25 / s, 0.05 / s, -0.15 / s, -0.15 / s])


def test_gate_all_correct_group_keeps_an_advantage_and_gamma_comes_from_ungated_scores():
    adv = run([1, 1], [0.8, 0.4], [0, 0], cfg(gate="correct"))
    close(adv.advantage, [0.1 / (math.sqrt(0.02) + E), -0.1 / (math.sqrt(0.02) + E)])
    # group trust: mu_c 0.4 < mu_w 0.7 -> gamma exp(-0.3) although the gate zeroes the wrong responses' Rt
    config = TrustConfig(gate="correct", anneal="none", alpha=0.3, whiten_batch=False)
    result = shape_rewards([1, 1, 0, 0], [0.4, 0.4, 0.8, 0.6], [0] * 4, 0, config)
    assert float(result.gamma[0]) == pytest.approx(math.exp(-0.3))
    gated = variant_advantages(result, [1, 1, 0, 0], config)
    w = 0.3 * math.exp(-0.3)
    close(gated.rewards, [1 + 0.4 * w, 1 + 0.4 * w, 0.0, 0.0])


def test_gate_in_decoupled_mode_gives_wrong_responses_a_real_zero():
    adv = run([1, 0, 0], [0.6, NAN, 0.9], [0] * 3, cfg(normalize="decoupled", gate="correct", alpha=1.0))
    # Rt' = 0.6, 0 (gated: usable even though the judgement failed), 0: mean 0.2, deviations 0.4, -0.2, -0.2
    st = math.sqrt(0.24 / 2) + E
    close(adv.thinking, [0.4 / st, -0.2 / st, -0.2 / st])


def test_joint_without_gate_is_the_paper_and_its_parts_sum_to_it():
    config = TrustConfig(anneal_T=1500)  # the recipe's defaults
    outcome, thinking = [1, 1, 1, 0, 0, 0, 0, 0, 1], [0.6, 0.5, 0.7, 0.8, 0.9, 0.2, 0.7, 0.6, 0.5]
    group = [0] * 8 + [1]
    result = shape_rewards(outcome, thinking, group, 100, config)
    adv = variant_advantages(result, outcome, config)
    assert torch.equal(adv.rewards, result.rewards)  # bit for bit what the trust sampler always wrote
    # by hand: mu_c = 0.6 < mu_w = 3.2 / 5 = 0.64 -> gamma = exp(-0.04); w = 0.3 exp(-100/1500) exp(-0.04)
    # = 0.26964756944148266; R = Ro + w Rt = 1.16178854, 1.13482378, 1.18875330, 0.21571806, 0.24268281,
    # 0.05392951, 0.18875330, 0.16178854; mean 0.5435297309009267, unbiased std 0.5151222400378204;
    # A = (R - mean) / (std + E)
    close(
        adv.advantage[:8],
        [1.200215332390304, 1.1478691075487137, 1.2525615572318942, -0.6363752396876379, -0.5840290148460476,
         -0.9504525887371801, -0.6887214645292282, -0.7410676893708186],
        tol=1e-9,
    )  # fmt: skip
    close(adv.outcome + adv.thinking, adv.advantage.tolist(), tol=1e-12)
    # a group of one (verl: mean 0, std 1): Ro / (1 + E) and w Rt / (1 + E); alpha_t = 0.3 exp(-100/1500), gamma 1
    a_t = 0.3 * math.exp(-100 / 1500)
    close([adv.outcome[8], adv.thinking[8]], [1 / (1 + E), a_t * 0.5 / (1 + E)])
    close([adv.advantage[8]], [(1 + a_t * 0.5) / (1 + E)])


def test_joint_can_be_whitened():
    config = cfg(whiten_batch=True)
    assert config.routes_advantages and not cfg().routes_advantages
    adv = run([1, 0, 1, 0], [0.4, 0.4, 0.4, 0.4], [0, 0, 1, 1], config)
    # R = 1.2, 0.2 in both groups -> +-0.5 / (sqrt(0.5) + E) each; whitened: same values over their std
    a = 0.5 / (S_TWO_1 + E)
    std = math.sqrt(4 * a * a / 3)
    close(adv.advantage, [a / (std + E), -a / (std + E), a / (std + E), -a / (std + E)])


# ----------------------------------------------------------------------------------------------- helpers, metrics
def test_subset_z_and_whiten_edge_cases():
    values = torch.tensor([0.1, 0.3, 0.7, 0.7], dtype=torch.float64)
    group = torch.tensor([0, 0, 1, 1])
    member = torch.tensor([True, False, True, True])
    # group 0 has one member -> 0; group 1 equal values -> 0
    assert subset_z(values, member, group, 2).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert whiten(torch.tensor([0.3], dtype=torch.float64)).tolist() == [0.0]
    assert whiten(torch.tensor([0.7, 0.7, 0.7], dtype=torch.float64)).tolist() == [0.0, 0.0, 0.0]


def test_advantage_metrics():
    adv = run([1, 1, 0, 0] + [0, 0], [0.8, 0.4, 0.6, NAN] + [0.3, 0.3], [0] * 4 + [1] * 2, cfg(normalize="papo"))
    metrics = advantage_metrics(adv)
    # |A_out|: four Z_1100 and two 0; |A_think|: 0.5 * Z_RT2 twice; zero advantage: the all-wrong group, 2 of 6
    assert metrics["trust/adv_outcome_abs_mean"] == pytest.approx(4 * Z_1100 / 6)
    assert metrics["trust/adv_thinking_abs_mean"] == pytest.approx(2 * 0.5 * Z_RT2 / 6)
    assert metrics["trust/zero_adv_share"] == pytest.approx(2 / 6)


# ------------------------------------------------------------------------------------------------------- config
def test_config_keys_and_refusals():
    assert TrustConfig.from_config({"normalize": "papo", "gate": "correct", "whiten_batch": None}).normalize == "papo"
    assert TrustConfig.from_config({"whiten_batch": True}).whiten
    with pytest.raises(ValueError, match=r"normalize must be one of"):
        TrustConfig(normalize="gdpo")
    with pytest.raises(ValueError, match=r"gate must be one of"):
        TrustConfig.from_config({"gate": "soft"})
    with pytest.raises(ValueError, match=r"whiten_batch must be true, false or null"):
        TrustConfig.from_config({"whiten_batch": "yes"})
    for bad in ({"normalize": "decoupled"}, {"gate": "correct"}, {"whiten_batch": True}):
        with pytest.raises(ValueError, match=r"semantics=official reproduces the released code"):
            TrustConfig.from_config({"semantics": "official", **bad})
    assert TrustConfig.from_config({"semantics": "official", "whiten_batch": False}).official
