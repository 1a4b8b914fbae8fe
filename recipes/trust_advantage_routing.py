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
The joint mode without whitening never routes advantages: the estimator normalises the row sums itself.

Multi-output sessions in the joint mode. verl's own ``grpo`` normalises each session's *final* output only and gives
the session's other outputs its advantage (``compute_advantage_for_multi_trajectories``); a registered estimator gets
every row with its prompt uid, so it cannot tell the sessions apart. For the rows of a session with more than one
output, the sampler rewrites ``uid`` to the row key as above and records ``key -> (prompt uid, final output's key)``
in :data:`SESSION_OUTPUTS`; the estimator then normalises the final outputs per prompt uid and broadcasts each
session's advantage to its other outputs, exactly as verl's ``grpo`` (KL penalty in the reward included: the
final output's row sum is used). Single-output sessions (the paper's loop) keep their uid and their path.
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
        self._recorded = 0
        self._lock = threading.Lock()

    def add(self, keys: Sequence[str], advantages: Iterable[float]) -> None:
        """Records one batch: ``keys[i]`` trains with ``advantages[i]``."""
        batch = dict(zip((str(k) for k in keys), (float(a) for a in advantages), strict=True))
        with self._lock:
            self._batches.append(batch)
            self._recorded += 1

    def recorded(self) -> int:
        """How many batches were routed since the process started (or the last :meth:`clear`)."""
        with self._lock:
            return self._recorded

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
            self._recorded = 0


class SessionOutputs:
    """Thread-safe ``row key -> (prompt uid, final output's row key)`` record of the rows of multi-output sessions that
    the sampler handed out in the joint mode, for the last ``capacity`` batches (bounded memory)."""

    def __init__(self, capacity: int = 8) -> None:
        self._batches: deque[dict[str, tuple[str, str]]] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, keys: Sequence[str], uids: Sequence[str], finals: Sequence[str]) -> None:
        """Records one batch: row ``keys[i]`` belongs to prompt ``uids[i]``; its session's last output is
        ``finals[i]`` (a key among ``keys``)."""
        batch = {str(k): (str(u), str(f)) for k, u, f in zip(keys, uids, finals, strict=True)}
        with self._lock:
            self._batches.append(batch)

    def take(self, index) -> tuple[np.ndarray, np.ndarray] | None:
        """``(groups, final)`` for the estimator's uid array ``index``, or None when no entry was recorded.

        ``groups``: the prompt uid of every row (object array; a row not recorded keeps its label). ``final``: int64
        position in ``index`` of the row whose advantage each row takes (its session's last output; itself for a row
        not recorded). Raises ``RuntimeError`` when a recorded row's last output is not in ``index``."""
        flat = np.asarray(index).reshape(-1)
        with self._lock:
            batches = list(self._batches)
        if not batches:
            return None
        labels = [str(label) for label in flat.tolist()]
        found: dict[int, tuple[str, str]] = {}
        for i, label in enumerate(labels):
            for batch in reversed(batches):
                entry = batch.get(label)
                if entry is not None:
                    found[i] = entry
                    break
        if not found:
            return None
        groups = np.array(labels, dtype=object)
        final = np.arange(len(labels), dtype=np.int64)
        position = {labels[i]: i for i in found}
        for i, (uid, final_key) in found.items():
            groups[i] = uid
            if final_key not in position:
                raise RuntimeError(
                    f"row {labels[i]!r} of a multi-output session reached the trust_grpo estimator without its "
                    f"session's last output {final_key!r}: verl's advantage step drops no row, so something removed it"
                )
            final[i] = position[final_key]
        return groups, final

    def clear(self) -> None:
        """Forgets everything (tests)."""
        with self._lock:
            self._batches.clear()


#: The advantages the trust sampler routed recently, in this process.
ROUTED_ADVANTAGES = RoutedAdvantages()
#: The multi-output sessions the trust sampler handed out recently in the joint mode, in this process.
SESSION_OUTPUTS = SessionOutputs()


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
