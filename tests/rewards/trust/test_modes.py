"""The trust modes (``algorithm.trust_grpo.trust``: group | off | variance) on hand-computed groups.

Expected values are written from the definitions with the arithmetic in comments; nothing is read back from the code
under test.
"""

import math

import pytest
import torch

from sophiavl.rewards.trust.config import TrustConfig
from sophiavl.rewards.trust.weights import shape_rewards

NAN = float("nan")

# the group: 3 correct, 5 wrong; step 100 of T = 1500 -> alpha_t = 0.3 * exp(-100/1500)
OUTCOME = [1, 1, 1, 0, 0, 0, 0, 0]
THINKING = [0.6, 0.5, 0.7, 0.8, 0.9, 0.2, 0.7, 0.6]
ALPHA_T = 0.28065209550948534

# variance example: K = 3 judge samples per response, outcomes [1, 0, 1]
SAMPLES = [[0.6, 0.7, 0.8], [0.5, 0.5, 0.9], [NAN, 0.4, 0.4]]
# r0: mean 0.7, var = (0.01 + 0 + 0.01) / 3 = 1/150            gamma0 = exp(-1/150) = 0.9933555062550344
# r1: mean 1.9/3 = 0.6333..., var = (2 * (0.4/3)^2 + (0.8/3)^2) / 3 = 0.32/9 = 8/225
#                                                                gamma1 = exp(-8/225) = 0.9650691177896804
# r2: the NaN sample is left out: mean 0.4, var 0              gamma2 = 1
GAMMA0, GAMMA1 = 0.9933555062550344, 0.9650691177896804


def close(actual, expected, tol=1e-9):
    actual = [float(x) for x in actual]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        if math.isnan(e):
            assert math.isnan(a), (actual, expected)
        else:
            assert a == pytest.approx(e, abs=tol), (actual, expected)


def test_unknown_trust_mode_is_rejected():
    with pytest.raises(ValueError, match=r"algorithm\.trust_grpo\.trust must be one of"):
        TrustConfig(trust="sometimes")
    assert TrustConfig.from_config({"trust": "variance"}).trust == "variance"
    assert TrustConfig().trust == "group"


def test_off_gives_gamma_one_where_group_down_weights():
    group = shape_rewards(OUTCOME, THINKING, [0] * 8, 100, TrustConfig(anneal_T=1500))
    close(group.gamma, [0.9607894391523232])  # exp(0.6 - 0.64): the paper down-weights this group
    off = shape_rewards(OUTCOME, THINKING, [0] * 8, 100, TrustConfig(trust="off", anneal_T=1500))
    close(off.gamma, [1.0])
    close(off.gamma_response, [1.0] * 8)
    assert off.alpha_t == pytest.approx(ALPHA_T)
    # R = Ro + 1 * alpha_t * Rt
    close(off.rewards, [o + ALPHA_T * t for o, t in zip(OUTCOME, THINKING, strict=True)])
    assert not bool(off.down_weighted[0]) and not bool(off.thinking_off[0])
    close(off.mu_correct, [0.6])  # group means are still reported
    close(off.mu_wrong, [0.64])


def test_off_without_annealing_is_constant_alpha():
    cfg = TrustConfig(trust="off", anneal="none")
    r = shape_rewards(OUTCOME, THINKING, [0] * 8, 1234, cfg)
    assert r.alpha_t == pytest.approx(0.3)
    close(r.rewards, [o + 0.3 * t for o, t in zip(OUTCOME, THINKING, strict=True)])


def test_variance_per_response():
    cfg = TrustConfig(trust="variance", anneal="none")  # alpha_t = 0.3
    r = shape_rewards([1, 0, 1], SAMPLES, [0, 0, 0], 5, cfg)
    close(r.thinking, [0.7, 1.9 / 3, 0.4])
    close(r.variance, [1 / 150, 8 / 225, 0.0])
    close(r.gamma_response, [GAMMA0, GAMMA1, 1.0])
    # R_i = Ro_i + gamma_i * 0.3 * Rt_i
    close(r.rewards, [1 + GAMMA0 * 0.3 * 0.7, GAMMA1 * 0.3 * 1.9 / 3, 1 + 0.3 * 0.4])
    close(r.rewards, [1.2086046563135573, 0.18336313238003923, 1.12])
    close(r.gamma, [(GAMMA0 + GAMMA1 + 1.0) / 3])  # group summary: mean over responses with a usable Rt
    assert bool(r.down_weighted[0]) and not bool(r.thinking_off[0])
    assert r.judged.tolist() == [True, True, True]


def test_variance_missing_response_gets_no_bonus():
    cfg = TrustConfig(trust="variance", anneal="none")
    r = shape_rewards([1, 0], [[NAN, NAN, NAN], [0.2, 0.2, 0.2]], [7, 7], 0, cfg)
    close(r.thinking, [NAN, 0.2])
    close(r.variance, [NAN, 0.0])
    close(r.gamma_response, [1.0, 1.0])
    close(r.rewards, [1.0, 0.3 * 0.2])  # no usable sample: R = Ro, never a zero score
    close(r.gamma, [1.0])  # the only usable response has variance 0
    assert not bool(r.down_weighted[0]) and r.judged.tolist() == [False, True]


def test_variance_all_missing_group_is_off():
    r = shape_rewards([1, 0], [[NAN, NAN], [NAN, NAN]], [0, 0], 0, TrustConfig(trust="variance", anneal="none"))
    close(r.rewards, [1.0, 0.0])
    close(r.gamma, [1.0])
    assert bool(r.thinking_off[0])


def test_variance_with_single_scores_is_gamma_one():
    # one sample per response: variance 0, gamma 1, so R = Ro + alpha_t * Rt (the CLI's one-score form)
    r = shape_rewards([1, 0], [0.9, 0.3], [0, 0], 0, TrustConfig(trust="variance", anneal="none"))
    close(r.variance, [0.0, 0.0])
    close(r.rewards, [1 + 0.3 * 0.9, 0.3 * 0.3])


def test_group_mode_uses_the_sample_mean():
    # K = 2 samples: Rt = mean; correct r0: (0.2 + 0.4)/2 = 0.3; wrong r1: (0.8 + NaN) -> 0.8
    # group trust: mu_c = 0.3 < mu_w = 0.8 -> gamma = exp(-0.5) = 0.6065306597126334
    r = shape_rewards([1, 0], [[0.2, 0.4], [0.8, NAN]], [0, 0], 0, TrustConfig(anneal="none"))
    close(r.thinking, [0.3, 0.8])
    close(r.gamma, [0.6065306597126334])
    close(r.gamma_response, [0.6065306597126334] * 2)
    w = 0.6065306597126334 * 0.3
    close(r.rewards, [1 + w * 0.3, w * 0.8])
    close(r.variance, [0.01, 0.0])  # (0.1^2 + 0.1^2) / 2; one usable sample -> 0


def test_variance_official_skip_and_degenerate_rules_unchanged():
    cfg = TrustConfig(semantics="official", trust="variance", anneal="none")
    # group A (mixed): r0 Ro=1 judged [0.5, 0.9] -> Rt 0.7, var 0.04, gamma exp(-0.04) = 0.9607894391523232;
    #   r1 Ro=0 < 0.2 -> not judged: Rt = 0, var = 0 (its samples, whatever they are, are ignored)
    # group B (all Ro = 1 >= 0.9): degenerate -> no thinking reward at all
    r = shape_rewards(
        [1, 0, 1, 1],
        [[0.5, 0.9], [0.9, 0.1], [0.2, 0.6], [0.8, 0.8]],
        ["a", "a", "b", "b"],
        0,
        cfg,
    )
    close(r.thinking, [0.7, 0.0, 0.4, 0.8])
    close(r.variance, [0.04, 0.0, 0.04, 0.0])
    close(r.rewards, [1 + 0.9607894391523232 * 0.3 * 0.7, 0.0, 1.0, 1.0])
    assert r.thinking_off.tolist() == [False, True]
    assert r.down_weighted.tolist() == [True, False]
    assert r.judged.tolist() == [True, False, True, True]


@pytest.mark.parametrize("trust", ["group", "off", "variance"])
def test_official_degenerate_group_under_every_mode(trust):
    cfg = TrustConfig(semantics="official", trust=trust, anneal="none")
    r = shape_rewards([0, 0, 0.05], [0.9, 0.8, 0.7], [0, 0, 0], 0, cfg)  # all Ro <= 0.1
    close(r.rewards, [0.0, 0.0, 0.05])
    assert bool(r.thinking_off[0])


def test_sample_shape_and_range_errors():
    cfg = TrustConfig(trust="variance")
    with pytest.raises(ValueError, match="same length"):
        shape_rewards([1, 0], [[0.5, 0.5]], [0, 0], 0, cfg)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        shape_rewards([1], [[0.5, 1.5]], [0], 0, cfg)
    with pytest.raises(ValueError, match=r"\(n,\) or \(n, K\)"):
        shape_rewards([1], torch.zeros(1, 2, 2), [0], 0, cfg)
