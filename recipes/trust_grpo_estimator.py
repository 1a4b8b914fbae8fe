"""The ``trust_grpo`` advantage estimator, registered with verl's ``register_adv_est`` on import.

verl hands an estimator only ``token_level_rewards``, ``response_mask``, ``index`` (the prompt uid of every
response) and ``config`` (the ``algorithm`` node). The trust shaping therefore happens earlier, in the trust sampler
(:mod:`sophiavl.recipes.trust_sampler`), which writes the shaped reward back as ``rm_scores`` and records the uids it
shaped in :data:`SHAPED_UIDS`. In verl 0.9.1's V1 trainer the replay buffer and the advantage computation both run
inside the trainer object, in one process (the TaskRunner actor), so this in-process record is visible here. A uid
missing from it means its group was never shaped (for example ``algorithm.adv_estimator=trust_grpo`` without the
sampler key): the estimator raises instead of training on unshaped rewards, naming the likely cause.

Pad rows. verl pads a sampled batch *after* the sampler handed it out (``PPOTrainer._balance_batch`` ->
``padding_utils.upsample_batch_to_divisible_size``) whenever its row count does not divide the trainer's batch
multiple; in practice when rollout sessions failed, since a failed group stays sampleable with its surviving rows
in sync mode. Pad rows share one made-up uid ``pad<32 hex digits>`` and have an all-zero response mask. The
estimator recognises them by both (a real uid is a hyphenated uuid4), gives them advantage 0, keeps them out of
every real group's mean and std, and reports their count to :data:`PAD_ROWS` (the sampler's ``trust/pad_rows``)
and the largest ``|advantage|`` it hands verl on them to :data:`PAD_ADV_MAX` (``trust/pad_adv_abs_max``, 0 when
the pad rows stay out of training; see :func:`compute_trust_grpo_advantage`).

Multi-output sessions. As verl's ``grpo``, only each session's last output enters the group statistics, and the
session's other outputs take its advantage (:data:`~sophiavl.recipes.trust_advantage_routing.SESSION_OUTPUTS`).
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Iterable

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from sophiavl.recipes.trust_advantage_routing import ROUTED_ADVANTAGES, SESSION_OUTPUTS, routed_advantages
from sophiavl.recipes.trust_wiring_check import ESTIMATOR_NAME, SAMPLER_KEY, SAMPLER_NAME, SAMPLER_PATH, select
from sophiavl.rewards.trust.weights import group_advantages


class ShapedUids:
    """Thread-safe record of the uids shaped by the last few ``sample()`` calls (bounded memory).

    ``capacity`` batches are kept: verl computes the advantages of a sampled batch before it samples the next
    one, so a handful is plenty even with ``parameter_sync_step > 1``.
    """

    def __init__(self, capacity: int = 8) -> None:
        self._batches: deque[frozenset[str]] = deque(maxlen=capacity)
        self._recorded = 0
        self._lock = threading.Lock()

    def add(self, uids: Iterable[str]) -> None:
        """Records one shaped batch."""
        batch = frozenset(str(u) for u in uids)
        with self._lock:
            self._batches.append(batch)
            self._recorded += 1

    def missing(self, uids: Iterable[str]) -> set[str]:
        """The uids among ``uids`` that no recorded batch contains."""
        left = {str(u) for u in uids}
        with self._lock:
            for batch in self._batches:
                left -= batch
                if not left:
                    break
        return left

    def recorded(self) -> int:
        """How many batches were recorded since the process started (or the last :meth:`clear`)."""
        with self._lock:
            return self._recorded

    def clear(self) -> None:
        """Forgets everything (tests)."""
        with self._lock:
            self._batches.clear()
            self._recorded = 0


class EstimatorFigure:
    """Carries one figure of a batch from the estimator to a metric the sampler returned for that batch.

    verl pads a batch and computes its advantages after ``sample()`` returned its metrics, so the sampler cannot
    compute these figures itself. It returns a 0-d float64 tensor from :meth:`open` as the metric's value (NaN until
    filled); the estimator, which sees the padded batch, fills it with :meth:`report`. verl 0.9.1 reads a tensor
    metric with ``.item()`` only after the step's advantages are computed (``PPOTrainer.step`` ->
    ``MetricsAggregator.add_step_metrics``), so the logged value is this step's; it stays NaN when no ``trust_grpo``
    estimator ran for the batch.
    """

    def __init__(self) -> None:
        self._cell: torch.Tensor | None = None
        self._lock = threading.Lock()

    def open(self) -> torch.Tensor:
        """A fresh cell for the batch being sampled (NaN until :meth:`report`)."""
        cell = torch.full((), math.nan, dtype=torch.float64)
        with self._lock:
            self._cell = cell
        return cell

    def report(self, value: float) -> None:
        """Sets the figure of the last opened batch (no-op when none was opened)."""
        with self._lock:
            if self._cell is not None:
                self._cell.fill_(float(value))

    def clear(self) -> None:
        """Forgets the open cell (tests)."""
        with self._lock:
            self._cell = None


#: The uids the trust sampler shaped recently, in this process.
SHAPED_UIDS = ShapedUids()
#: The pad row count of the batch the trust sampler handed out last, filled by the estimator.
PAD_ROWS = EstimatorFigure()
#: The largest |advantage| the estimator handed verl on that batch's pad rows (0 when they stay out of training).
PAD_ADV_MAX = EstimatorFigure()
#: verl 0.9.1's pad uid (``padding_utils.upsample_batch_to_divisible_size``: ``f"pad{uuid.uuid4().hex}"``).
PAD_UID = re.compile(r"pad[0-9a-f]{32}")


def pad_groups(unique: np.ndarray, inverse: np.ndarray, response_mask: torch.Tensor) -> np.ndarray:
    """Boolean per unique uid: True for verl's pad group (a ``pad<32 hex>`` uid whose rows all have an all-zero
    response mask). ``inverse`` maps each row to its uid in ``unique`` (``np.unique(..., return_inverse=True)``)."""
    named = np.fromiter((bool(PAD_UID.fullmatch(str(u))) for u in unique), dtype=bool, count=len(unique))
    if not named.any():
        return named
    row_has_tokens = (response_mask != 0).any(dim=-1).cpu().numpy()
    group_has_tokens = np.zeros(len(unique), dtype=bool)
    np.logical_or.at(group_has_tokens, inverse, row_has_tokens)
    return named & ~group_has_tokens


def _unshaped_error(missing: set[str], total: int) -> RuntimeError:
    """The error for groups that reach the estimator unshaped, naming the likely cause."""
    example = sorted(missing)[0]
    head = (
        f"algorithm.adv_estimator={ESTIMATOR_NAME} received {len(missing)} of {total} groups that the trust sampler "
        f"did not shape (e.g. uid {example!r}). "
    )
    routed = ROUTED_ADVANTAGES.recorded()
    if SHAPED_UIDS.recorded() == 0 and routed == 0:
        return RuntimeError(
            head + f"The trust sampler shaped no batch in this process: it is missing. Set {SAMPLER_KEY}.path="
            f"{SAMPLER_PATH} and {SAMPLER_KEY}.name={SAMPLER_NAME} (the recipe `sophiavl` sets both), or use another "
            "estimator"
        )
    named_pad = [u for u in missing if PAD_UID.fullmatch(u)]
    if named_pad:
        return RuntimeError(
            head + f"uid {named_pad[0]!r} is named like verl's pad rows but has response tokens (verl's pad rows have "
            "an all-zero response mask): something other than verl's padding added these rows after sampling"
        )
    if routed:
        return RuntimeError(
            head + f"The trust sampler ran in this process in a routed mode (normalize decoupled/papo or "
            f"whiten_batch): it rewrote the uid of each row it handed out to the row's key and recorded the advantages "
            f"of {routed} batch(es), but these rows arrived unrouted. "
            + (
                "Their uid is a row key that no recent batch recorded: the rows come from an older batch (the record "
                "keeps the last few) or from another process"
                if all(label.count("_") >= 2 and label.rsplit("_", 1)[-1].isdigit() for label in missing)
                else "Their uid is not a row key: the sampler's uid rewrite did not reach them (something wrote the "
                "`uid` field after sampling, or added these rows to the batch)"
            )
        )
    return RuntimeError(
        head + "The trust sampler ran in this process, but these groups were not among the batches it handed out: "
        "rows were added to the batch after sampling by something other than verl's padding (verl's pad rows, uid "
        "pad<32 hex digits> with an all-zero response mask, are recognised and get advantage 0)"
    )


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
            :mod:`sophiavl.recipes.trust_advantage_routing`) gets the advantage the sampler computed for it. A row
            of a multi-output session (uid = row key recorded in ``SESSION_OUTPUTS``) joins its prompt's group
            through its session's last output, whose advantage it takes, as in verl's ``grpo``.
        config: verl's ``algorithm`` config; ``norm_adv_by_std_in_grpo`` (default true) selects
            ``(R - mean) / (std + epsilon)`` (unbiased std) or ``R - mean``. A group of one gets mean 0, std 1.
        epsilon: added to the std.

    Returns:
        ``(advantages, returns)``, the same ``(bs, T)`` tensor twice, zero outside the response mask and zero on
        verl's pad rows (see the module docstring), which also stay out of every group's mean and std. The number
        of pad rows goes to :data:`PAD_ROWS`; the largest ``|advantage|`` on them, over the per-row value and every
        position of the returned tensor (what verl writes to TransferQueue), goes to :data:`PAD_ADV_MAX`.

    Raises:
        RuntimeError: ``index`` is missing, or some uid (other than verl's pad uid) was not shaped by the trust
            sampler in this process; the message names the likely cause.
    """
    if index is None:
        raise RuntimeError(f"the {ESTIMATOR_NAME} estimator needs the prompt uid of every response (verl's `uid`)")
    routed = routed_advantages(token_level_rewards, response_mask, index)
    if routed is not None:  # normalize decoupled/papo or whiten_batch: the sampler's advantages, row by row
        found, out = routed
        if not found.all():  # rows the sampler did not route (verl's pad rows) take the joint path
            rest = torch.from_numpy(~found)
            out[rest] = _joint_advantages(
                token_level_rewards[rest], response_mask[rest], np.asarray(index)[~found], config, epsilon
            )
        else:
            PAD_ROWS.report(0)
            PAD_ADV_MAX.report(0.0)
        return out, out
    out = _joint_advantages(token_level_rewards, response_mask, index, config, epsilon)
    return out, out


def _joint_advantages(token_level_rewards, response_mask, index, config, epsilon: float) -> torch.Tensor:
    """The joint path of :func:`compute_trust_grpo_advantage`: the ``(bs, T)`` advantages; reports the pad figures."""
    labels = np.asarray(index).reshape(-1)
    sessions = SESSION_OUTPUTS.take(labels)
    if sessions is None:  # one output per session (the paper's loop): every row is its session's last output
        groups, last = labels, None
    else:
        groups, final = sessions
        last = np.flatnonzero(final == np.arange(len(final)))  # rows that are their session's last output
        groups = groups[last]
    unique, inverse = np.unique(groups, return_inverse=True)
    inverse = inverse.astype(np.int64).reshape(-1)
    mask = response_mask if last is None else response_mask[torch.from_numpy(last)]
    pad = pad_groups(unique, inverse, mask)
    missing = SHAPED_UIDS.missing(unique[~pad].tolist())
    if missing:
        raise _unshaped_error(missing, len(unique))
    pad_rows = pad[inverse]
    with torch.no_grad():
        rewards = token_level_rewards if last is None else token_level_rewards[torch.from_numpy(last)]
        scores = rewards.sum(dim=-1)
        norm_by_std = bool(select(config, "norm_adv_by_std_in_grpo", True))
        adv = group_advantages(scores, torch.from_numpy(inverse), norm_by_std=norm_by_std, eps=epsilon)
        if pad_rows.any():  # their own group already; 0 whatever their (zero) rewards
            adv = adv.masked_fill(torch.from_numpy(pad_rows), 0.0)
        if last is not None:  # every output of a session takes the advantage of the session's last output
            slot = np.empty(len(final), dtype=np.int64)
            slot[last] = np.arange(len(last))
            taken = torch.from_numpy(slot[final])
            adv, pad_rows = adv[taken], pad_rows[slot[final]]
        # one cast of the mask into a new tensor (copy=True: a float mask must not be overwritten), then an in-place
        # multiply: about 1.5x faster on CPU than the mixed-dtype product `adv[:, None] * response_mask`
        out = response_mask.to(token_level_rewards.dtype, copy=True)
        out.mul_(adv.to(token_level_rewards.dtype).unsqueeze(-1))
    PAD_ROWS.report(int(pad_rows.sum()))
    PAD_ADV_MAX.report(_pad_abs_max(adv, out, pad_rows))
    return out


def _pad_abs_max(adv: torch.Tensor, out: torch.Tensor, pad_rows: np.ndarray) -> float:
    """Largest ``|advantage|`` on the pad rows: their per-row value and every position of their rows in ``out``
    (not only the masked ones); 0.0 when there is no pad row."""
    if not pad_rows.any():
        return 0.0
    rows = torch.from_numpy(pad_rows)
    return max(float(adv[rows].abs().max()), float(out[rows].abs().max()))
