"""Pre-flight check of a run's config and its layout on the cluster, in seconds, before GPU hours are spent.

    python -m sophiavl.recipes.preflight +recipe=sophiavl [Hydra overrides]
    python -m sophiavl.recipes.preflight --entry sft +recipe=sophiavl_trm [Hydra overrides]

Composes the config exactly as the entry point does (``verl.trainer.main_ppo`` or ``verl.trainer.sft_trainer``: the
same Hydra app and overrides), then runs what verl checks without GPUs or Ray workers, and what verl only finds out
once the workers run:

* ``main_ppo``: ``validate_config`` (with ``need_reference_policy`` / ``need_critic``), the resolvers (our wiring check
  and config traps included), building the trainer class and its sampler, ``_init_resource_pool_mgr``,
  ``_get_required_batch_multiple``, the dataclass conversions of the workers' configs; then
  ``(ppo_mini_batch_size * n) % data-parallel size``, the rollout's TP x DP x PP against the trainer's GPUs (and the
  reward model's against its pool), and the placement of each pool on nodes of ``--node-gpus`` GPUs with verl's 3 CPUs
  per GPU;
* ``sft_trainer``: the resolvers, the dataclass conversions, and the split of ``data.train_batch_size`` over the
  data-parallel ranks (verl rounds it down without a word).

It prints the layout (nodes, pools and their GPUs, rows per step, rows per GPU, pad rows per step, optimizer steps per
rollout batch, judge requests per step) and exits 1 with one line per problem. It needs no GPU, no Ray, no model and no
data (the model's own config is read only when ``model.path`` is a local directory).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sophiavl.recipes.cluster_layout import CPUS_PER_GPU, padded_rows, place_pools, replica_problems
from sophiavl.recipes.preflight_values import ConfigValues

#: Hydra app (config name in ``verl.trainer.config``) of each entry point.
ENTRIES = {"ppo": "ppo_trainer", "sft": "sft_trainer_engine"}
ENTRY_MODULES = {"ppo": "verl.trainer.main_ppo", "sft": "verl.trainer.sft_trainer"}


@dataclass
class Report:
    """What a pre-flight check found: layout lines to print and problem lines (empty: the run may start)."""

    layout: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def run(self, what: str, check: Callable[[], Any], record: bool = True) -> Any:
        """Runs ``check``; an exception becomes problem lines prefixed by ``what`` (the problems and layout lines the
        check added before it are kept). Returns its result or None. ``record``: name ``what`` among the passed
        checks when it passes."""
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # verl prints "checks passed" banners
                result = check()
        except Exception as exc:  # noqa: BLE001  (every failure of a check is a problem to report)
            self.problems.extend(f"{what}: {line}" for line in problem_lines(exc))
            return None
        if record:
            self.checked.append(what)
        return result


def problem_lines(exc: BaseException) -> list[str]:
    """One line per problem in an exception's message: bullet lists (``\\n  - ``) split, Hydra's and OmegaConf's
    wrappers (``full_key:``, ``ValueError raised while resolving interpolation:``) trimmed, other newlines joined."""
    text = str(exc) or type(exc).__name__
    text = re.sub(r"^\w+ raised while resolving interpolation: ", "", text)
    text = "\n".join(line for line in text.splitlines() if not re.match(r"\s*(full_key|object_type)[:=]", line))
    head, *items = re.split(r"\n\s+- ", text)
    lines = [" ".join(item.split()) for item in items]
    head = " ".join(head.split())
    if not lines or not head.endswith(":"):
        lines.insert(0, head)
    return [line for line in lines if line]


def compose(entry: str, overrides: Sequence[str]):
    """The config ``python -m <entry point> <overrides>`` runs with (same Hydra app, same overrides)."""
    import verl  # noqa: F401  (loads the verl.plugins entry points: the recipe group, our resolver)
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("verl.trainer.config", version_base=None):
        return hydra_compose(ENTRIES[entry], overrides=list(overrides))


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    from omegaconf import OmegaConf

    try:
        value = OmegaConf.select(cfg, key, default=default)
    except Exception:  # noqa: BLE001  (an unresolvable value is reported by the resolve check)
        return default
    return default if value is None else value


def _local_model(cfg: Any, key: str) -> bool:
    path = _get(cfg, key)
    return bool(path) and os.path.isdir(str(path))


# ---------------------------------------------------------------------------------------------------------- main_ppo
def check_ppo(cfg: Any, node_gpus: int, node_cpus: int | None, nodes: int | None) -> Report:
    """The pre-flight report of a composed ``main_ppo`` config on nodes of ``node_gpus`` GPUs (and ``node_cpus``
    CPUs, None: unchecked; at most ``nodes`` nodes, None: as many as needed)."""
    from omegaconf import OmegaConf, open_dict
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    report = Report()
    use_ref, use_critic = need_reference_policy(cfg), need_critic(cfg)
    report.run(
        "verl validate_config", lambda: validate_config(cfg, use_reference_policy=use_ref, use_critic=use_critic)
    )

    def resolve() -> None:  # as TaskRunner.run does before it builds the trainer
        with open_dict(cfg):
            cfg.transfer_queue.enable = True
        OmegaConf.to_container(cfg, resolve=True)
        OmegaConf.resolve(cfg)

    report.run("resolving the config", resolve)
    resolved = "resolving the config" in report.checked

    conversions = [("actor_rollout_ref.rollout", None), ("actor_rollout_ref.rollout.checkpoint_engine", None)]
    if use_critic:
        conversions.append(("critic", None))
    if bool(_get(cfg, "reward.reward_model.enable", False)):
        conversions.append(("reward.reward_model.rollout", None))
    for key, _ in conversions:
        report.run(f"verl's {key} config", lambda key=key: omega_conf_to_dataclass(OmegaConf.select(cfg, key)))
    if use_ref:
        report.run("verl's actor_rollout_ref.ref config", lambda: omega_conf_to_dataclass(_ref_as_worker_builds(cfg)))
    if _local_model(cfg, "actor_rollout_ref.model.path"):
        report.run("verl's model config", lambda: omega_conf_to_dataclass(cfg.actor_rollout_ref.model))

    trainer = None
    if resolved and bool(_get(cfg, "trainer.use_v1", False)):
        trainer = report.run("building verl's trainer and its sampler", lambda: _build_trainer(cfg))
    if trainer is not None:
        report.run("verl's resource pools (_init_resource_pool_mgr)", trainer._init_resource_pool_mgr)
    # the layout reads every value through ConfigValues (a bad one is a problem line); the guard only turns a
    # failure nobody foresaw into a problem line too, keeping what was found before it
    report.run("the layout check", lambda: _ppo_layout(cfg, trainer, report, node_gpus, node_cpus, nodes), record=False)
    return report


def _ref_as_worker_builds(cfg: Any) -> Any:
    """``actor_rollout_ref.ref`` renamed as ``ActorRolloutRefWorker.init_model`` renames it before converting it."""
    from omegaconf import OmegaConf, open_dict

    ref = OmegaConf.create(OmegaConf.to_container(cfg.actor_rollout_ref.ref, resolve=True))
    with open_dict(ref):
        ref.ppo_mini_batch_size = cfg.actor_rollout_ref.actor.ppo_mini_batch_size
        ref.ppo_micro_batch_size = ref.pop("log_prob_micro_batch_size", None)
        ref.ppo_micro_batch_size_per_gpu = ref.pop("log_prob_micro_batch_size_per_gpu", None)
        ref.use_dynamic_bsz = ref.pop("log_prob_use_dynamic_bsz", False)
        ref.ppo_max_token_len_per_gpu = ref.pop("log_prob_max_token_len_per_gpu", None)
    return ref


def _build_trainer(cfg: Any) -> Any:
    """verl's trainer class for ``trainer.v1.trainer_mode``, constructed (its sampler included) without workers."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls(cfg.trainer.v1.trainer_mode)(config=cfg)
    trainer.global_steps = 1  # the first training step (fit() sets it)
    return trainer


def _actor_dp(v: ConfigValues, gpus: int, gpu_words: str) -> tuple[int | None, str]:
    """The actor's data-parallel size on ``gpus`` GPUs (``gpu_words`` says where they come from) and how it comes
    about (keys named), or None (a problem recorded) when its model-parallel sizes are bad or do not divide them."""
    if v.text("actor_rollout_ref.actor.strategy", "fsdp") == "megatron":
        keys = [
            f"actor_rollout_ref.actor.megatron.{k}_parallel_size" for k in ("tensor_model", "pipeline_model", "context")
        ]
        sizes = [v.count(k) for k in keys]
        if None in sizes:
            return None, ""
        model = sizes[0] * sizes[1] * sizes[2]
        what = " x ".join(f"{k}={s}" for k, s in zip(keys, sizes, strict=True))
    else:
        key = "actor_rollout_ref.actor.ulysses_sequence_parallel_size"
        model = v.count(key)
        if model is None:
            return None, ""
        what = f"{key}={model}"
    if gpus % model:
        v.problem(what.split("=")[0], f"{what} does not divide the trainer's {gpu_words}: no data-parallel layout")
        return None, ""
    return gpus // model, f"{gpu_words}" + (f" / {what}" if model > 1 else "")


def _ppo_layout(cfg: Any, trainer: Any, report: Report, node_gpus: int, node_cpus: int | None, nodes: int | None):
    v = ConfigValues(cfg, report.problems)
    trainer_nodes, per_node = v.count("trainer.nnodes"), v.count("trainer.n_gpus_per_node")
    gpus = trainer_nodes * per_node if trainer_nodes and per_node else None
    rm_enable = v.flag("reward.reward_model.enable")
    rm_own_pool = v.flag("reward.reward_model.enable_resource_pool")
    rm_nodes = rm_per_node = None
    pools: dict[str, list[int]] = {}
    if gpus:
        pools["global_pool"] = [per_node] * trainer_nodes
    if rm_own_pool:
        rm_nodes, rm_per_node = v.count("reward.reward_model.nnodes"), v.count("reward.reward_model.n_gpus_per_node")
        if rm_nodes and rm_per_node:
            pools["reward_pool"] = [rm_per_node] * rm_nodes
    spec = getattr(trainer, "resource_pool_manager", None)
    spec = getattr(spec, "resource_pool_spec", None) or {}
    if gpus and all(isinstance(g, int) and not isinstance(g, bool) for e in spec.values() for g in e):
        pools = {name: list(entries) for name, entries in spec.items()} or pools

    if trainer is not None:
        report.layout.append(
            f"sampler: {type(trainer.replay_buffer).__name__}; advantage estimator: {cfg.algorithm.adv_estimator}"
        )
    placed, problems = place_pools(pools, node_gpus, node_cpus, nodes)
    report.problems.extend(problems)
    report.layout.append(f"nodes: {len(placed)} of {node_gpus} GPUs" + (f" (at most {nodes})" if nodes else ""))
    for i, node in enumerate(placed):
        groups = ", ".join(f"{name} {g} GPUs" for name, g in node.groups)
        report.layout.append(
            f"  node {i}: {groups}; {node.used_gpus}/{node_gpus} GPUs, {CPUS_PER_GPU * node.used_gpus} CPUs reserved"
        )

    replica = _replica_sizes(v, "actor_rollout_ref.rollout")
    if gpus and replica:
        tp, dp_r, pp = replica
        roles = "actor + rollout" + (" + reference" if v.flag("actor_rollout_ref.actor.use_kl_loss") else "")
        report.layout.append(
            f"pool global_pool: {trainer_nodes} x {per_node} GPUs: {roles}; {gpus // (tp * dp_r * pp)} vLLM "
            f"replica(s) of TP {tp} x DP {dp_r} x PP {pp}"
        )
        hybrid = replica_problems(
            "actor_rollout_ref.rollout.{tensor,data,pipeline}_model_parallel_size", gpus, tp, dp_r, pp, per_node
        )
        # the hybrid workers assert it (ActorRolloutRefWorker.init_model): idle GPUs are not an option there
        report.problems.extend(p.replace("leaves", "fails (verl asserts it) and would leave") for p in hybrid)
    if rm_enable:
        rm_gpus = (rm_nodes * rm_per_node if rm_nodes and rm_per_node else None) if rm_own_pool else gpus
        rm_replica = _replica_sizes(v, "reward.reward_model.rollout")
        if rm_gpus and rm_replica:
            rtp, rdp, rpp = rm_replica
            where = "reward_pool" if rm_own_pool else "global_pool (colocated)"
            report.layout.append(
                f"pool {where}: reward model {v.text('reward.reward_model.model_path')}; "
                f"{rm_gpus // (rtp * rdp * rpp)} vLLM replica(s) of TP {rtp} x DP {rdp} x PP {rpp}"
            )
            report.problems.extend(
                replica_problems(
                    "reward.reward_model.rollout.{tensor,data,pipeline}_model_parallel_size",
                    rm_gpus,
                    rtp,
                    rdp,
                    rpp,
                    rm_per_node if rm_own_pool else per_node,
                )
            )

    if v.flag("trainer.val_only"):
        report.layout.append("validation only (trainer.val_only=true): no training step")
        return
    gpu_words = f"{gpus} GPUs (trainer.nnodes={trainer_nodes} x trainer.n_gpus_per_node={per_node})"
    _batch_layout(v, trainer, report, gpus, gpu_words)


def _replica_sizes(v: ConfigValues, section: str) -> tuple[int, int, int] | None:
    """``(tensor, data, pipeline)`` parallel sizes of a vLLM replica under ``section``; None when one is bad."""
    sizes = [v.count(f"{section}.{k}_parallel_size") for k in ("tensor_model", "data", "pipeline_model")]
    return None if None in sizes else (sizes[0], sizes[1], sizes[2])


def _batch_layout(v: ConfigValues, trainer: Any, report: Report, gpus: int | None, gpu_words: str) -> None:
    n = v.count("actor_rollout_ref.rollout.n")
    prompts = v.count("data.train_batch_size")
    mini_prompts = v.count("actor_rollout_ref.actor.ppo_mini_batch_size")
    epochs = v.count("actor_rollout_ref.actor.ppo_epochs")
    dp, dp_words = _actor_dp(v, gpus, gpu_words) if gpus else (None, "")
    if v.flag("reward.thinking_rm.enable"):
        samples = v.count("reward.thinking_rm.samples")
    else:
        samples = 0
    if None in (n, prompts, mini_prompts, epochs, dp):
        _micro_batch_problems(v, None, None, "", "")
        report.layout.append("rows per step: not computed (see the problems)")
        return
    sync_steps = int(getattr(trainer, "parameter_sync_step", 1) or 1) if trainer is not None else 1
    rows = prompts // sync_steps * n
    mini = mini_prompts * n
    multiple = math.lcm(dp, mini)
    if trainer is not None:
        multiple = report.run(
            "verl's _get_required_batch_multiple", lambda: trainer._get_required_batch_multiple(dp), record=False
        )
        multiple = multiple if isinstance(multiple, int) and multiple > 0 else math.lcm(dp, mini)
    pad = padded_rows(rows, multiple)
    report.layout.append(
        f"rows per step: {rows * sync_steps} ({prompts} prompts x {n} responses"
        + (f", in {sync_steps} updates of {rows}" if sync_steps > 1 else "")
        + ")"
    )
    report.layout.append(f"rows per GPU: {(rows + pad) / dp:g} (actor data-parallel size {dp})")
    report.layout.append(f"pad rows per step: {pad * sync_steps} (verl pads each update to a multiple of {multiple})")
    report.layout.append(
        f"optimizer steps per rollout batch: {(rows + pad) // mini * epochs * sync_steps} (mini-batch "
        f"{mini_prompts} prompts = {mini} rows, {epochs} epoch(s))"
    )
    mini_words = f"actor_rollout_ref.actor.ppo_mini_batch_size={mini_prompts} x actor_rollout_ref.rollout.n={n}"
    rows_words = f"data.train_batch_size={prompts} x actor_rollout_ref.rollout.n={n}"
    if mini % dp:
        report.problems.append(
            f"{mini_words} = {mini} rows does not divide by the actor's data-parallel size {dp} ({dp_words}): verl's "
            f"update_actor asserts it at the first step; choose a mini-batch whose rows divide by {dp}"
        )
    if pad:
        report.problems.append(
            f"{rows} rows per update ({rows_words}) do not divide by {multiple} (lcm of data-parallel size {dp} and "
            f"the mini-batch of {mini} rows, {mini_words}): verl pads every step with {pad} no-op rows "
            f"({pad / (rows + pad):.0%} of the compute)"
        )
    if rows < mini:
        report.problems.append(
            f"data.train_batch_size={prompts} is smaller than "
            f"actor_rollout_ref.actor.ppo_mini_batch_size={mini_prompts}"
        )
    per_gpu = f"{(rows + pad) // dp} rows per GPU ({rows_words}" + (f" + {pad} pad rows" if pad else "")
    per_gpu += f" over data-parallel size {dp})"
    mini_per_gpu = f"{mini // dp} rows per GPU ({mini_words} over data-parallel size {dp})"
    _micro_batch_problems(
        v,
        (rows + pad) // dp if (rows + pad) % dp == 0 else None,
        mini // dp if mini % dp == 0 else None,
        per_gpu,
        mini_per_gpu,
    )
    if samples is None:
        return
    if samples:
        official = v.text("algorithm.trust_grpo.semantics", "paper") == "official"
        target = v.text("reward.thinking_rm.base_url") or "the verl-served reward model"
        report.layout.append(
            f"judge requests per step: {'at most ' if official else ''}{rows * sync_steps} ({samples} sample(s) each) "
            f"to {target}"
        )
    else:
        report.layout.append("judge requests per step: 0 (reward.thinking_rm.enable=false)")


#: verl 0.9.1's engine workers split each per-GPU batch into micro-batches of these sizes when the dynamic-batch flag
#: beside them is false (``prepare_micro_batches``: ``len(batch) // size`` chunks, after asserting that ``size``
#: divides ``len(batch)``; ``ActorRolloutRefWorker.init_model`` asserts the actor's and the rollout's are not null).
#: Null is legal only with dynamic batches; the deprecated global ``*_micro_batch_size`` keys are not read by them.
#: ``(key, its dynamic-batch flag, which per-GPU batch it splits: "update" (a mini-batch) or "log_prob" (the step))``
MICRO_BATCH_KEYS = (
    ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", "actor_rollout_ref.actor.use_dynamic_bsz", "update"),
    (
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
        "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz",
        "log_prob",
    ),
    (
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu",
        "actor_rollout_ref.ref.log_prob_use_dynamic_bsz",
        "log_prob",
    ),
)


def _micro_batch_problems(
    v: ConfigValues, step_rows: int | None, mini_rows: int | None, step_words: str, mini_words: str
) -> None:
    """Problems of the micro-batch sizes verl divides by: each must be an integer >= 1 unless its dynamic-batch flag
    is on, and divide the per-GPU batch it splits (``step_rows`` for the log-prob passes, ``mini_rows`` for the
    update; None: unknown, not checked). The reference's only when a reference policy runs."""
    use_ref = v.flag("actor_rollout_ref.actor.use_kl_loss") or v.flag("algorithm.use_kl_in_reward")
    actor_dyn = v.flag("actor_rollout_ref.actor.use_dynamic_bsz")
    rollout_dyn = v.flag("actor_rollout_ref.rollout.log_prob_use_dynamic_bsz", default=bool(actor_dyn))
    if actor_dyn is not None and rollout_dyn is not None and actor_dyn != rollout_dyn:
        v.problem(
            "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz",
            f"actor_rollout_ref.rollout.log_prob_use_dynamic_bsz={rollout_dyn} differs from "
            f"actor_rollout_ref.actor.use_dynamic_bsz={actor_dyn}: verl's ActorRolloutRefWorker asserts they are equal",
        )
    for key, dyn_key, splits in MICRO_BATCH_KEYS:
        if key.startswith("actor_rollout_ref.ref.") and not use_ref:
            continue
        if v.flag(dyn_key, default=bool(actor_dyn)) is not False:
            continue  # dynamic batches (or a bad flag, already a problem): the size is not read
        size = v.count(key, null_means=f"{dyn_key}=false, so verl splits each per-GPU batch into micro-batches of it")
        rows, words = (mini_rows, mini_words) if splits == "update" else (step_rows, step_words)
        if size is not None and rows is not None and rows % size:
            v.problem(
                key,
                f"{key}={size} does not divide the {words}: verl's prepare_micro_batches asserts it at the first step",
            )


# ------------------------------------------------------------------------------------------------------- sft_trainer
def check_sft(cfg: Any, node_gpus: int) -> Report:
    """The pre-flight report of a composed ``sft_trainer`` config on nodes of ``node_gpus`` GPUs (GPUs:
    ``trainer.nnodes * n_gpus_per_node``, which must equal torchrun's world size)."""
    from omegaconf import OmegaConf
    from verl.utils.config import omega_conf_to_dataclass

    report = Report()
    report.run("resolving the config", lambda: OmegaConf.resolve(cfg))
    for key in ("engine", "optim", "checkpoint", "profiler"):
        report.run(f"verl's {key} config", lambda key=key: omega_conf_to_dataclass(cfg[key]))
    if _local_model(cfg, "model.path"):
        report.run("verl's model config", lambda: omega_conf_to_dataclass(cfg.model))
    report.run("the layout check", lambda: _sft_layout(cfg, report, node_gpus), record=False)
    return report


def _sft_layout(cfg: Any, report: Report, node_gpus: int) -> None:
    v = ConfigValues(cfg, report.problems)
    nnodes, per_node = v.count("trainer.nnodes"), v.count("trainer.n_gpus_per_node")
    sp_key = "engine.ulysses_sequence_parallel_size"
    sp = v.count(sp_key)
    batch = v.count("data.train_batch_size")
    if per_node is not None and per_node > node_gpus:
        report.problems.append(f"trainer.n_gpus_per_node={per_node} but a node has {node_gpus} GPUs (--node-gpus)")
    if not (nnodes and per_node and sp):
        return
    gpus = nnodes * per_node
    if gpus % sp:
        v.problem(sp_key, f"{sp_key}={sp} does not divide the {gpus} GPUs (trainer.nnodes x trainer.n_gpus_per_node)")
        return
    dp = gpus // sp
    dp_words = f"data-parallel size {dp} ({gpus} GPUs: trainer.nnodes={nnodes} x trainer.n_gpus_per_node={per_node}"
    dp_words += f" / {sp_key}={sp})" if sp > 1 else ")"
    report.layout.append(
        f"GPUs: {gpus} ({nnodes} node(s) x {per_node}; torchrun --nnodes={nnodes} --nproc-per-node={per_node}), "
        f"data-parallel size {dp}"
    )
    if batch is None:
        return
    report.layout.append(f"rows per optimizer step: {batch}; rows per GPU: {batch // dp}")
    if batch % dp:
        report.problems.append(
            f"data.train_batch_size={batch} does not divide by the {dp_words}: verl rounds each rank's "
            f"share down to {batch // dp} rows, so a step trains on {batch // dp * dp} rows, not {batch}"
        )
    if batch < dp:
        report.problems.append(f"data.train_batch_size={batch} is smaller than the {dp_words}: 0 rows per GPU")
    elif v.flag("data.use_dynamic_bsz") is False:
        key = "data.micro_batch_size_per_gpu"
        size = v.count(key, null_means="data.use_dynamic_bsz=false, so verl splits each rank's rows by it")
        if size is not None and (batch // dp) % size:
            v.problem(
                key,
                f"{key}={size} does not divide the {batch // dp} rows per GPU (data.train_batch_size={batch} over "
                f"data-parallel size {dp}): verl's prepare_micro_batches asserts it",
            )


# -------------------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """Runs the check; prints the layout and the problems. Returns 0 when the run may start, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m sophiavl.recipes.preflight",
        description="Check a verl run's config and its layout on the cluster without GPUs, Ray or data. Arguments "
        "that are not options are Hydra overrides, as on the entry point's command line (+recipe=NAME key=value ...).",
    )
    parser.add_argument(
        "--entry", choices=sorted(ENTRIES), default="ppo", help="ppo: main_ppo (default); sft: sft_trainer"
    )
    parser.add_argument("--node-gpus", type=int, default=8, help="GPUs per node of the cluster (default 8)")
    parser.add_argument("--node-cpus", type=int, default=None, help="CPUs per node (default: not checked)")
    parser.add_argument(
        "--nodes", type=int, default=None, help="nodes available (default: as many as the layout needs)"
    )
    args, overrides = parser.parse_known_args(argv)
    warnings.filterwarnings("ignore")  # verl's import-time notices (engines not installed, deprecations)
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        parser.error(f"unknown options {unknown}")

    print(f"preflight: python -m {ENTRY_MODULES[args.entry]} {' '.join(overrides)}")
    report = Report()
    cfg = report.run("composing the config", lambda: compose(args.entry, overrides))
    if cfg is not None:
        if args.entry == "sft":
            report = check_sft(cfg, args.node_gpus)
        else:
            report = check_ppo(cfg, args.node_gpus, args.node_cpus, args.nodes)
    for line in report.layout:
        print(f"  {line}")
    if report.problems:
        print(f"{len(report.problems)} problem(s):")
        for line in report.problems:
            print(f"problem: {line}")
        return 1
    print(f"ok: {', '.join(report.checked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
