"""Checks that a run's config wires Trust-GRPO into verl completely (sampler, estimator, trainer mode, reward model).

:func:`check_trust_wiring` runs when verl resolves the config (the resolver of :mod:`sophiavl.recipes.trust_wiring`)
and in ``python -m sophiavl.recipes.preflight``; the names it checks (the estimator, the sampler's ``pkg://`` path)
are defined here, next to the verl glue they name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sophiavl.rewards.trm.config import ThinkingRMConfig
from sophiavl.rewards.trust.config import TrustConfig

#: The advantage estimator name registered by ``sophiavl.recipes.trust_grpo_estimator``.
ESTIMATOR_NAME = "trust_grpo"
#: ``trainer.v1.sampler.custom_sampler.{path,name}`` of the trust sampler (``sophiavl.recipes.trust_sampler``).
SAMPLER_PATH = "pkg://sophiavl.recipes.trust_sampler"
SAMPLER_NAME = "TrustSampler"
SAMPLER_KEY = "trainer.v1.sampler.custom_sampler"


def select(config: Any, dotted: str, default: Any = None) -> Any:
    """``config.a.b.c`` for a DictConfig, nested mappings or attribute objects; ``default`` where a level is missing
    or null. Interpolations below the selected node are not resolved."""
    node = config
    for part in dotted.split("."):
        if node is None:
            return default
        if isinstance(node, Mapping):
            node = node.get(part, None)
        else:
            node = getattr(node, part, None)
    return default if node is None else node


def known_estimators() -> set[str]:
    """Names of the advantage estimators verl knows in this process (its enum plus everything registered)."""
    from verl.trainer.ppo import core_algos

    return set(core_algos.ADV_ESTIMATOR_REGISTRY) | {e.value for e in core_algos.AdvantageEstimator}


def check_trust_wiring(config: Any) -> TrustConfig | None:
    """Checks that a run's config wires Trust-GRPO completely, before any rollout.

    ``config`` is the full verl config (the DictConfig ``main_ppo`` hands to the trainer and the reward manager,
    or the same as nested dicts). A run uses Trust-GRPO when ``algorithm.adv_estimator == "trust_grpo"`` or when
    ``trainer.v1.sampler.custom_sampler.path`` is the trust sampler. Such a run needs:

    * the trust sampler under ``trainer.v1.sampler.custom_sampler`` (``path`` and ``name``) when the estimator is
      ``trust_grpo`` (without it no group is ever shaped);
    * the ``TrustSampler`` class name when the trust sampler module is named;
    * a registered advantage estimator (``trust_grpo`` is registered by the ``sophiavl`` verl plugin);
    * verl's V1 trainer in ``sync`` mode (``trainer.use_v1``, ``trainer.v1.trainer_mode``), where the sampler sees
      whole groups and the real global step;
    * reward scores available when the sampler runs, i.e. not a colocated reward model
      (``reward.reward_model.enable`` without ``enable_resource_pool``);
    * exactly one thinking reward model: either ``reward.thinking_rm.base_url`` (external server) or
      ``reward.reward_model.enable`` (verl serves it), not neither and not both (both would start an unused RM);
    * valid ``algorithm.trust_grpo`` and ``reward.thinking_rm`` nodes (every key parsed and range-checked).

    Whatever the estimator, the thinking reward's own switch is checked too: with
    ``reward.thinking_rm.enable=false`` there must be no verl-managed reward model (``reward.reward_model.enable``
    would start an RM pool nobody asks) and ``algorithm.trust_grpo.trust`` must be ``off`` (a trust weight needs
    thinking scores); ``trust=variance`` needs ``reward.thinking_rm.samples >= 2`` (the variance of one sample is 0).

    Returns the parsed :class:`TrustConfig`, or ``None`` when the run does not use Trust-GRPO. Raises
    ``ValueError`` listing every problem found, each naming the key to set.
    """
    problems = _thinking_switch_problems(config)
    thinking_on = bool(select(config, "reward.thinking_rm.enable", True))
    estimator = str(select(config, "algorithm.adv_estimator", ""))
    sampler_path = str(select(config, f"{SAMPLER_KEY}.path", "") or "")
    sampler_name = str(select(config, f"{SAMPLER_KEY}.name", "") or "")
    prefix = "pkg://"
    ours = sampler_path.startswith(prefix) and prefix + sampler_path[len(prefix) :].replace("/", ".") == SAMPLER_PATH
    if estimator != ESTIMATOR_NAME and not ours:
        if problems:
            raise ValueError("the thinking reward is not configured consistently:\n  - " + "\n  - ".join(problems))
        return None

    if estimator == ESTIMATOR_NAME and not (sampler_path and sampler_name):
        problems.append(
            f"algorithm.adv_estimator={ESTIMATOR_NAME} needs the trust sampler, but {SAMPLER_KEY} is not set: set "
            f"{SAMPLER_KEY}.path={SAMPLER_PATH} and {SAMPLER_KEY}.name={SAMPLER_NAME} (the recipe `sophiavl` does)"
        )
    if ours and sampler_name != SAMPLER_NAME:
        problems.append(f"{SAMPLER_KEY}.name must be {SAMPLER_NAME} for {SAMPLER_PATH}, got {sampler_name!r}")
    known = known_estimators()
    if estimator not in known:
        hint = (
            "the sophiavl verl plugin did not register it: check that sophiavl-r1 is installed in this environment"
            if estimator == ESTIMATOR_NAME
            else f"known estimators: {sorted(known)}"
        )
        problems.append(f"unknown advantage estimator algorithm.adv_estimator={estimator!r}: {hint}")
    if not bool(select(config, "trainer.use_v1", False)):
        problems.append("Trust-GRPO needs verl's V1 trainer: set trainer.use_v1=true")
    mode = select(config, "trainer.v1.trainer_mode", None)
    if mode != "sync":
        problems.append(f"Trust-GRPO needs trainer.v1.trainer_mode=sync, got {mode!r}")
    if bool(select(config, "reward.reward_model.enable", False)) and not bool(
        select(config, "reward.reward_model.enable_resource_pool", False)
    ):
        problems.append(
            "a colocated reward model scores after the sampler runs, so the trust sampler would see no scores: set "
            "reward.reward_model.enable_resource_pool=true (or use an external thinking RM)"
        )
    external = select(config, "reward.thinking_rm.base_url", None)
    verl_managed = bool(select(config, "reward.reward_model.enable", False))
    if external and verl_managed:
        problems.append(
            f"reward.thinking_rm.base_url={external} (an external thinking RM) and reward.reward_model.enable=true "
            "(verl serves one) are both set, and the verl-managed one would sit unused on its GPUs: set "
            "reward.reward_model.enable=false reward.reward_model.enable_resource_pool=false, or base_url=null"
        )
    if thinking_on and not external and not verl_managed:
        problems.append(
            "no thinking reward model: set reward.thinking_rm.base_url=http://host:port/v1 (external server) or "
            "reward.reward_model.enable=true (verl serves it)"
        )
    trust = None
    try:
        trust = TrustConfig.from_config(select(config, "algorithm.trust_grpo", None))
    except ValueError as exc:
        problems.append(str(exc))
    if trust is not None and trust.routes_advantages:
        problems.extend(_routing_problems(config, trust, estimator))
    if problems:
        raise ValueError("Trust-GRPO is not wired correctly:\n  - " + "\n  - ".join(problems))
    return trust


def _routing_problems(config: Any, trust: TrustConfig, estimator: str) -> list[str]:
    """Modes whose advantages the sampler hands to the estimator row by row need ``trust_grpo`` and no KL reward."""
    mode = f"algorithm.trust_grpo.normalize={trust.normalize} (whiten_batch={str(trust.whiten).lower()})"
    problems = []
    if estimator != ESTIMATOR_NAME:
        problems.append(
            f"{mode} passes each response's advantage to the {ESTIMATOR_NAME} estimator row by row; "
            f"algorithm.adv_estimator={estimator} would treat every row as its own group: set "
            f"algorithm.adv_estimator={ESTIMATOR_NAME}"
        )
    if bool(select(config, "algorithm.use_kl_in_reward", False)):
        problems.append(
            f"{mode} computes the advantage from Ro and Rt, so a KL penalty in the reward would be ignored: set "
            "algorithm.use_kl_in_reward=false (the recipe's KL is a loss term, actor_rollout_ref.actor.use_kl_loss)"
        )
    return problems


def _thinking_switch_problems(config: Any) -> list[str]:
    """Problems of ``reward.thinking_rm.enable`` / ``samples`` against the RM pool and the trust mode (any run)."""
    problems: list[str] = []
    try:
        ThinkingRMConfig.from_config(select(config, "reward.thinking_rm", None))
    except ValueError as exc:
        problems.append(str(exc))
    enable = select(config, "reward.thinking_rm.enable", True)
    if not isinstance(enable, bool):
        return problems  # ThinkingRMConfig reported it
    trust = str(select(config, "algorithm.trust_grpo.trust", TrustConfig.trust))
    if not enable:
        if bool(select(config, "reward.reward_model.enable", False)):
            problems.append(
                "reward.thinking_rm.enable=false but reward.reward_model.enable=true: verl would start a reward "
                "model pool that is never asked; set reward.reward_model.enable=false "
                "reward.reward_model.enable_resource_pool=false (the recipe sophiavl_grpo does)"
            )
        if trust != "off":
            problems.append(
                f"algorithm.trust_grpo.trust={trust} needs thinking scores, but reward.thinking_rm.enable=false: set "
                "algorithm.trust_grpo.trust=off, or enable the thinking reward"
            )
    samples = select(config, "reward.thinking_rm.samples", 1)
    try:
        samples = int(samples)
    except (TypeError, ValueError):
        samples = 1  # reported by ThinkingRMConfig
    if enable and trust == "variance" and samples < 2:
        problems.append(
            f"algorithm.trust_grpo.trust=variance needs reward.thinking_rm.samples >= 2 (got {samples}; the variance "
            "of one judge sample is always 0) and reward.thinking_rm.temperature > 0 (the recipe sophiavl_variance "
            "sets samples=3)"
        )
    return problems
