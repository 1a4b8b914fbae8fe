"""Trust-GRPO parameters (``algorithm.trust_grpo`` in the recipe), parsed and validated once.

The trust sampler, the ``trust_grpo`` estimator, the reward manager and the ``python -m sophiavl.rewards.trust``
command all read the same :class:`TrustConfig`, so a key means the same thing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

SEMANTICS = ("paper", "official")
ANNEAL_MODES = ("exp", "linear", "none")
#: ``algorithm.trust_grpo.trust``: the paper's per-group trust, no trust (gamma = 1), or per-response
#: ``exp(-variance)`` of K judge samples (the paper's design ablation, our reading of it).
TRUST_MODES = ("group", "off", "variance")
#: ``algorithm.trust_grpo.normalize``: how the advantage is normalised (docs/beyond-the-paper.md): the paper's
#: ``joint`` z(Ro + w * Rt'), GDPO-style ``decoupled`` z(Ro) + w * z_u(Rt'), PAPO-style ``papo`` z(Ro) + w * z_c(Rt').
NORMALIZE_MODES = ("joint", "decoupled", "papo")
#: ``algorithm.trust_grpo.gate``: ``none``, or ``correct`` (Posterior-GRPO: only correct responses keep Rt).
GATE_MODES = ("none", "correct")
#: TrustConfig fields that hold a mode name (strings; a YAML boolean there is a quoting mistake).
_STRING_KEYS = ("semantics", "anneal", "trust", "normalize", "gate")

#: The advantage estimator name registered by ``sophiavl.recipes.trust_grpo_estimator``.
ESTIMATOR_NAME = "trust_grpo"
#: ``trainer.v1.sampler.custom_sampler.{path,name}`` of the trust sampler (``sophiavl.recipes.trust_sampler``).
SAMPLER_PATH = "pkg://sophiavl.recipes.trust_sampler"
SAMPLER_NAME = "TrustSampler"
SAMPLER_KEY = "trainer.v1.sampler.custom_sampler"
#: Key under ``algorithm.trust_grpo`` whose value ``${sophiavl.check_trust_wiring:}`` runs
#: :func:`check_trust_wiring` when verl resolves the config (before any worker starts); not a TrustConfig field.
WIRING_CHECK_KEY = "check_wiring"


@dataclass(frozen=True)
class TrustConfig:
    """Trust-GRPO knobs.

    Attributes:
        semantics: ``"paper"`` (arXiv 2505.17018 Eq. 1-5) or ``"official"`` (the authors' released code: no RM call
            and ``Rt = 0`` below ``skip_rm_below``, no thinking reward for degenerate groups, no down-weighting when
            no response is correct).
        trust: ``"group"`` (the paper's trust weight per group, Eq. 3), ``"off"`` (gamma = 1: ablation "without
            trust") or ``"variance"`` (gamma_i = exp(-variance of response i's judge samples); needs
            ``reward.thinking_rm.samples`` >= 2 to mean anything).
        alpha: weight of the thinking reward, >= 0 (paper: 0.3).
        anneal: ``"exp"`` (exp(-step / T)), ``"linear"`` (max(0, 1 - step / T)) or ``"none"`` (1).
        anneal_T: annealing horizon T in training steps, > 0 (paper: total training steps; released code: 12000).
        correct_threshold: a response with ``Ro >= correct_threshold`` counts as correct (paper: 0.5).
        skip_rm_below: ``official`` only: responses with ``Ro < skip_rm_below`` are not judged, ``Rt = 0`` (0.2).
        degenerate_high: ``official`` only: a group whose outcomes are all ``>= degenerate_high`` gets no
            thinking reward (0.9).
        degenerate_low: ``official`` only: a group whose outcomes are all ``<= degenerate_low`` gets no thinking
            reward (0.1).
        normalize: ``"joint"`` (the paper), ``"decoupled"`` or ``"papo"`` (see
            :mod:`sophiavl.rewards.trust_variants`).
        gate: ``"none"`` or ``"correct"`` (Rt' = Rt for correct responses, 0 for wrong ones; gamma still comes from the
            ungated scores).
        whiten_batch: whiten the per-response advantages over the step's responses; ``None`` (the recipe's ``null``)
            takes the mode's default: on for ``decoupled``, off otherwise (see :attr:`whiten`).
    """

    semantics: str = "paper"
    trust: str = "group"
    alpha: float = 0.3
    anneal: str = "exp"
    anneal_T: float = 1500.0
    correct_threshold: float = 0.5
    skip_rm_below: float = 0.2
    degenerate_high: float = 0.9
    degenerate_low: float = 0.1
    normalize: str = "joint"
    gate: str = "none"
    whiten_batch: bool | None = None

    def __post_init__(self) -> None:
        if self.semantics not in SEMANTICS:
            raise ValueError(f"algorithm.trust_grpo.semantics must be one of {SEMANTICS}, got {self.semantics!r}")
        if self.trust not in TRUST_MODES:
            raise ValueError(f"algorithm.trust_grpo.trust must be one of {TRUST_MODES}, got {self.trust!r}")
        if self.anneal not in ANNEAL_MODES:
            raise ValueError(f"algorithm.trust_grpo.anneal must be one of {ANNEAL_MODES}, got {self.anneal!r}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"algorithm.trust_grpo.alpha must be a finite number >= 0, got {self.alpha!r}")
        if self.anneal != "none" and not (math.isfinite(self.anneal_T) and self.anneal_T > 0):
            raise ValueError(
                f"algorithm.trust_grpo.anneal_T must be > 0 for anneal={self.anneal!r}, got {self.anneal_T!r} "
                "(it defaults to trainer.total_training_steps: set that, or anneal_T itself)"
            )
        for name in ("correct_threshold", "skip_rm_below", "degenerate_high", "degenerate_low"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"algorithm.trust_grpo.{name} must lie in [0, 1], got {value!r}")
        _check_variant(self)

    @property
    def official(self) -> bool:
        """True under the released-code semantics."""
        return self.semantics == "official"

    @property
    def whiten(self) -> bool:
        """Whether the advantages are whitened over the step's responses (``whiten_batch``, or the mode's default)."""
        return self.normalize == "decoupled" if self.whiten_batch is None else self.whiten_batch

    @property
    def routes_advantages(self) -> bool:
        """True when the trust sampler computes the advantages itself and hands them to the estimator per row
        (every mode but the paper's joint normalisation without whitening; see
        :mod:`sophiavl.recipes.trust_advantage_routing`)."""
        return self.normalize != "joint" or self.whiten

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> TrustConfig:
        """Builds a config from the ``algorithm.trust_grpo`` node (a DictConfig or a plain dict).

        Missing keys take the defaults above; unknown keys raise ``ValueError`` naming them (a typo in an override
        must not be ignored). ``anneal_T: null`` raises unless ``anneal`` is ``"none"``.
        """
        if node is None:
            return cls()
        known = {f.name for f in fields(cls)}
        # read key by key, never the wiring-check key: its value is an interpolation whose resolver calls
        # check_trust_wiring, which calls this method
        values = {key: node[key] for key in node.keys() if key != WIRING_CHECK_KEY}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown keys under algorithm.trust_grpo: {unknown}; known keys: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, bool) and key in _STRING_KEYS:
                raise ValueError(
                    f"algorithm.trust_grpo.{key} must be a string, got {value!r} (YAML reads an unquoted off/on/no/yes "
                    f'as a boolean: write {key}: "off" in a YAML file; on the command line {key}=off works)'
                )
            if key in _STRING_KEYS:
                kwargs[key] = str(value)
            elif key == "whiten_batch":
                kwargs[key] = _optional_bool(value)
            elif value is None and key == "anneal_T":
                kwargs[key] = float("nan")
            else:
                kwargs[key] = float(value)
        return cls(**kwargs)


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"algorithm.trust_grpo.whiten_batch must be true, false or null, got {value!r}")


def _check_variant(cfg: TrustConfig) -> None:
    """Validates ``normalize`` / ``gate`` / ``whiten_batch`` (called by ``TrustConfig.__post_init__``)."""
    if cfg.normalize not in NORMALIZE_MODES:
        raise ValueError(f"algorithm.trust_grpo.normalize must be one of {NORMALIZE_MODES}, got {cfg.normalize!r}")
    if cfg.gate not in GATE_MODES:
        raise ValueError(f"algorithm.trust_grpo.gate must be one of {GATE_MODES}, got {cfg.gate!r}")
    if cfg.whiten_batch is not None and not isinstance(cfg.whiten_batch, bool):
        raise ValueError(f"algorithm.trust_grpo.whiten_batch must be true, false or null, got {cfg.whiten_batch!r}")
    if cfg.official and (cfg.normalize != "joint" or cfg.gate != "none" or cfg.whiten_batch):
        raise ValueError(
            "algorithm.trust_grpo.semantics=official reproduces the released code, which has no other normalisation, "
            f"gate or batch whitening (got normalize={cfg.normalize}, gate={cfg.gate}, whiten_batch="
            f"{cfg.whiten_batch}): use semantics=paper with these keys, or normalize=joint gate=none "
            "whiten_batch=null with official"
        )


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
    from sophiavl.rewards.thinking_config import ThinkingRMConfig  # lazy: keeps aiohttp out of plugin import

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
