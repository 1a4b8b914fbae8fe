"""Trust-GRPO math: the trust-shaped reward of every response and the group-normalised advantage.

One pure, vectorised module (torch, no Python loop over responses) shared by the trust sampler, the
``trust_grpo`` advantage estimator, the benchmark, the tests and the ``python -m sophiavl.rewards.trust`` command.

Definitions (``cfg`` is a :class:`~sophiavl.rewards.trust_config.TrustConfig`):

* A response is *correct* when ``Ro >= cfg.correct_threshold``; the others are *wrong*.
* A thinking score ``Rt`` is *missing* when it is NaN (the reward-model call failed). A missing score is left out
  of the group means and adds no bonus; it is never read as 0.
* Under ``official`` semantics a response with ``Ro < cfg.skip_rm_below`` has ``Rt = 0`` (the reward model was not
  asked); those zeros are real scores and count in ``mu_wrong``.
* ``mu_correct`` / ``mu_wrong``: mean usable ``Rt`` over the correct / wrong responses of a group, NaN when a side
  has no usable score (including an empty side).
* ``gamma = exp(mu_correct - mu_wrong)`` when both means exist and ``mu_correct < mu_wrong``, else 1.
* ``alpha_t = cfg.alpha * anneal(step)``.
* ``R = Ro + gamma * alpha_t * Rt`` (``R = Ro`` for a missing ``Rt``). Under ``official`` a group whose outcomes are
  all ``>= cfg.degenerate_high`` or all ``<= cfg.degenerate_low`` gets no thinking reward: ``R = Ro``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sophiavl.rewards.trust_config import TrustConfig

#: Added to the group std before dividing, as verl's GRPO does.
ADV_EPS = 1e-6


@dataclass(frozen=True)
class TrustResult:
    """Output of :func:`shape_rewards`. Per-response tensors have shape ``(n,)``, per-group ones ``(G,)``.

    Attributes:
        rewards: shaped reward ``R`` per response (float64).
        group: dense group id per response, in ``[0, G)``; group ``g`` is the ``g``-th smallest input label.
        correct: ``Ro >= correct_threshold`` per response.
        thinking: the thinking score the math used per response (float64): 0 where ``official`` skips the
            reward model, NaN where missing.
        mu_correct: mean usable ``Rt`` of the correct responses per group, NaN when there is none.
        mu_wrong: mean usable ``Rt`` of the wrong responses per group, NaN when there is none.
        gamma: trust weight per group, in ``(exp(-1), 1]``.
        alpha_t: annealed thinking weight for this step (a float, the same for every group).
        down_weighted: per group, True when ``gamma < 1`` and the group received a thinking reward.
        thinking_off: per group, True when no response of the group received a thinking bonus (``official``
            degenerate group, every score missing, or ``alpha_t == 0``).
    """

    rewards: torch.Tensor
    group: torch.Tensor
    correct: torch.Tensor
    thinking: torch.Tensor
    mu_correct: torch.Tensor
    mu_wrong: torch.Tensor
    gamma: torch.Tensor
    alpha_t: float
    down_weighted: torch.Tensor
    thinking_off: torch.Tensor


def anneal_factor(step: float, cfg: TrustConfig) -> float:
    """Annealing factor of the thinking reward at ``step`` (global training step, >= 0; verl starts at 1).

    ``exp``: ``exp(-step / anneal_T)`` in ``(0, 1]``; ``linear``: ``max(0, 1 - step / anneal_T)``; ``none``: 1.
    A negative step raises ``ValueError``.
    """
    if step < 0:
        raise ValueError(f"the training step must be >= 0, got {step}")
    if cfg.anneal == "none":
        return 1.0
    if cfg.anneal == "exp":
        return math.exp(-step / cfg.anneal_T)
    return max(0.0, 1.0 - step / cfg.anneal_T)


def dense_group_ids(labels) -> tuple[torch.Tensor, int]:
    """Maps arbitrary group labels to dense ids ``0..G-1`` (sorted label order) and returns ``(ids, G)``.

    ``labels``: a 1-D integer tensor, or any 1-D sequence / numpy array of hashable, mutually comparable values
    (verl passes the uid strings as a numpy object array).
    """
    if isinstance(labels, torch.Tensor):
        if labels.dim() != 1:
            raise ValueError(f"group labels must be 1-D, got shape {tuple(labels.shape)}")
        uniques, inverse = torch.unique(labels, return_inverse=True)
        return inverse.to(torch.int64), int(uniques.numel())
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"group labels must be 1-D, got shape {array.shape}")
    uniques, inverse = np.unique(array, return_inverse=True)
    return torch.from_numpy(inverse.astype(np.int64).reshape(-1)), len(uniques)


def _group_sum(values: torch.Tensor, group: torch.Tensor, num_groups: int) -> torch.Tensor:
    return torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add_(0, group, values)


def _check_inputs(outcome: torch.Tensor, thinking: torch.Tensor, group: torch.Tensor) -> None:
    if outcome.dim() != 1 or outcome.shape != thinking.shape or outcome.shape != group.shape:
        raise ValueError(
            "outcome, thinking and group must be 1-D of the same length, got "
            f"{tuple(outcome.shape)}, {tuple(thinking.shape)}, {tuple(group.shape)}"
        )
    if not torch.isfinite(outcome).all():
        raise ValueError("every outcome score must be a finite number")
    if ((outcome < 0) | (outcome > 1)).any():
        raise ValueError("outcome scores must lie in [0, 1]")
    usable = ~torch.isnan(thinking)
    if (usable & ((thinking < 0) | (thinking > 1))).any():
        raise ValueError("thinking scores must lie in [0, 1] (NaN marks a missing score)")


def shape_rewards(outcome, thinking, group, step: float, cfg: TrustConfig) -> TrustResult:
    """Applies Trust-GRPO to a batch of groups.

    Args:
        outcome: ``Ro`` per response, floats in [0, 1] (tensor or sequence), shape ``(n,)``.
        thinking: ``Rt`` per response, floats in [0, 1], NaN where the reward-model call failed, shape ``(n,)``.
        group: group label per response (see :func:`dense_group_ids`); groups may differ in size, a group of
            one response is allowed.
        step: global training step (>= 0) for the annealing.
        cfg: the trust configuration.

    Returns:
        A :class:`TrustResult`. Raises ``ValueError`` on shape mismatch or scores outside [0, 1].
    """
    ro = torch.as_tensor(outcome, dtype=torch.float64).reshape(-1)
    rt = torch.as_tensor(thinking, dtype=torch.float64).reshape(-1)
    gid, num_groups = dense_group_ids(group if isinstance(group, torch.Tensor) else np.asarray(group))
    gid = gid.to(ro.device)
    _check_inputs(ro, rt, gid)

    correct = ro >= cfg.correct_threshold
    if cfg.official:
        # the released code never asks the judge below skip_rm_below and scores those responses 0
        rt = torch.where(ro < cfg.skip_rm_below, torch.zeros_like(rt), rt)
    usable = ~torch.isnan(rt)
    rt_or_zero = torch.where(usable, rt, torch.zeros_like(rt))

    use_c = (correct & usable).to(ro.dtype)
    use_w = (~correct & usable).to(ro.dtype)
    n_c = _group_sum(use_c, gid, num_groups)
    n_w = _group_sum(use_w, gid, num_groups)
    mu_c = _group_sum(rt_or_zero * use_c, gid, num_groups) / n_c  # 0/0 -> NaN: no usable correct score
    mu_w = _group_sum(rt_or_zero * use_w, gid, num_groups) / n_w

    both = (n_c > 0) & (n_w > 0)
    untrusted = both & (mu_c < mu_w)
    gamma = torch.where(untrusted, torch.exp(torch.where(untrusted, mu_c - mu_w, torch.zeros_like(mu_c))), 1.0)

    alpha_t = cfg.alpha * anneal_factor(step, cfg)
    weight = gamma * alpha_t
    bonus_on = _group_sum(usable.to(ro.dtype), gid, num_groups) > 0
    if cfg.official:
        inf = torch.full((num_groups,), math.inf, dtype=ro.dtype, device=ro.device)
        lowest = inf.scatter_reduce(0, gid, ro, reduce="amin", include_self=True)
        highest = (-inf).scatter_reduce(0, gid, ro, reduce="amax", include_self=True)
        degenerate = (lowest >= cfg.degenerate_high) | (highest <= cfg.degenerate_low)
        weight = torch.where(degenerate, torch.zeros_like(weight), weight)
        bonus_on = bonus_on & ~degenerate
    bonus_on = bonus_on & (alpha_t > 0)

    rewards = ro + weight[gid] * rt_or_zero
    return TrustResult(
        rewards=rewards,
        group=gid,
        correct=correct,
        thinking=rt,
        mu_correct=mu_c,
        mu_wrong=mu_w,
        gamma=gamma,
        alpha_t=alpha_t,
        down_weighted=untrusted & bonus_on,
        thinking_off=~bonus_on,
    )


def group_advantages(rewards, group, norm_by_std: bool = True, eps: float = ADV_EPS) -> torch.Tensor:
    """GRPO advantage of every response: ``(R - mean_g) / (std_g + eps)``, or ``R - mean_g`` without std norm.

    ``std_g`` is the unbiased (n - 1) standard deviation of the group, as ``torch.std`` in verl's ``grpo``. A group
    of one response uses mean 0 and std 1 (its advantage is ``R / (1 + eps)``), as verl does. Equal rewards give
    a zero std and an advantage of (numerically) 0. Works in float64 on shape ``(n,)`` and returns float64.

    Args:
        rewards: scalar reward per response, shape ``(n,)``.
        group: group label per response (see :func:`dense_group_ids`), or dense int64 ids.
        norm_by_std: divide by ``std + eps`` (verl's ``algorithm.norm_adv_by_std_in_grpo``).
        eps: added to the std.
    """
    r = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
    gid, num_groups = dense_group_ids(group if isinstance(group, torch.Tensor) else np.asarray(group))
    gid = gid.to(r.device)
    ones = torch.ones_like(r)
    count = _group_sum(ones, gid, num_groups)
    mean = _group_sum(r, gid, num_groups) / count
    centred = r - mean[gid]
    var = _group_sum(centred * centred, gid, num_groups) / (count - 1).clamp_min(1)
    single = count == 1
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(var), var.sqrt())
    adv = r - mean[gid]
    if norm_by_std:
        adv = adv / (std[gid] + eps)
    return adv


if __name__ == "__main__":  # python -m sophiavl.rewards.trust: explain one group
    from sophiavl.rewards.trust_cli import main

    raise SystemExit(main())
