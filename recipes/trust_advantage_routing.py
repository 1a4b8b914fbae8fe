"""How per-response advantages computed by the trust sampler reach the ``trust_grpo`` estimator, row by row.

Why this exists. The paper's joint mode needs nothing but the shaped reward ``R``: the sampler writes it into
``rm_scores`` and the estimator group-normalises the row sums. The other modes (``normalize: decoupled | papo``,
``whiten_batch``; :mod:`sophiavl.rewards.trust.variants`) need ``Ro``, ``Rt'``, the weight and the usable flag
*separately* at normalisation time, and whitening needs the whole step. What verl 0.9.1's V1 trainer hands a
registered estimator (``PPOTrainer._compute_advantage`` -> ``compute_advantage_for_multi_trajectories`` -> for any
estimator but ``grpo`` ``compute_advantage`` on *all* rows) is only ``token_level_rewards`` (``rm_scores`` padded,
minus the KL penalty with ``use_kl_in_reward``), ``response_mask``, ``index`` (the TransferQueue field ``uid`` of
each row) and ``config``, in the row order of the trainer's batch *after* ``_balance_batch`` appended pad rows and
reordered everything for sequence balancing. So the estimator cannot know which response a row is: the order is
not the sampler's, and two responses of a group can have equal lengths and equal rewards but different advantages
(a failed judgement and a real score of 0 both give ``R = Ro``).

Choice. The sampler computes each response's final advantage itself (it has complete groups, the global step and
the whole step's batch, so whitening is exact there, and the ``trust/adv_*`` metrics come from the very numbers that
train) and passes it on keyed by the one per-row identity the estimator does receive: the ``uid`` field. For every
training row it rewrites ``uid`` to the row's own TransferQueue key ``{uid}_{session}_{index}`` (the prompt uid
stays recoverable as ``key.rsplit("_", 2)[0]``) and records ``key -> advantage`` in :data:`ROUTED_ADVANTAGES`
(in-process, like the shaped-uid record: sampler and estimator both run inside the trainer object). The estimator
looks every row up; rows it does not find (verl's pad rows, joint-mode rows) take the joint path. ``rm_scores``
keeps the combined reward ``Ro + w * Rt'`` for logging (``critic/score``). In verl 0.9.1 nothing else reads the
``uid`` field of a sampled trajectory except the rollout dump (which prints it); replay-buffer bookkeeping uses
keys. Another estimator would see one group per row, so the sampler refuses to route with any estimator but
``trust_grpo``, and the wiring check refuses ``use_kl_in_reward`` (the routed advantage ignores the reward tensor).
The joint mode without whitening never routes: its path is unchanged.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from tensordict import TensorDict
from tensordict.tensorclass import NonTensorStack


class RoutedAdvantages:
    """Thread-safe ``row key -> advantage`` record of the last few routed batches (bounded memory).

    ``capacity`` batches are kept; verl computes a batch's advantages before it samples the next one.
    """

    def __init__(self, capacity: int = 8) -> None:
        self._batches: deque[dict[str, float]] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, keys: Sequence[str], advantages: Iterable[float]) -> None:
        """Records one batch: ``keys[i]`` trains with ``advantages[i]``."""
        batch = dict(zip((str(k) for k in keys), (float(a) for a in advantages), strict=True))
        with self._lock:
            self._batches.append(batch)

    def take(self, index) -> tuple[np.ndarray, np.ndarray]:
        """``(found, advantage)`` per entry of ``index`` (the estimator's uid array): a bool mask and float64 values
        (NaN where not found). The newest record wins when a key was recorded twice."""
        flat = np.asarray(index).reshape(-1)
        values = np.full(flat.shape[0], np.nan, dtype=np.float64)
        with self._lock:
            batches = list(self._batches)
        if not batches:  # the joint mode: nothing routed, no per-row work
            return np.zeros(flat.shape[0], dtype=bool), values
        for i, label in enumerate(flat.tolist()):
            label = str(label)
            for batch in reversed(batches):
                value = batch.get(label)
                if value is not None:
                    values[i] = value
                    break
        return ~np.isnan(values), values

    def clear(self) -> None:
        """Forgets everything (tests)."""
        with self._lock:
            self._batches.clear()


#: The advantages the trust sampler routed recently, in this process.
ROUTED_ADVANTAGES = RoutedAdvantages()


def routed_uid_field(keys: Sequence[str]) -> TensorDict:
    """The ``uid`` field that makes each row carry its own key (to ``kv_batch_put`` beside ``rm_scores``)."""
    return TensorDict({"uid": NonTensorStack.from_list([str(k) for k in keys])}, batch_size=len(keys))


def routed_advantages(
    token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index
) -> tuple[np.ndarray, torch.Tensor] | None:
    """The estimator's side: ``(found, out)`` with ``out`` the ``(bs, T)`` advantages of the found rows (the routed
    value on every response token, zero elsewhere and on rows not found), or ``None`` when no row was routed."""
    found, values = ROUTED_ADVANTAGES.take(index)
    if not found.any():
        return None
    adv = torch.from_numpy(np.where(found, values, 0.0)).to(token_level_rewards.dtype)
    out = response_mask.to(token_level_rewards.dtype, copy=True)
    out.mul_(adv.unsqueeze(-1))
    return found, out
