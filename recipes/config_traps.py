"""Configurations that verl 0.9.1 accepts and then runs wrongly without a word; refused when the config resolves.

:func:`config_trap_problems` lists them; the recipe's resolver (``sophiavl.recipes.trust_wiring``, key
``algorithm.trust_grpo.check_wiring``) raises them together with the Trust-GRPO wiring problems, so
``python -m verl.trainer.main_ppo +recipe=... --cfg job --resolve`` and a real run both stop before any worker starts.
``python -m sophiavl.recipes.preflight`` reports them as well.
"""

from __future__ import annotations

from typing import Any

from sophiavl.recipes.trust_wiring_check import SAMPLER_KEY, SAMPLER_NAME, SAMPLER_PATH, select


def uses_trust_sampler(config: Any) -> bool:
    """True when ``trainer.v1.sampler.custom_sampler`` names the trust sampler (``pkg://`` path, ``.`` or ``/``)."""
    path = str(select(config, f"{SAMPLER_KEY}.path", "") or "")
    name = str(select(config, f"{SAMPLER_KEY}.name", "") or "")
    prefix = "pkg://"
    return (
        path.startswith(prefix)
        and prefix + path[len(prefix) :].replace("/", ".") == SAMPLER_PATH
        and (name == SAMPLER_NAME)
    )


def config_trap_problems(config: Any) -> list[str]:
    """One line per trap found in ``config`` (the full verl config, a DictConfig or nested dicts); empty when none.

    * ``reward.reward_model.enable=false`` with ``enable_resource_pool=true``: verl's V1 trainer
      (``PPOTrainer._init_resource_pool_mgr``) reserves the reward-model pool whenever ``enable_resource_pool`` is
      true, so its GPUs sit idle, or the run stops with "Total available GPUs ... is less than total desired GPUs".
    * ``algorithm.filter_groups.enable=true`` (DAPO dynamic sampling) with the trust sampler: verl passes the
      filter only to its own replay buffer (``PPOTrainer._build_replay_buffer``), so with a custom sampler no group is
      ever filtered.
    * ``trainer.v1.<trainer_mode>.parameter_sync_step > 1`` with the trust sampler (see
      :func:`parameter_sync_step_problem`).
    """
    problems: list[str] = []
    enable = bool(select(config, "reward.reward_model.enable", False))
    pool = bool(select(config, "reward.reward_model.enable_resource_pool", False))
    if pool and not enable:
        nnodes = select(config, "reward.reward_model.nnodes", 0)
        gpus = select(config, "reward.reward_model.n_gpus_per_node", 0)
        problems.append(
            "reward.reward_model.enable=false but reward.reward_model.enable_resource_pool=true: verl 0.9.1 still "
            f"reserves the reward-model pool ({nnodes} x {gpus} GPUs), which sits idle or stops the run with "
            "'Total available GPUs ... is less than total desired GPUs'; set "
            "reward.reward_model.enable_resource_pool=false (or reward.reward_model.enable=true to let verl serve "
            "the thinking reward model)"
        )
    if bool(select(config, "algorithm.filter_groups.enable", False)) and uses_trust_sampler(config):
        problems.append(
            "algorithm.filter_groups.enable=true (DAPO dynamic sampling) is silently ignored by verl 0.9.1 beside a "
            f"custom sampler, and the trust sampler ({SAMPLER_PATH}) does not filter groups: set "
            "algorithm.filter_groups.enable=false"
        )
    mode = select(config, "trainer.v1.trainer_mode", "sync")
    steps = select(config, f"trainer.v1.{mode}.parameter_sync_step", 1)
    if uses_trust_sampler(config):
        problem = parameter_sync_step_problem(steps, f"trainer.v1.{mode}.parameter_sync_step")
        if problem:
            problems.append(problem)
    return problems


def parameter_sync_step_problem(steps: Any, key: str = "trainer.v1.sync.parameter_sync_step") -> str | None:
    """The refusal of ``parameter_sync_step`` values other than 1 beside the trust sampler, or None for 1.

    verl 0.9.1 (``PPOTrainer.step``) then samples a training step in ``parameter_sync_step`` sub-batches, each
    trained before the next is sampled: ``whiten_batch`` would whiten each sub-batch instead of the step (the
    later sub-batches do not exist yet when the first trains, so the step's statistics cannot be used), and its
    ``MetricsAggregator`` averages the per-sub-batch counts ``trust/pad_rows``, ``trust/session_failed_groups`` and
    ``trust/session_lost_groups`` instead of summing them (it sums only names it knows). ``key`` names the setting.
    """
    if steps == 1 and not isinstance(steps, bool):
        return None
    return (
        f"{key}={steps}: the trust sampler needs one sample() per training step (parameter_sync_step=1); with more, "
        "verl trains each sub-batch before it samples the next, so whiten_batch would whiten sub-batches instead of "
        "the step, and verl's MetricsAggregator would average the trust/pad_rows and trust/session_* counts instead "
        f"of summing them: remove {key} (or set it to 1)"
    )
