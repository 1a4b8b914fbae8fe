"""The verl internals the trust sampler and the ``trust_grpo`` estimator rely on, checked when the sampler starts.

The trust sampler overrides a private method of verl's V1 ``ReplayBuffer`` and reads a private attribute, and the
estimator relies on how verl pads and hands rows to a registered estimator. None of that is a public contract: a
verl release may change it without a word, and the run would then train on wrong advantages or log wrong counts
without failing. So :class:`~sophiavl.recipes.trust_sampler.TrustSampler` calls :func:`check_verl_compatibility` at
construction (verl builds it before any rollout) and refuses any verl other than the release these were checked
against, naming what to re-check (:data:`VERL_INTERNALS`) before raising :data:`CHECKED_VERL_VERSION`.
"""

from __future__ import annotations

import inspect

#: The verl release whose internals (:data:`VERL_INTERNALS`) were read and tested against this code.
CHECKED_VERL_VERSION = "0.9.1"

#: ``ReplayBuffer._materialize_batch``'s parameters after ``self``, as the sampler's override passes them on.
MATERIALIZE_PARAMS = ("partition_id", "selected_prompt_uids", "partition_snapshot")

#: What to re-read in a new verl before trusting the sampler with it (file paths under ``verl/trainer/ppo``).
VERL_INTERNALS = (
    "v1/replay_buffer.py ReplayBuffer._materialize_batch(partition_id, selected_prompt_uids, partition_snapshot): "
    "private, overridden by TrustSampler to record the sampled prompt uids",
    "v1/replay_buffer.py ReplayBuffer.failure_keys (partition id -> set of prompt uids whose rollout had a failed "
    "session): private, read for trust/session_failed_groups and trust/session_lost_groups",
    "padding_utils.py upsample_batch_to_divisible_size: pad rows with uid pad<32 hex digits> and an all-zero "
    "response mask (trust_grpo_estimator.PAD_UID, pad_groups)",
    "v1/utils.py compute_advantage_for_multi_trajectories: a registered estimator gets every row, its `uid` being "
    "the TransferQueue field the sampler may rewrite (trust_advantage_routing)",
    "v1/trainer_base.py PPOTrainer.step / v1/utils.py MetricsAggregator: tensor metrics read after the step's "
    "advantages (trust_grpo_estimator.EstimatorFigure: trust/pad_rows, trust/pad_adv_abs_max)",
)


def verl_compatibility_problems(version: str, buffer_cls: type, buffer: object | None = None) -> list[str]:
    """One line per reason not to run the trust sampler on this verl; empty when none.

    Args:
        version: the installed verl's ``verl.__version__`` (compared exactly with :data:`CHECKED_VERL_VERSION`).
        buffer_cls: verl's ``ReplayBuffer`` class (its ``_materialize_batch`` must take :data:`MATERIALIZE_PARAMS`).
        buffer: a constructed replay buffer (the sampler itself) whose ``failure_keys`` must be a dict; ``None``
            skips that check.
    """
    problems = []
    if str(version) != CHECKED_VERL_VERSION:
        problems.append(
            f"verl {version} is installed, but the trust sampler and the trust_grpo estimator were checked against "
            f"verl {CHECKED_VERL_VERSION}; re-check these verl internals, then raise "
            "sophiavl.recipes.trust_sampler_compat.CHECKED_VERL_VERSION (or install verl=="
            f"{CHECKED_VERL_VERSION}): " + "; ".join(VERL_INTERNALS)
        )
    method = getattr(buffer_cls, "_materialize_batch", None)
    if not callable(method):
        problems.append(f"{buffer_cls.__name__} has no _materialize_batch method (the trust sampler overrides it)")
    else:
        params = tuple(inspect.signature(method).parameters)[1:]
        if params != MATERIALIZE_PARAMS:
            problems.append(
                f"{buffer_cls.__name__}._materialize_batch takes {params}, not {MATERIALIZE_PARAMS} (the trust "
                "sampler's override passes these on)"
            )
    if buffer is not None and not isinstance(getattr(buffer, "failure_keys", None), dict):
        problems.append(
            f"{type(buffer).__name__}.failure_keys is not a dict of failed prompt uids per partition (the trust "
            "sampler reads it)"
        )
    return problems


def check_verl_compatibility(version: str, buffer_cls: type, buffer: object | None = None) -> None:
    """Raises ``RuntimeError`` listing :func:`verl_compatibility_problems`, if any."""
    problems = verl_compatibility_problems(version, buffer_cls, buffer)
    if problems:
        raise RuntimeError("the trust sampler cannot run on this verl:\n  - " + "\n  - ".join(problems))
