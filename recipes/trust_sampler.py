"""The trust sampler: verl's V1 ``ReplayBuffer`` plus Trust-GRPO shaping of every sampled training batch.

Configured by the recipe::

    trainer.v1.sampler.custom_sampler.path: pkg://sophiavl.recipes.trust_sampler
    trainer.v1.sampler.custom_sampler.name: TrustSampler
    trainer.v1.sampler.sampler_kwargs: {trust_grpo, adv_estimator, max_failure_rate, rm_endpoint}

How the reward reaches it (verl 0.9.1, V1 trainer, streaming reward loop): the reward manager's ``reward_score``
(= ``Ro``) becomes the per-token ``rm_scores`` field of each trajectory (the score sits on the last response token,
zeros elsewhere), and its ``reward_extra_info`` dict is stored inside the trajectory's ``extra_fields`` field
(``extra_fields["reward_extra_info"]``). Both are in TransferQueue when a group turns ``finished``. On every
training ``sample()`` this class lets verl pick the batch of complete groups, reads ``rm_scores`` and
``extra_fields`` of those keys, applies :func:`sophiavl.rewards.trust.weights.shape_rewards` with the real global step,
writes the shaped reward back into ``rm_scores`` (the row sum becomes ``R``; nothing else is touched), records the
shaped uids for the ``trust_grpo`` estimator and returns ``trust/...`` metrics that verl logs. Validation
(``partition_id="val"``) passes through untouched.

Failed rollout sessions. In sync mode verl keeps a group whose session raised sampleable (status ``failure``) with
the rows of its surviving sessions, and pads the batch after sampling (see
:mod:`sophiavl.recipes.trust_grpo_estimator`). The sampler shapes each group from the rows it has, so a failed
group's survivors are shaped among themselves; ``trust/session_failed_groups`` counts the sampled groups with a
failed session and ``trust/session_lost_groups`` those of them left without any row. ``trust/pad_rows`` is the
number of rows verl padded into the batch and ``trust/pad_adv_abs_max`` the largest ``|advantage|`` the estimator
handed verl on them (0 when they stay out of training), both filled in by the estimator (:class:`EstimatorFigure`).

Multi-output sessions (a multi-turn or tool agent loop). The shaping uses each session's last output, and in the joint
mode the rows of a session with several outputs carry their row key as ``uid`` and are recorded in
:data:`~sophiavl.recipes.trust_advantage_routing.SESSION_OUTPUTS`, so that the estimator normalises the last outputs
only and gives each session's other outputs its advantage, as verl's own ``grpo`` does.

Checked at construction: the trainer mode (``sync``), ``parameter_sync_step = 1``
(:func:`~sophiavl.recipes.config_traps.parameter_sync_step_problem`) and the installed verl
(:mod:`sophiavl.recipes.trust_sampler_compat`: the private members this class relies on).
"""

from __future__ import annotations

import logging
import math
from collections import Counter

import numpy as np
import torch
import transfer_queue as tq
import verl
from tensordict import TensorDict
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from sophiavl.recipes.config_traps import parameter_sync_step_problem
from sophiavl.recipes.trust_advantage_routing import ROUTED_ADVANTAGES, SESSION_OUTPUTS, routed_uid_field
from sophiavl.recipes.trust_grpo_estimator import PAD_ADV_MAX, PAD_ROWS, SHAPED_UIDS
from sophiavl.recipes.trust_sampler_compat import check_verl_compatibility
from sophiavl.recipes.trust_wiring_check import ESTIMATOR_NAME, known_estimators, select
from sophiavl.rewards.outcome.metrics import scorer_failure_metrics
from sophiavl.rewards.reward_info import SAMPLE_KEY_PREFIX, TRUST_SAMPLER_KEYS
from sophiavl.rewards.trm.codes import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, describe_error, error_kind
from sophiavl.rewards.trust.config import TrustConfig
from sophiavl.rewards.trust.variants import advantage_metrics, variant_advantages
from sophiavl.rewards.trust.weights import TrustResult, shape_rewards

logger = logging.getLogger(__name__)

VERL_MANAGED = "verl-managed reward model"


def _as_list(column) -> list:
    if hasattr(column, "tolist"):
        column = column.tolist()
    return [getattr(item, "data", item) for item in column]


def _parse_key(key: str) -> tuple[str, str, int]:
    uid, session, index = key.rsplit("_", 2)
    return uid, session, int(index)


class TrustSampler(ReplayBuffer):
    """verl 0.9.1 V1 replay buffer that applies Trust-GRPO to every training batch it hands out.

    Constructed by verl's trainer with its usual keyword arguments; ``sampler_kwargs`` carries:

    * ``trust_grpo``: the ``algorithm.trust_grpo`` node (parsed by :class:`TrustConfig`);
    * ``adv_estimator``: ``algorithm.adv_estimator``, checked to be registered (fail fast at trainer init);
    * ``max_failure_rate``: ``reward.thinking_rm.max_failure_rate``, the largest tolerated share of failed judge
      calls among the calls made for one training step, in [0, 1];
    * ``rm_endpoint``: ``reward.thinking_rm.base_url`` (null: the verl-managed reward model), for error messages;
    * ``norm_adv_by_std_in_grpo``: ``algorithm.norm_adv_by_std_in_grpo`` (default true), for the advantages it
      computes (routed to the estimator outside the joint mode, and the ``trust/adv_*`` metrics).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check_verl_compatibility(verl.__version__, ReplayBuffer, self)
        if self.trainer_mode != "sync":
            raise ValueError(
                f"TrustSampler needs trainer.v1.trainer_mode=sync (whole groups, the real global step), "
                f"got {self.trainer_mode!r}"
            )
        sync_step = parameter_sync_step_problem(select(self.trainer_config, "parameter_sync_step", 1))
        if sync_step:
            raise ValueError(sync_step)
        options = self.sampler_kwargs if self.sampler_kwargs is not None else {}
        self.trust = TrustConfig.from_config(options.get("trust_grpo", None))
        rate = options.get("max_failure_rate", None)
        self.max_failure_rate = 1.0 if rate is None else float(rate)
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"reward.thinking_rm.max_failure_rate must lie in [0, 1], got {rate!r}")
        endpoint = options.get("rm_endpoint", None)
        self.rm_endpoint = str(endpoint) if endpoint else VERL_MANAGED
        estimator = options.get("adv_estimator", None)
        if estimator is not None and str(estimator) not in known_estimators():
            raise ValueError(f"unknown advantage estimator algorithm.adv_estimator={estimator!r}")
        self.norm_by_std = bool(options.get("norm_adv_by_std_in_grpo", True))
        # verl's own grpo groups multi-output sessions by itself, from the prompt uid: only trust_grpo needs the rows
        self.groups_sessions = estimator is None or str(estimator) == ESTIMATOR_NAME
        if self.trust.routes_advantages and estimator is not None and str(estimator) != ESTIMATOR_NAME:
            raise ValueError(
                f"algorithm.trust_grpo.normalize={self.trust.normalize} / whiten_batch={self.trust.whiten} hands the "
                f"advantages to the {ESTIMATOR_NAME} estimator row by row; algorithm.adv_estimator={estimator} would "
                f"see one group per row: set algorithm.adv_estimator={ESTIMATOR_NAME}"
            )
        if estimator is not None and str(estimator) != ESTIMATOR_NAME:
            logger.warning(
                "TrustSampler shapes rm_scores but algorithm.adv_estimator=%s (not %s)", estimator, ESTIMATOR_NAME
            )

    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[KVBatchMeta, dict]:
        """verl's sync sampling, then (training only) trust shaping of the sampled groups; metrics merged.

        Training metrics also carry the rollout failures of the sampled groups, ``trust/pad_rows`` and
        ``trust/pad_adv_abs_max`` (0-d tensors the estimator fills once verl has padded the batch; see the module
        docstring)."""
        self._selected_uids: list[str] = []
        batch, metrics = super().sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)
        if partition_id == "val":
            return batch, metrics
        metrics = dict(metrics)
        metrics.update(self._session_failures(batch))
        if batch.keys:
            metrics.update(self.shape_batch(batch, global_steps))
        metrics["trust/pad_rows"] = PAD_ROWS.open()
        metrics["trust/pad_adv_abs_max"] = PAD_ADV_MAX.open()
        return batch, metrics

    def _materialize_batch(self, partition_id: str, selected_prompt_uids: list[str], partition_snapshot: dict):
        """verl's, recording which groups were selected (for the session failure metrics)."""
        self._selected_uids = list(selected_prompt_uids)
        return super()._materialize_batch(partition_id, selected_prompt_uids, partition_snapshot)

    def _session_failures(self, batch: KVBatchMeta) -> dict[str, float]:
        """``trust/session_failed_groups``: sampled groups whose rollout had a failed session (verl's ``failure``
        status); ``trust/session_lost_groups``: those of them without any row in the batch."""
        failed = [uid for uid in self._selected_uids if uid in self.failure_keys[batch.partition_id]]
        present = {_parse_key(key)[0] for key in batch.keys}
        if failed:
            logger.warning(
                "step batch has %d group(s) with failed rollout sessions (%d without any surviving row); their "
                "surviving rows are shaped among themselves and verl pads the batch",
                len(failed),
                sum(uid not in present for uid in failed),
            )
        return {
            "trust/session_failed_groups": float(len(failed)),
            "trust/session_lost_groups": float(sum(uid not in present for uid in failed)),
        }

    # ------------------------------------------------------------------ shaping
    def shape_batch(self, batch: KVBatchMeta, global_steps: int) -> dict[str, float]:
        """Shapes the ``rm_scores`` of ``batch`` in TransferQueue in place and returns the ``trust/`` metrics.

        Rows are trajectories keyed ``{uid}_{session}_{index}``; the response of a session is its last output
        (highest index), as in verl's GRPO; the shaped reward of a session is written to all of its outputs. In the
        joint mode the rows of multi-output sessions get their key as ``uid`` (see the module docstring).
        Raises ``RuntimeError`` when a reward extra key is missing or when the judge failure share exceeds
        ``max_failure_rate`` (before anything is written).
        """
        keys = list(batch.keys)
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=["rm_scores", "extra_fields"])
        extras = [(item or {}).get("reward_extra_info", {}) for item in _as_list(data["extra_fields"])]
        columns = self._extra_columns(extras, keys)
        sample_columns = self._sample_columns(extras, keys)

        parsed = [_parse_key(k) for k in keys]
        session_of_row, last_row = {}, {}
        for row, (uid, session, index) in enumerate(parsed):
            skey = (uid, session)
            session_of_row[row] = skey
            if skey not in last_row or parsed[last_row[skey]][2] < index:
                last_row[skey] = row
        rep_rows = np.fromiter(last_row.values(), dtype=np.int64, count=len(last_row))
        rep_index = {skey: i for i, skey in enumerate(last_row)}
        row_to_rep = np.fromiter((rep_index[session_of_row[r]] for r in range(len(keys))), dtype=np.int64)
        uids = np.array([parsed[r][0] for r in rep_rows], dtype=object)

        rep = {name: torch.from_numpy(values[rep_rows]) for name, values in columns.items()}
        # contract: a failed judgement (status 2) is a missing score, whatever number came with it
        failed = rep["thinking_status"].round() == STATUS_FAILED
        rep["thinking"] = torch.where(failed, torch.full_like(rep["thinking"], math.nan), rep["thinking"])
        thinking = rep["thinking"]
        if sample_columns is not None:  # K > 1 judge samples per response: (n, K), NaN for a failed sample
            samples = torch.from_numpy(sample_columns[rep_rows])
            thinking = torch.where(failed.unsqueeze(1), torch.full_like(samples, math.nan), samples)
        metrics = self._rm_health(rep)
        if sample_columns is not None:
            # judge samples without a score, among the judgements that got at least one (status 0)
            judged_ok = rep["thinking_status"].round() == STATUS_OK
            missing = torch.isnan(thinking[judged_ok])
            metrics["trust/rm_sample_failed_share"] = float(missing.double().mean()) if missing.numel() else 0.0
        result = shape_rewards(rep["outcome"], thinking, uids, global_steps, self.trust)

        adv = variant_advantages(result, rep["outcome"], self.trust, norm_by_std=self.norm_by_std)
        rows = torch.from_numpy(row_to_rep)
        rm_scores = self._rewrite_scores(data["rm_scores"], adv.rewards[rows])
        fields = TensorDict({"rm_scores": rm_scores}, batch_size=len(keys))
        if self.trust.routes_advantages:  # the estimator takes these row by row (trust_advantage_routing)
            fields.update(routed_uid_field(keys))
        tq.kv_batch_put(keys=keys, partition_id=batch.partition_id, fields=fields)
        if self.trust.routes_advantages:  # (group uids stay unrecorded: a row that kept one fails in the estimator)
            ROUTED_ADVANTAGES.add(keys, adv.advantage[rows].tolist())
        else:
            SHAPED_UIDS.add(set(uids.tolist()))
            if self.groups_sessions:
                self._record_sessions(keys, parsed, session_of_row, last_row, batch.partition_id)
        metrics.update(self._trust_metrics(result, rep["outcome"]))
        metrics.update(advantage_metrics(adv))
        metrics["trust/reward_mean"] = float(adv.rewards.mean())  # what rm_scores carries (the gate included)
        metrics.update(self._reward_tail(extras))
        metrics.update(scorer_failure_metrics(extras, batch.tags, global_steps))  # outcome/scorer_failed_count
        return metrics

    @staticmethod
    def _record_sessions(keys, parsed, session_of_row, last_row, partition_id: str) -> None:
        """Joint mode: the rows of sessions with several outputs carry their key as ``uid`` and are recorded in
        ``SESSION_OUTPUTS`` (prompt uid, last output's key), so that the estimator groups them as verl's ``grpo``."""
        outputs = Counter(session_of_row.values())
        multi = [row for row in range(len(keys)) if outputs[session_of_row[row]] > 1]
        if not multi:  # the paper's single-turn loop: nothing to rewrite
            return
        multi_keys = [keys[row] for row in multi]
        tq.kv_batch_put(keys=multi_keys, partition_id=partition_id, fields=routed_uid_field(multi_keys))
        SESSION_OUTPUTS.add(
            multi_keys,
            [parsed[row][0] for row in multi],
            [keys[last_row[session_of_row[row]]] for row in multi],
        )

    @staticmethod
    def _reward_tail(extras: list[dict]) -> dict[str, float]:
        """``trust/reward_tail_s``: seconds from the last response handed to the reward manager (its rollout ended)
        to the last reward ready, ``max(reward_end_t) - max(reward_begin_t)`` over the batch; absent when the
        manager does not report the times."""
        try:
            begin = max(float(info["reward_begin_t"]) for info in extras)
            end = max(float(info["reward_end_t"]) for info in extras)
        except (KeyError, TypeError, ValueError):
            return {}
        return {"trust/reward_tail_s": max(0.0, end - begin)}

    @staticmethod
    def _extra_columns(extras: list[dict], keys: list[str]) -> dict[str, np.ndarray]:
        columns = {}
        for name in TRUST_SAMPLER_KEYS:
            try:
                columns[name] = np.array([float(info[name]) for info in extras], dtype=np.float64)
            except (KeyError, TypeError):
                bad = next(
                    k for k, info in zip(keys, extras, strict=True) if not isinstance(info, dict) or name not in info
                )
                raise RuntimeError(
                    f"trajectory {bad!r} has no reward_extra_info[{name!r}]: the trust sampler needs the SophiaVL "
                    f"reward manager's extra info ({', '.join(TRUST_SAMPLER_KEYS)}) on every training sample; check "
                    "reward.reward_manager and reward.custom_reward_function"
                ) from None
        return columns

    @staticmethod
    def _sample_columns(extras: list[dict], keys: list[str]) -> np.ndarray | None:
        """The per-sample judge scores ``thinking_sample_{j}`` as an ``(rows, K)`` array, or None when the reward
        manager reports one score per response (K = 1). Every row must carry the same K keys."""
        found = {k for info in extras if isinstance(info, dict) for k in info if str(k).startswith(SAMPLE_KEY_PREFIX)}
        names = sorted(found, key=lambda k: int(k[len(SAMPLE_KEY_PREFIX) :]))
        if not names:
            return None
        try:
            return np.array([[float(info[n]) for n in names] for info in extras], dtype=np.float64)
        except (KeyError, TypeError):
            bad = next(
                k for k, info in zip(keys, extras, strict=True) if not isinstance(info, dict) or not found <= set(info)
            )
            raise RuntimeError(
                f"trajectory {bad!r} lacks some of the judge sample keys {names} that other trajectories carry: "
                "every sample of a run must report the same reward_extra_info keys"
            ) from None

    def _rm_health(self, rep: dict[str, torch.Tensor]) -> dict[str, float]:
        status = rep["thinking_status"].round().to(torch.int64)
        failed = status == STATUS_FAILED
        requested = status != STATUS_SKIPPED
        n_failed, n_requested = int(failed.sum()), int(requested.sum())
        share = n_failed / n_requested if n_requested else 0.0
        codes = rep["thinking_error"].round().to(torch.int64)[failed].tolist()
        if share > self.max_failure_rate:
            counts = Counter(describe_error(c) for c in codes)
            raise RuntimeError(
                f"thinking reward model at {self.rm_endpoint}: {n_failed} of {n_requested} judge calls failed in this "
                f"training step ({share:.1%} > reward.thinking_rm.max_failure_rate={self.max_failure_rate:g}); "
                f"last error: {describe_error(codes[-1])}; errors: {dict(counts)}"
            )
        latency = rep["rm_latency_s"][requested]
        metrics = {
            "trust/rm_requested_count": float(n_requested),
            "trust/rm_skipped_count": float(int((status == STATUS_SKIPPED).sum())),
            "trust/rm_failed_count": float(n_failed),
            "trust/rm_failed_share": share,
            "trust/rm_latency_mean_s": float(latency.mean()) if latency.numel() else 0.0,
            "trust/rm_latency_p95_s": float(torch.quantile(latency, 0.95)) if latency.numel() else 0.0,
        }
        for kind, count in Counter(error_kind(c) for c in codes).items():
            metrics[f"trust/rm_error_{kind}_count"] = float(count)
        return metrics

    @staticmethod
    def _rewrite_scores(rm_scores: torch.Tensor, shaped: torch.Tensor) -> torch.Tensor:
        """Adds ``shaped - row_sum`` to the last token of every row, so each row sums to its shaped reward."""
        if rm_scores.is_nested:
            values, offsets = rm_scores.values(), rm_scores.offsets()
            lengths = offsets.diff()
            if (lengths == 0).any():
                raise RuntimeError("a trajectory has an empty rm_scores row: no token can carry its reward")
            rows = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
            sums = torch.zeros(lengths.numel(), dtype=torch.float64).index_add_(0, rows, values.to(torch.float64))
            new_values = values.clone()
            last = offsets[1:] - 1
            new_values[last] += (shaped - sums).to(values.dtype)
            return torch.nested.nested_tensor_from_jagged(new_values, offsets)
        new = rm_scores.clone()
        sums = rm_scores.to(torch.float64).sum(dim=-1)
        new[:, -1] += (shaped - sums).to(new.dtype)
        return new

    @staticmethod
    def _trust_metrics(result: TrustResult, outcome: torch.Tensor) -> dict[str, float]:
        rt = result.thinking
        usable = ~torch.isnan(rt)

        def mean(values: torch.Tensor) -> float:
            return float(values.mean()) if values.numel() else math.nan

        metrics = {
            "trust/alpha_t": result.alpha_t,
            "trust/gamma_mean": mean(result.gamma),
            "trust/downweighted_share": mean(result.down_weighted.to(torch.float64)),
            "trust/no_thinking_share": mean(result.thinking_off.to(torch.float64)),
            "trust/thinking_missing_share": mean((~usable).to(torch.float64)),
            "trust/thinking_mean": mean(rt[usable]),
            "trust/thinking_correct_mean": mean(rt[usable & result.correct]),
            "trust/thinking_wrong_mean": mean(rt[usable & ~result.correct]),
            "trust/outcome_mean": mean(outcome),
            "trust/correct_share": mean(result.correct.to(torch.float64)),
            "trust/reward_mean": mean(result.rewards),
        }
        if result.trust == "variance":
            metrics["trust/thinking_variance_mean"] = mean(result.variance[result.judged])
            metrics["trust/gamma_response_mean"] = mean(result.gamma_response[result.judged])
        return metrics
