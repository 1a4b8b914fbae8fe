"""Trust-GRPO math (sophiavl.rewards.trust) on hand-computed groups, both semantics, every anneal mode.

Expected values are written from the definitions, with the arithmetic spelled out in comments; nothing here is
produced by the code under test.
"""

import math

import pytest
import torch

from sophiavl.rewards.trust.config import TrustConfig
from sophiavl.rewards.trust.weights import anneal_factor, group_advantages, shape_rewards

NAN = float("nan")
EPS = 1e-6

PAPER_NONE = TrustConfig(semantics="paper", anneal="none")  # alpha_t = 0.3 at every step
OFFICIAL_NONE = TrustConfig(semantics="official", anneal="none")


def close(actual, expected, tol=1e-9):
    actual = [float(x) for x in actual]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        if math.isnan(e):
            assert math.isnan(a)
        else:
            assert a == pytest.approx(e, abs=tol), (actual, expected)


# ----------------------------------------------------------------------------------------------- anneal modes
@pytest.mark.parametrize(
    ("anneal", "step", "T", "expected"),
    [
        ("exp", 0, 1500, 1.0),
        ("exp", 100, 1500, 0.9355069850316178),  # exp(-100/1500) = exp(-0.0666...)
        ("exp", 1500, 1500, 0.36787944117144233),  # exp(-1)
        ("exp", 1200, 12000, 0.9048374180359595),  # exp(-0.1)
        ("linear", 300, 1500, 0.8),  # 1 - 300/1500
        ("linear", 1500, 1500, 0.0),
        ("linear", 2000, 1500, 0.0),  # clamped at 0
        ("none", 123456, 1500, 1.0),
    ],
)
def test_anneal_factor(anneal, step, T, expected):
    assert anneal_factor(step, TrustConfig(anneal=anneal, anneal_T=T)) == pytest.approx(expected, abs=1e-15)


def test_anneal_rejects_negative_step():
    with pytest.raises(ValueError, match="step"):
        anneal_factor(-1, TrustConfig())


# ------------------------------------------------------------------------------------------ the issue's group
ISSUE_RO = [1, 1, 1, 0, 0, 0, 0, 0]
ISSUE_RT = [0.6, 0.5, 0.7, 0.8, 0.9, 0.2, 0.7, 0.6]


def test_issue_group_paper_exp():
    r = shape_rewards(ISSUE_RO, ISSUE_RT, [0] * 8, 100, TrustConfig(anneal_T=1500))
    # mu_c = (0.6+0.5+0.7)/3 = 0.6 ; mu_w = (0.8+0.9+0.2+0.7+0.6)/5 = 3.2/5 = 0.64
    close(r.mu_correct, [0.6])
    close(r.mu_wrong, [0.64])
    # mu_c < mu_w -> gamma = exp(0.6 - 0.64) = exp(-0.04) = 0.9607894391523232
    close(r.gamma, [0.9607894391523232])
    # alpha_t = 0.3 * exp(-100/1500) = 0.3 * 0.9355069850316178 = 0.28065209550948534
    assert r.alpha_t == pytest.approx(0.28065209550948534, abs=1e-15)
    w = 0.9607894391523232 * 0.28065209550948534  # = 0.26964708...
    close(r.rewards, [1 + 0.6 * w, 1 + 0.5 * w, 1 + 0.7 * w, 0.8 * w, 0.9 * w, 0.2 * w, 0.7 * w, 0.6 * w])
    assert bool(r.down_weighted[0]) and not bool(r.thinking_off[0])


def test_issue_group_official():
    cfg = TrustConfig(semantics="official", anneal_T=12000)
    r = shape_rewards(ISSUE_RO, ISSUE_RT, [0] * 8, 100, cfg)
    # Ro = 0 < 0.2 -> Rt := 0 for the five wrong answers; mu_w = 0 <= mu_c = 0.6 -> gamma = 1
    close(r.mu_correct, [0.6])
    close(r.mu_wrong, [0.0])
    close(r.gamma, [1.0])
    # alpha_t = 0.3 * exp(-100/12000) = 0.3 * 0.991701292638876 = 0.2975103877916628
    a = 0.2975103877916628
    assert r.alpha_t == pytest.approx(a, abs=1e-12)
    close(r.rewards, [1 + 0.6 * a, 1 + 0.5 * a, 1 + 0.7 * a, 0, 0, 0, 0, 0])
    assert not bool(r.down_weighted[0])


# ---------------------------------------------------------------------------------------------- all correct
def test_all_correct_paper():
    r = shape_rewards([1, 1, 1, 1], [0.2, 0.4, 0.6, 0.8], [7] * 4, 0, PAPER_NONE)
    # no wrong response: mu_w undefined -> gamma = 1 ; R = 1 + 0.3 * Rt
    close(r.mu_correct, [0.5])
    close(r.mu_wrong, [NAN])
    close(r.gamma, [1.0])
    close(r.rewards, [1.06, 1.12, 1.18, 1.24])
    # mean 1.15 ; deviations -0.09 -0.03 0.03 0.09 ; sum of squares 0.018 ; unbiased var 0.006
    std = math.sqrt(0.006)  # 0.07745966692414834
    adv = group_advantages(r.rewards, [7] * 4)
    close(adv, [-0.09 / (std + EPS), -0.03 / (std + EPS), 0.03 / (std + EPS), 0.09 / (std + EPS)], tol=1e-7)


def test_all_correct_official_is_degenerate():
    r = shape_rewards([1, 1, 0.95, 1], [0.2, 0.4, 0.6, 0.8], [0] * 4, 0, OFFICIAL_NONE)
    # all Ro >= 0.9 -> no thinking reward: R = Ro
    close(r.rewards, [1, 1, 0.95, 1])
    assert bool(r.thinking_off[0]) and not bool(r.down_weighted[0])


def test_all_wrong_official_is_degenerate():
    r = shape_rewards([0, 0.1, 0.05], [0.9, 0.9, 0.9], [0] * 3, 0, OFFICIAL_NONE)
    close(r.rewards, [0, 0.1, 0.05])  # all Ro <= 0.1
    assert bool(r.thinking_off[0])


# ---------------------------------------------------------------------------------------------- none correct
def test_none_correct_paper_linear():
    cfg = TrustConfig(anneal="linear", anneal_T=1500)
    r = shape_rewards([0, 0.3, 0.4], [0.9, 0.5, 0.1], [0] * 3, 750, cfg)
    # alpha_t = 0.3 * (1 - 750/1500) = 0.15 ; no correct side -> gamma = 1 ; mu_w = 1.5/3 = 0.5
    assert r.alpha_t == pytest.approx(0.15)
    close(r.mu_correct, [NAN])
    close(r.mu_wrong, [0.5])
    close(r.gamma, [1.0])
    close(r.rewards, [0.135, 0.3 + 0.075, 0.4 + 0.015])  # 0 + .15*.9 ; .3 + .15*.5 ; .4 + .15*.1


def test_none_correct_official_linear():
    cfg = TrustConfig(semantics="official", anneal="linear", anneal_T=1500)
    r = shape_rewards([0, 0.3, 0.4], [0.9, 0.5, 0.1], [0] * 3, 750, cfg)
    # Ro = 0 < 0.2 -> Rt := 0 ; mu_w = (0 + 0.5 + 0.1)/3 = 0.2 ; no correct -> gamma = 1 ; not degenerate
    close(r.mu_wrong, [0.2])
    close(r.gamma, [1.0])
    close(r.rewards, [0.0, 0.375, 0.415])


# ---------------------------------------------------------------------------------------------- one response
def test_one_response_paper():
    r = shape_rewards([1], [0.5], [0], 0, TrustConfig())
    # exp(-0/1500) = 1 -> alpha_t = 0.3 ; R = 1 + 0.3*0.5 = 1.15 ; group of one: mean 0, std 1
    close(r.rewards, [1.15])
    close(group_advantages(r.rewards, [0]), [1.15 / (1 + EPS)])
    close(group_advantages(r.rewards, [0], norm_by_std=False), [1.15])


def test_one_response_official():
    r = shape_rewards([1], [0.5], [0], 0, TrustConfig(semantics="official", anneal_T=12000))
    close(r.rewards, [1.0])  # a single Ro = 1 >= 0.9 is a degenerate group
    close(group_advantages(r.rewards, [0]), [1 / (1 + EPS)])


# ---------------------------------------------------------------------------------------------- zero std
def test_equal_rewards_give_zero_advantage():
    r = shape_rewards([1, 1], [0.5, 0.5], [0, 0], 0, PAPER_NONE)
    close(r.rewards, [1.15, 1.15])
    adv = group_advantages(r.rewards, [0, 0])
    assert torch.all(adv.abs() < 1e-6)
    assert torch.all(group_advantages(r.rewards, [0, 0], norm_by_std=False).abs() < 1e-12)


# ------------------------------------------------------------------------------------------ missing scores
def test_missing_scores_paper():
    r = shape_rewards([1, 1, 0, 0], [NAN, 0.4, 0.9, NAN], [0] * 4, 0, PAPER_NONE)
    # missing scores left out: mu_c = 0.4, mu_w = 0.9 -> gamma = exp(-0.5) = 0.6065306597126334
    close(r.mu_correct, [0.4])
    close(r.mu_wrong, [0.9])
    close(r.gamma, [0.6065306597126334])
    w = 0.3 * 0.6065306597126334  # 0.18195919791379003
    # a missing score adds no bonus (R = Ro), it is not read as 0 in the means
    close(r.rewards, [1.0, 1 + 0.4 * w, 0.9 * w, 0.0])
    close(r.thinking, [NAN, 0.4, 0.9, NAN])
    assert bool(r.down_weighted[0])


def test_missing_whole_side_paper():
    r = shape_rewards([1, 0], [NAN, 0.9], [0, 0], 0, PAPER_NONE)
    close(r.mu_correct, [NAN])
    close(r.gamma, [1.0])  # no usable correct score -> no down-weighting
    close(r.rewards, [1.0, 0.27])  # 0 + 0.3*0.9


def test_all_missing_gives_no_thinking_reward():
    r = shape_rewards([1, 0, 0.5], [NAN, NAN, NAN], [0] * 3, 0, PAPER_NONE)
    close(r.rewards, [1.0, 0.0, 0.5])
    assert bool(r.thinking_off[0])


def test_missing_scores_official():
    r = shape_rewards([1, 0.1, 0.6], [NAN, NAN, 0.3], [0] * 3, 0, OFFICIAL_NONE)
    # Ro = 0.1 < 0.2 -> Rt := 0 (never asked, a real 0 in mu_w); Ro = 1 failed -> missing
    close(r.thinking, [NAN, 0.0, 0.3])
    close(r.mu_correct, [0.3])
    close(r.mu_wrong, [0.0])
    close(r.gamma, [1.0])
    close(r.rewards, [1.0, 0.1, 0.6 + 0.3 * 0.3])


def test_official_down_weighting_with_partial_scores():
    cfg = TrustConfig(semantics="official", anneal="exp", anneal_T=12000)
    r = shape_rewards([1, 0.3, 0.3], [0.2, 0.8, 0.6], [0] * 3, 1200, cfg)
    # alpha_t = 0.3 * exp(-1200/12000) = 0.3 * 0.9048374180359595 = 0.27145122541078786
    # mu_c = 0.2, mu_w = 0.7 -> gamma = exp(-0.5) = 0.6065306597126334
    close(r.gamma, [0.6065306597126334])
    w = 0.6065306597126334 * 0.27145122541078786
    close(r.rewards, [1 + 0.2 * w, 0.3 + 0.8 * w, 0.3 + 0.6 * w])
    assert bool(r.down_weighted[0])


def test_thresholds_are_config_keys():
    cfg = TrustConfig(anneal="none", correct_threshold=0.7)
    r = shape_rewards([0.6, 1.0], [0.9, 0.1], [0, 0], 0, cfg)
    # with threshold 0.7, Ro = 0.6 is wrong: mu_c = 0.1 < mu_w = 0.9 -> gamma = exp(-0.8) = 0.44932896411722156
    close(r.gamma, [0.44932896411722156])


# --------------------------------------------------------------------------------------- mixed group sizes
def test_mixed_group_sizes_in_one_batch():
    # at step 100 (exp, T = 1500): alpha_t = 0.3 * exp(-100/1500) = 0.28065209550948534
    a = 0.28065209550948534
    w30 = 0.9607894391523232 * a  # the issue's group: gamma = exp(-0.04)
    w20 = 0.6065306597126334 * a  # the missing-score group: gamma = exp(-0.5)
    groups = {  # label: (Ro, Rt, expected R)
        30: (
            ISSUE_RO,
            ISSUE_RT,
            [1 + 0.6 * w30, 1 + 0.5 * w30, 1 + 0.7 * w30, 0.8 * w30, 0.9 * w30, 0.2 * w30, 0.7 * w30, 0.6 * w30],
        ),
        10: ([1], [0.5], [1 + 0.5 * a]),
        20: ([1, 1, 0, 0], [NAN, 0.4, 0.9, NAN], [1.0, 1 + 0.4 * w20, 0.9 * w20, 0.0]),
        40: ([1, 1], [0.5, 0.5], [1 + 0.5 * a, 1 + 0.5 * a]),
    }
    rows = [(label, i) for label, (ro, _, _) in groups.items() for i in range(len(ro))]  # 8 + 1 + 4 + 2 = 15
    order = [3, 14, 0, 9, 1, 13, 8, 2, 10, 4, 5, 11, 6, 12, 7]  # a fixed shuffle
    rows = [rows[i] for i in order]
    labels = [label for label, _ in rows]
    ro = [groups[label][0][i] for label, i in rows]
    rt = [groups[label][1][i] for label, i in rows]
    expected = [groups[label][2][i] for label, i in rows]
    r = shape_rewards(ro, rt, torch.tensor(labels), 100, TrustConfig(anneal_T=1500))
    close(r.rewards, expected)
    # per-group stats come in sorted label order: 10, 20, 30, 40
    close(r.gamma, [1.0, 0.6065306597126334, 0.9607894391523232, 1.0])
    adv = group_advantages(r.rewards, labels)
    for k, (label, _) in enumerate(rows):
        if label == 10:  # group of one: R / (1 + eps)
            assert float(adv[k]) == pytest.approx((1 + 0.5 * a) / (1 + EPS))
        if label == 40:  # equal rewards: 0
            assert abs(float(adv[k])) < 1e-6
    # group 20: R = [1, 1 + 0.4*w20, 0.9*w20, 0] -> check against the textbook formula on the group alone
    g20 = [k for k, (label, _) in enumerate(rows) if label == 20]
    vals = [expected[k] for k in g20]
    mean = sum(vals) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / 3)
    close([adv[k] for k in g20], [(v - mean) / (std + EPS) for v in vals], tol=1e-9)


def test_string_labels_and_shape_errors():
    r = shape_rewards([1, 0], [0.5, 0.5], ["b", "a"], 0, PAPER_NONE)
    close(r.group, [1, 0])
    with pytest.raises(ValueError, match="same length"):
        shape_rewards([1, 0], [0.5], [0, 0], 0, PAPER_NONE)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        shape_rewards([1.5], [0.5], [0], 0, PAPER_NONE)
    with pytest.raises(ValueError, match="thinking"):
        shape_rewards([1], [2.0], [0], 0, PAPER_NONE)


def test_group_advantages_match_verl_grpo():
    import numpy as np
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    gen = torch.Generator().manual_seed(0)
    sizes = [1, 2, 3, 8, 5]
    labels = np.array([f"u{g}" for g, n in enumerate(sizes) for _ in range(n)], dtype=object)
    scores = torch.rand(len(labels), generator=gen)
    tlr = torch.zeros(len(labels), 4)
    tlr[:, -1] = scores
    mask = torch.ones(len(labels), 4)
    for norm in (True, False):
        ref, _ = compute_grpo_outcome_advantage(tlr, mask, labels, norm_adv_by_std_in_grpo=norm)
        ours = group_advantages(scores, labels, norm_by_std=norm)
        assert torch.allclose(ours.float(), ref[:, 0], atol=1e-5)
