"""The reward combinations that followed SophiaVL-R1, as modes of one advantage (docs/beyond-the-paper.md).

Pure, vectorised math on top of :func:`sophiavl.rewards.trust.weights.shape_rewards` (which computes ``Ro``, ``Rt``,
the trust weight and the annealing exactly as in the paper). Shared by the trust sampler, the benchmark, the tests and
the ``python -m sophiavl.rewards.trust`` command. Notation per response ``i`` of a group (the responses of one prompt):

* ``w_i = gamma_i * alpha * anneal(step)``: the thinking weight of the paper (``gamma_i`` per group, or per response
  under ``trust=variance``); ``trust=off``, ``anneal=none``, ``alpha=1`` give ``w_i = 1``.
* ``Rt'_i``: ``Rt_i``, or with ``gate=correct`` (Posterior-GRPO) ``Rt_i`` for correct responses and a real 0 for
  wrong ones (their judgement, failed or not, does not matter then). ``gamma`` is computed from the ungated scores.
  A failed judgement of a response that keeps its score is *missing*: no thinking advantage, out of the statistics.
* ``z_S(x)_i = (x_i - mean_S) / (std_S + eps)`` over a set ``S`` of the group's responses, with the unbiased std and
  ``eps = 1e-6``; ``z_S = 0`` for the whole set when ``std_S <= eps`` or ``|S| < 2``, and 0 outside ``S``. Without
  std normalisation (``norm_adv_by_std_in_grpo=false``) ``z_S(x)_i = x_i - mean_S`` with the same zero rules.

Modes (``algorithm.trust_grpo.normalize``):

* ``joint`` (the paper): ``A = (R - mean R) / (std R + eps)`` with ``R = Ro + w * Rt'``, verl's GRPO convention (a
  group of one: mean 0, std 1). Its two parts are the same affine map applied to each term:
  ``A_out = (Ro - mean Ro) / (std R + eps)`` and ``A_think = (w Rt' - mean w Rt') / (std R + eps)``; they sum to ``A``.
* ``decoupled`` (GDPO): ``A_out = z_G(Ro)`` over the whole group ``G``, ``A_think = w * z_U(Rt')`` over the responses
  ``U`` with a usable ``Rt'``.
* ``papo`` (PAPO): ``A_out = z_G(Ro)``, ``A_think = w * z_C(Rt')`` over the correct responses ``C`` with a usable
  score, 0 for every other response (and for all when ``|C| < 2``). This PAPO is the process-reward normalisation of
  arXiv 2603.26535, not Perception-Aware Policy Optimization (arXiv 2507.06448: an implicit perception loss against
  a masked image), which is not implemented.

``A = A_out + A_think``; then, when ``whiten_batch`` resolves to true (the default of ``decoupled`` only), ``A`` is
whitened over all responses of the step: ``(A - mean) / (std + eps)`` (unbiased std, 0 for all when ``std <= eps``).
The reported parts are those before whitening.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sophiavl.rewards.trust.config import TrustConfig
from sophiavl.rewards.trust.weights import ADV_EPS, TrustResult, _group_sum, group_advantages

#: ``|A| <= ZERO_ADV_TOL`` counts as a zero advantage (``trust/zero_adv_share``).
ZERO_ADV_TOL = 1e-6


@dataclass(frozen=True)
class VariantAdvantages:
    """Output of :func:`variant_advantages`; every tensor is float64 of shape ``(n,)``.

    Attributes:
        rewards: the combined reward ``Ro + w * Rt'`` (what ``rm_scores`` carries, for logging; in ``joint`` mode what
            the estimator normalises).
        outcome: the outcome part ``A_out`` of the advantage (before whitening).
        thinking: the thinking part ``A_think`` (before whitening; 0 where the response has no usable ``Rt'``).
        advantage: the final advantage (``A_out + A_think``, whitened when the config says so).
    """

    rewards: torch.Tensor
    outcome: torch.Tensor
    thinking: torch.Tensor
    advantage: torch.Tensor


def gated_thinking(result: TrustResult, cfg: TrustConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Rt', usable)`` per response: the thinking score after ``cfg.gate`` (0 where not usable) and whether it counts.

    ``gate=none``: ``Rt`` and "not missing"; ``gate=correct``: wrong responses get a usable 0.
    """
    usable = ~torch.isnan(result.thinking)
    if cfg.gate == "correct":
        usable = usable | ~result.correct
        rt = torch.where(result.correct & usable, result.thinking, torch.zeros_like(result.thinking))
    else:
        rt = torch.where(usable, result.thinking, torch.zeros_like(result.thinking))
    return rt, usable


def subset_z(values, member, group, num_groups: int, norm_by_std: bool = True, eps: float = ADV_EPS) -> torch.Tensor:
    """``z_S(values)`` per group over the members ``S`` (see the module docstring); 0 for non-members.

    Args:
        values: float64 ``(n,)``; entries outside ``member`` are ignored.
        member: bool ``(n,)``.
        group: dense group ids ``(n,)`` in ``[0, num_groups)``.
        norm_by_std: divide by ``std + eps`` (else only centre).
        eps: added to the std, and the threshold below which the set counts as constant.
    """
    m = member.to(values.dtype)
    x = torch.where(member, values, torch.zeros_like(values))
    count = _group_sum(m, group, num_groups)
    mean = _group_sum(x, group, num_groups) / count.clamp_min(1)
    centred = (x - mean[group]) * m
    var = _group_sum(centred * centred, group, num_groups) / (count - 1).clamp_min(1)
    std = var.sqrt()
    live = (count >= 2) & (std > eps)
    z = centred / (std[group] + eps) if norm_by_std else centred
    return torch.where(live[group] & member, z, torch.zeros_like(z))


def whiten(advantage: torch.Tensor, eps: float = ADV_EPS) -> torch.Tensor:
    """``(A - mean) / (std + eps)`` over all entries (unbiased std); all 0 when ``std <= eps`` or fewer than 2."""
    if advantage.numel() < 2:
        return torch.zeros_like(advantage)
    std = advantage.std()
    if not bool(std > eps):
        return torch.zeros_like(advantage)
    return (advantage - advantage.mean()) / (std + eps)


def _joint_parts(ro, bonus, group, num_groups, norm_by_std, eps):
    """Parts of verl's GRPO advantage of ``R = ro + bonus`` (single response: mean 0, std 1)."""
    r = ro + bonus
    count = _group_sum(torch.ones_like(r), group, num_groups)
    single = (count == 1)[group]
    mean_o = (_group_sum(ro, group, num_groups) / count)[group]
    mean_b = (_group_sum(bonus, group, num_groups) / count)[group]
    part_o = torch.where(single, ro, ro - mean_o)
    part_b = torch.where(single, bonus, bonus - mean_b)
    if norm_by_std:
        centred = r - (mean_o + mean_b)
        var = _group_sum(centred * centred, group, num_groups) / (count - 1).clamp_min(1)
        scale = torch.where(single, torch.ones_like(r), var.sqrt()[group]) + eps
        part_o, part_b = part_o / scale, part_b / scale
    return part_o, part_b


def variant_advantages(
    result: TrustResult, outcome, cfg: TrustConfig, norm_by_std: bool = True, eps: float = ADV_EPS
) -> VariantAdvantages:
    """The advantage of every response under ``cfg.normalize`` / ``cfg.gate`` / ``cfg.whiten`` (module docstring).

    Args:
        result: :func:`~sophiavl.rewards.trust.weights.shape_rewards` of the same responses with the same ``cfg``.
        outcome: ``Ro`` per response (the tensor or sequence given to ``shape_rewards``).
        cfg: the trust configuration (``semantics=official`` comes only with the joint mode: TrustConfig refuses
            the rest).
        norm_by_std: verl's ``algorithm.norm_adv_by_std_in_grpo``.
        eps: ``1e-6`` as verl's GRPO.
    """
    ro = torch.as_tensor(outcome, dtype=torch.float64).reshape(-1)
    group, num_groups = result.group, int(result.gamma.numel())
    if cfg.normalize == "joint":
        # the paper's R itself (bit for bit); the gate puts wrong responses back to R = Ro
        rewards = result.rewards if cfg.gate == "none" else torch.where(result.correct, result.rewards, ro)
        bonus = rewards - ro  # w * Rt' (0 where missing, or in official's degenerate groups)
        part_o, part_t = _joint_parts(ro, bonus, group, num_groups, norm_by_std, eps)
        advantage = group_advantages(rewards, group, norm_by_std=norm_by_std, eps=eps)
    else:
        rt, usable = gated_thinking(result, cfg)
        weight = result.gamma_response * result.alpha_t
        rewards = ro + weight * rt
        part_o = subset_z(ro, torch.ones_like(usable), group, num_groups, norm_by_std, eps)
        members = usable if cfg.normalize == "decoupled" else usable & result.correct
        part_t = weight * subset_z(rt, members, group, num_groups, norm_by_std, eps)
        advantage = part_o + part_t
    if cfg.whiten:
        advantage = whiten(advantage, eps)
    return VariantAdvantages(rewards=rewards, outcome=part_o, thinking=part_t, advantage=advantage)


def advantage_metrics(adv: VariantAdvantages) -> dict[str, float]:
    """``trust/adv_outcome_abs_mean``, ``trust/adv_thinking_abs_mean`` (mean ``|A_out|``, ``|A_think|`` over the
    responses) and ``trust/zero_adv_share`` (share of responses with ``|A| <= ZERO_ADV_TOL``); NaN for no response."""
    if adv.advantage.numel() == 0:
        return {name: float("nan") for name in _METRICS}
    values = (
        adv.outcome.abs().mean(),
        adv.thinking.abs().mean(),
        (adv.advantage.abs() <= ZERO_ADV_TOL).to(torch.float64).mean(),
    )
    return {name: float(v) for name, v in zip(_METRICS, values, strict=True)}


_METRICS = ("trust/adv_outcome_abs_mean", "trust/adv_thinking_abs_mean", "trust/zero_adv_share")
