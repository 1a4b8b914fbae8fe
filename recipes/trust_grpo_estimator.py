"""The ``trust_grpo`` advantage estimator, registered with verl's ``register_adv_est`` on import.

verl hands an estimator only ``token_level_rewards``, ``response_mask``, ``index`` (the prompt uid of every
response) and ``config`` (the ``algorithm`` node). The trust shaping therefore happens earlier, in the trust sampler
(:mod:`sophiavl.recipes.trust_sampler`), which writes the shaped reward back as ``rm_scores`` and records the uids it
shaped in :data:`SHAPED_UIDS`. In verl 0.9.1's V1 trainer the replay buffer and the advantage computation both run
inside the trainer object, in one process (the TaskRunner actor), so this in-process record is visible here. A uid
missing from it means its group was never shaped (for example ``algorithm.adv_estimator=trust_grpo`` without the
sampler key): the estimator raises instead of training on unshaped rewards.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from sophiavl.recipes.trust_advantage_routing import routed_advantages
from sophiavl.rewards.trust import group_advantages
from sophiavl.rewards.trust_config import ESTIMATOR_NAME, SAMPLER_KEY, SAMPLER_NAME, SAMPLER_PATH, select


class ShapedUids:
    """Thread-safe record of the uids shaped by the last few ``sample()`` calls (bounded memory).

    ``capacity`` batches are kept: verl computes the advantages of a sampled batch before it samples the next
    one, so a handful is plenty even with ``parameter_sync_step > 1``.
    """

    def __init__(self, capacity: int = 8) -> None:
        self._batches: deque[frozenset[str]] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, uids: Iterable[str]) -> None:
        """Records one shaped batch."""
        batch = frozenset(str(u) for u in uids)
        with self._lock:
            self._batches.append(batch)

    def missing(self, uids: Iterable[str]) -> set[str]:
        """The uids among ``uids`` that no recorded batch contains."""
        left = {str(u) for u in uids}
        with self._lock:
            for batch in self._batches:
                left -= batch
                if not left:
                    break
        return left

    def clear(self) -> None:
        """Forgets everything (tests)."""
        with self._lock:
            self._batches.clear()


#: The uids the trust sampler shaped recently, in this process.
SHAPED_UIDS = ShapedUids()


@register_adv_est(ESTIMATOR_NAME)
def compute_trust_grpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config=None,
    epsilon: float = 1e-6,
    **_unused,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-normalised advantage of trust-shaped rewards (verl's ``grpo``, vectorised).

    Args:
        token_level_rewards: ``(bs, T)`` rewards; a response's scalar reward is its row sum (the shaped ``R`` that
            the trust sampler wrote at the last response token, minus any KL penalty verl applied).
        response_mask: ``(bs, T)`` 1 on response tokens.
        index: ``(bs,)`` prompt uid per response (verl's ``uid``); one group per uid, any group sizes. A row whose
            ``uid`` is a row key routed by the trust sampler (modes other than the paper's joint one, see
            :mod:`sophiavl.recipes.trust_advantage_routing`) gets the advantage the sampler computed for it.
        config: verl's ``algorithm`` config; ``norm_adv_by_std_in_grpo`` (default true) selects
            ``(R - mean) / (std + epsilon)`` (unbiased std) or ``R - mean``. A group of one gets mean 0, std 1.
        epsilon: added to the std.

    Returns:
        ``(advantages, returns)``, the same ``(bs, T)`` tensor twice, zero outside the response mask.

    Raises:
        RuntimeError: ``index`` is missing, or some uid was not shaped by the trust sampler in this process.
    """
    if index is None:
        raise RuntimeError(f"the {ESTIMATOR_NAME} estimator needs the prompt uid of every response (verl's `uid`)")
    routed = routed_advantages(token_level_rewards, response_mask, index)
    if routed is not None:  # normalize decoupled/papo or whiten_batch: the sampler's advantages, row by row
        found, out = routed
        if not found.all():  # rows the sampler did not route (verl's pad rows) take the joint path
            rest = torch.from_numpy(~found)
            out[rest], _ = compute_trust_grpo_advantage(
                token_level_rewards[rest], response_mask[rest], np.asarray(index)[~found], config, epsilon
            )
        return out, out
    unique, inverse = np.unique(np.asarray(index), return_inverse=True)
    missing = SHAPED_UIDS.missing(unique.tolist())
    if missing:
        raise RuntimeError(
            f"algorithm.adv_estimator={ESTIMATOR_NAME} received {len(missing)} of {len(unique)} groups that the trust "
            f"sampler did not shape (e.g. uid {sorted(missing)[0]!r}). The trust sampler is missing: set "
            f"{SAMPLER_KEY}.path={SAMPLER_PATH} and {SAMPLER_KEY}.name={SAMPLER_NAME} (the recipe `sophiavl` "
            "sets both), or use another estimator"
        )
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        group = torch.from_numpy(inverse.astype(np.int64).reshape(-1))
        norm_by_std = bool(select(config, "norm_adv_by_std_in_grpo", True))
        adv = group_advantages(scores, group, norm_by_std=norm_by_std, eps=epsilon)
        # one cast of the mask into a new tensor (copy=True: a float mask must not be overwritten), then an in-place
        # multiply: about 1.5x faster on CPU than the mixed-dtype product `adv[:, None] * response_mask`
        out = response_mask.to(token_level_rewards.dtype, copy=True)
        out.mul_(adv.to(token_level_rewards.dtype).unsqueeze(-1))
    return out, out
