"""Trust-GRPO math: the trust-shaped reward of every response and the group-normalised advantage.

One pure, vectorised module (torch, no Python loop over responses) shared by the trust sampler, the
``trust_grpo`` advantage estimator, the benchmark, the tests and the ``python -m sophiavl.rewards.trust`` command.

Definitions (``cfg`` is a :class:`~sophiavl.rewards.trust.config.TrustConfig`):

* A response is *correct* when ``Ro >= cfg.correct_threshold``; the others are *wrong*.
* A response has K >= 1 judge samples ``s_1..s_K`` (K = 1: one score); a sample is *missing* when it is NaN (that
  judge sample failed). ``Rt`` is the mean of the ``m`` usable samples, and *missing* when ``m = 0``. A missing
  score is left out of the group means and adds no bonus; it is never read as 0.
* Under ``official`` semantics a response with ``Ro < cfg.skip_rm_below`` has ``Rt = 0`` (the reward model was not
  asked); those zeros are real scores and count in ``mu_wrong``.
* ``mu_correct`` / ``mu_wrong``: mean usable ``Rt`` over the correct / wrong responses of a group, NaN when a side
  has no usable score (including an empty side).
* The trust weight ``gamma`` depends on ``cfg.trust``:

  - ``group`` (the paper's, per group): ``exp(mu_correct - mu_wrong)`` when both means exist and
    ``mu_correct < mu_wrong``, else 1;
  - ``off``: 1 for every group;
  - ``variance`` (per response; our reading of the paper's one-line description of its design ablation):
    ``var_i = (1/m) * sum_j (s_j - Rt_i)^2`` (population variance of the usable samples), ``gamma_i = exp(-var_i)``;
    an ``official`` skipped response (``Rt = 0``, not judged) has ``var = 0``.
* ``alpha_t = cfg.alpha * anneal(step)``.
* ``R = Ro + gamma * alpha_t * Rt`` (``R = Ro`` for a missing ``Rt``). Under ``official`` a group whose outcomes are
  all ``>= cfg.degenerate_high`` or all ``<= cfg.degenerate_low`` gets no thinking reward: ``R = Ro``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sophiavl.rewards.trust.config import TrustConfig

#: Added to the group std before dividing, as verl's GRPO does.
ADV_EPS = 1e-6


@dataclass(frozen=True)
class TrustResult:
    """Output of :func:`shape_rewards`. Per-response tensors have shape ``(n,)``, per-group ones ``(G,)``.

    Attributes:
        rewards: shaped reward ``R`` per response (float64).
        group: dense group id per response, in ``[0, G)``; group ``g`` is the ``g``-th smallest input label.
        correct: ``Ro >= correct_threshold`` per response.
        thinking: the thinking score ``Rt`` the math used per response (float64; the mean of the usable samples):
            0 where ``official`` skips the reward model, NaN where missing.
        mu_correct: mean usable ``Rt`` of the correct responses per group, NaN when there is none.
        mu_wrong: mean usable ``Rt`` of the wrong responses per group, NaN when there is none.
        gamma: trust weight per group, in ``(0, 1]``: ``group``: the group's weight (in ``(exp(-1), 1]``);
            ``off``: 1; ``variance``: the mean of ``gamma_response`` over the group's responses with a usable
            ``Rt`` (1 when there is none).
        alpha_t: annealed thinking weight for this step (a float, the same for every group).
        down_weighted: per group, True when some response of the group received a thinking bonus with a weight
            below 1 (``gamma < 1``).
        thinking_off: per group, True when no response of the group received a thinking bonus (``official``
            degenerate group, every score missing, or ``alpha_t == 0``).
        gamma_response: the trust weight each response's ``Rt`` was multiplied by (float64, ``(n,)``): the group's
            ``gamma`` under ``group``/``off``, ``exp(-variance)`` under ``variance`` (1 where ``Rt`` is missing).
        variance: population variance of each response's usable judge samples (float64, ``(n,)``); 0 with one
            usable sample or an ``official`` skipped response, NaN where ``Rt`` is missing.
        judged: per response, True when ``Rt`` came from usable judge samples (not missing, not an ``official``
            skip).
        trust: the trust mode used (``group``, ``off`` or ``variance``).
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
    gamma_response: torch.Tensor
    variance: torch.Tensor
    judged: torch.Tensor
    trust: str


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


def _check_inputs(outcome: torch.Tensor, samples: torch.Tensor, group: torch.Tensor) -> None:
    if outcome.dim() != 1 or samples.shape[0] != outcome.shape[0] or outcome.shape != group.shape:
        raise ValueError(
            "outcome, thinking and group must have the same length (outcome and group 1-D, thinking (n,) or (n, K)), "
            f"got {tuple(outcome.shape)}, {tuple(samples.shape)}, {tuple(group.shape)}"
        )
    if not torch.isfinite(outcome).all():
        raise ValueError("every outcome score must be a finite number")
    if ((outcome < 0) | (outcome > 1)).any():
        raise ValueError("outcome scores must lie in [0, 1]")
    usable = ~torch.isnan(samples)
    if (usable & ((samples < 0) | (samples > 1))).any():
        raise ValueError("thinking scores must lie in [0, 1] (NaN marks a missing score)")


def _sample_mean_and_variance(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population variance over the usable (non-NaN) entries of each row of ``(n, K)`` samples; both NaN
    for a row without a usable entry."""
    usable = ~torch.isnan(samples)
    count = usable.sum(dim=1).to(samples.dtype)
    values = torch.where(usable, samples, torch.zeros_like(samples))
    mean = values.sum(dim=1) / count  # 0/0 -> NaN
    centred = torch.where(usable, samples - mean.unsqueeze(1), torch.zeros_like(samples))
    variance = (centred * centred).sum(dim=1) / count
    return mean, variance


def shape_rewards(outcome, thinking, group, step: float, cfg: TrustConfig) -> TrustResult:
    """Applies Trust-GRPO to a batch of groups.

    Args:
        outcome: ``Ro`` per response, floats in [0, 1] (tensor or sequence), shape ``(n,)``.
        thinking: ``Rt`` per response, floats in [0, 1], NaN where the reward-model call failed, shape ``(n,)``;
            or K judge samples per response, shape ``(n, K)``, NaN for a failed sample (``Rt`` = their mean).
        group: group label per response (see :func:`dense_group_ids`); groups may differ in size, a group of
            one response is allowed.
        step: global training step (>= 0) for the annealing.
        cfg: the trust configuration (``cfg.trust`` selects the trust weight, see the module docstring).

    Returns:
        A :class:`TrustResult`. Raises ``ValueError`` on shape mismatch or scores outside [0, 1].
    """
    ro = torch.as_tensor(outcome, dtype=torch.float64).reshape(-1)
    samples = torch.as_tensor(thinking, dtype=torch.float64)
    if samples.dim() == 2 and samples.shape[1] == 1:
        samples = samples[:, 0]
    if samples.dim() not in (1, 2):
        raise ValueError(f"thinking must have shape (n,) or (n, K), got {tuple(samples.shape)}")
    gid, num_groups = dense_group_ids(group if isinstance(group, torch.Tensor) else np.asarray(group))
    gid = gid.to(ro.device)
    _check_inputs(ro, samples, gid)
    if samples.dim() == 1:
        rt = samples
        variance = torch.where(torch.isnan(rt), rt, torch.zeros_like(rt))  # one sample: 0 (NaN where missing)
    else:
        rt, variance = _sample_mean_and_variance(samples)

    correct = ro >= cfg.correct_threshold
    if cfg.official:
        # the released code never asks the judge below skip_rm_below and scores those responses 0
        skipped = ro < cfg.skip_rm_below
        rt = torch.where(skipped, torch.zeros_like(rt), rt)
        variance = torch.where(skipped, torch.zeros_like(variance), variance)
        judged = ~skipped & ~torch.isnan(rt)
    else:
        judged = ~torch.isnan(rt)
    usable = ~torch.isnan(rt)
    rt_or_zero = torch.where(usable, rt, torch.zeros_like(rt))

    use_c = (correct & usable).to(ro.dtype)
    use_w = (~correct & usable).to(ro.dtype)
    n_c = _group_sum(use_c, gid, num_groups)
    n_w = _group_sum(use_w, gid, num_groups)
    mu_c = _group_sum(rt_or_zero * use_c, gid, num_groups) / n_c  # 0/0 -> NaN: no usable correct score
    mu_w = _group_sum(rt_or_zero * use_w, gid, num_groups) / n_w
    n_usable = n_c + n_w

    ones_g = torch.ones(num_groups, dtype=ro.dtype, device=ro.device)
    if cfg.trust == "group":
        both = (n_c > 0) & (n_w > 0)
        untrusted = both & (mu_c < mu_w)
        gamma = torch.where(untrusted, torch.exp(torch.where(untrusted, mu_c - mu_w, torch.zeros_like(mu_c))), 1.0)
        gamma_response = gamma[gid]
    elif cfg.trust == "off":
        gamma = ones_g
        gamma_response = torch.ones_like(ro)
    else:  # variance: one weight per response
        gamma_response = torch.where(usable, torch.exp(-torch.where(usable, variance, rt_or_zero)), 1.0)
        summed = _group_sum(torch.where(usable, gamma_response, torch.zeros_like(ro)), gid, num_groups)
        gamma = torch.where(n_usable > 0, summed / n_usable.clamp_min(1), ones_g)

    alpha_t = cfg.alpha * anneal_factor(step, cfg)
    bonus_on = n_usable > 0
    weight_on = torch.full((num_groups,), alpha_t, dtype=ro.dtype, device=ro.device)
    if cfg.official:
        inf = torch.full((num_groups,), math.inf, dtype=ro.dtype, device=ro.device)
        lowest = inf.scatter_reduce(0, gid, ro, reduce="amin", include_self=True)
        highest = (-inf).scatter_reduce(0, gid, ro, reduce="amax", include_self=True)
        degenerate = (lowest >= cfg.degenerate_high) | (highest <= cfg.degenerate_low)
        weight_on = torch.where(degenerate, torch.zeros_like(weight_on), weight_on)
        bonus_on = bonus_on & ~degenerate
    bonus_on = bonus_on & (alpha_t > 0)

    rewards = ro + gamma_response * weight_on[gid] * rt_or_zero
    lowered = (usable & (gamma_response < 1)).to(ro.dtype)
    down_weighted = (_group_sum(lowered, gid, num_groups) > 0) & bonus_on
    return TrustResult(
        rewards=rewards,
        group=gid,
        correct=correct,
        thinking=rt,
        mu_correct=mu_c,
        mu_wrong=mu_w,
        gamma=gamma,
        alpha_t=alpha_t,
        down_weighted=down_weighted,
        thinking_off=~bonus_on,
        gamma_response=gamma_response,
        variance=variance,
        judged=judged,
        trust=cfg.trust,
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
