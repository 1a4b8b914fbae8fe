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
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sophiavl.recipes.cluster_layout import CPUS_PER_GPU, padded_rows, place_pools, replica_problems

#: Hydra app (config name in ``verl.trainer.config``) of each entry point.
ENTRIES = {"ppo": "ppo_trainer", "sft": "sft_trainer_engine"}
ENTRY_MODULES = {"ppo": "verl.trainer.main_ppo", "sft": "verl.trainer.sft_trainer"}


@dataclass
class Report:
    """What a pre-flight check found: layout lines to print and problem lines (empty: the run may start)."""

    layout: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def run(self, what: str, check: Callable[[], Any]) -> Any:
        """Runs ``check``; an exception becomes problem lines prefixed by ``what``. Returns its result or None."""
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # verl prints "checks passed" banners
                result = check()
        except Exception as exc:  # noqa: BLE001  (every failure of a check is a problem to report)
            self.problems.extend(f"{what}: {line}" for line in problem_lines(exc))
            return None
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
    _ppo_layout(cfg, trainer, report, node_gpus, node_cpus, nodes)
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


def _actor_dp(cfg: Any, gpus: int) -> int:
    actor = cfg.actor_rollout_ref.actor
    if _get(cfg, "actor_rollout_ref.actor.strategy", "fsdp") == "megatron":
        m = actor.megatron
        return gpus // max(1, m.tensor_model_parallel_size * m.pipeline_model_parallel_size * m.context_parallel_size)
    return gpus // max(1, int(_get(cfg, "actor_rollout_ref.actor.ulysses_sequence_parallel_size", 1)))


def _ppo_layout(cfg: Any, trainer: Any, report: Report, node_gpus: int, node_cpus: int | None, nodes: int | None):
    trainer_nodes, per_node = int(cfg.trainer.nnodes), int(cfg.trainer.n_gpus_per_node)
    gpus = trainer_nodes * per_node
    rm = cfg.reward.reward_model
    pools = {"global_pool": [per_node] * trainer_nodes}
    if bool(rm.enable_resource_pool):
        pools["reward_pool"] = [int(rm.n_gpus_per_node)] * int(rm.nnodes)
    if trainer is not None and getattr(trainer, "resource_pool_manager", None) is not None:
        pools = {k: list(v) for k, v in trainer.resource_pool_manager.resource_pool_spec.items()}

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

    ro = cfg.actor_rollout_ref.rollout
    tp, dp_r, pp = int(ro.tensor_model_parallel_size), int(ro.data_parallel_size), int(ro.pipeline_model_parallel_size)
    roles = "actor + rollout" + (" + reference" if _get(cfg, "actor_rollout_ref.actor.use_kl_loss", False) else "")
    report.layout.append(
        f"pool global_pool: {trainer_nodes} x {per_node} GPUs: {roles}; {gpus // max(1, tp * dp_r * pp)} vLLM "
        f"replica(s) of TP {tp} x DP {dp_r} x PP {pp}"
    )
    hybrid = replica_problems(
        "actor_rollout_ref.rollout.{tensor,data,pipeline}_model_parallel_size", gpus, tp, dp_r, pp, per_node
    )
    # the hybrid workers assert it (ActorRolloutRefWorker.init_model): idle GPUs are not an option there
    report.problems.extend(p.replace("leaves", "fails (verl asserts it) and would leave") for p in hybrid)
    judge_replicas = 0
    if bool(rm.enable):
        rr = rm.rollout
        rtp, rdp, rpp = (
            int(rr.tensor_model_parallel_size),
            int(rr.data_parallel_size),
            int(rr.pipeline_model_parallel_size),
        )
        rm_gpus = int(rm.nnodes) * int(rm.n_gpus_per_node) if bool(rm.enable_resource_pool) else gpus
        judge_replicas = rm_gpus // max(1, rtp * rdp * rpp)
        where = "reward_pool" if bool(rm.enable_resource_pool) else "global_pool (colocated)"
        report.layout.append(
            f"pool {where}: reward model {rm.model_path}; {judge_replicas} vLLM replica(s) of "
            f"TP {rtp} x DP {rdp} x PP {rpp}"
        )
        report.problems.extend(
            replica_problems(
                "reward.reward_model.rollout.{tensor,data,pipeline}_model_parallel_size",
                rm_gpus,
                rtp,
                rdp,
                rpp,
                int(rm.n_gpus_per_node),
            )
        )

    if bool(_get(cfg, "trainer.val_only", False)):
        report.layout.append("validation only (trainer.val_only=true): no training step")
        return
    _batch_layout(cfg, trainer, report, gpus)


def _batch_layout(cfg: Any, trainer: Any, report: Report, gpus: int) -> None:
    import math

    n = int(cfg.actor_rollout_ref.rollout.n)
    prompts = int(cfg.data.train_batch_size)
    sync_steps = 1
    if trainer is not None:
        sync_steps = int(getattr(trainer, "parameter_sync_step", 1) or 1)
    rows = prompts // sync_steps * n
    dp = _actor_dp(cfg, gpus)
    mini = int(cfg.actor_rollout_ref.actor.ppo_mini_batch_size) * n
    multiple = trainer._get_required_batch_multiple(dp) if trainer is not None else math.lcm(dp, mini)
    pad = padded_rows(rows, multiple)
    epochs = int(_get(cfg, "actor_rollout_ref.actor.ppo_epochs", 1))
    report.layout.append(
        f"rows per step: {rows * sync_steps} ({prompts} prompts x {n} responses"
        + (f", in {sync_steps} updates of {rows}" if sync_steps > 1 else "")
        + ")"
    )
    report.layout.append(f"rows per GPU: {(rows + pad) / dp:g} (actor data-parallel size {dp})")
    report.layout.append(f"pad rows per step: {pad * sync_steps} (verl pads each update to a multiple of {multiple})")
    report.layout.append(
        f"optimizer steps per rollout batch: {(rows + pad) // mini * epochs * sync_steps} (mini-batch "
        f"{mini // n} prompts = {mini} rows, {epochs} epoch(s))"
    )
    if dp and mini % dp:
        report.problems.append(
            f"actor_rollout_ref.actor.ppo_mini_batch_size * rollout.n = {mini} rows does not divide by the actor's "
            f"data-parallel size {dp}: verl's update_actor asserts it at the first step; choose a mini-batch whose "
            f"rows divide by {dp}"
        )
    if pad:
        report.problems.append(
            f"{rows} rows per update do not divide by {multiple} (lcm of data-parallel size {dp} and the mini-batch of "
            f"{mini} rows): verl pads every step with {pad} no-op rows ({pad / (rows + pad):.0%} of the compute)"
        )
    if rows < mini:
        report.problems.append(
            f"data.train_batch_size={prompts} is smaller than actor_rollout_ref.actor.ppo_mini_batch_size={mini // n}"
        )
    if bool(_get(cfg, "reward.thinking_rm.enable", False)):
        samples = int(_get(cfg, "reward.thinking_rm.samples", 1))
        official = _get(cfg, "algorithm.trust_grpo.semantics", "paper") == "official"
        target = _get(cfg, "reward.thinking_rm.base_url") or "the verl-served reward model"
        report.layout.append(
            f"judge requests per step: {'at most ' if official else ''}{rows * sync_steps} ({samples} sample(s) each) "
            f"to {target}"
        )
    else:
        report.layout.append("judge requests per step: 0 (reward.thinking_rm.enable=false)")


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
    gpus = int(cfg.trainer.nnodes) * int(cfg.trainer.n_gpus_per_node)
    sp = int(_get(cfg, "engine.ulysses_sequence_parallel_size", 1))
    dp = max(1, gpus // max(1, sp))
    batch = int(cfg.data.train_batch_size)
    report.layout.append(
        f"GPUs: {gpus} ({cfg.trainer.nnodes} node(s) x {cfg.trainer.n_gpus_per_node}; torchrun --nnodes="
        f"{cfg.trainer.nnodes} --nproc-per-node={cfg.trainer.n_gpus_per_node}), data-parallel size {dp}"
    )
    report.layout.append(f"rows per optimizer step: {batch}; rows per GPU: {batch // dp}")
    if batch % dp:
        report.problems.append(
            f"data.train_batch_size={batch} does not divide by the data-parallel size {dp}: verl rounds each rank's "
            f"share down to {batch // dp} rows, so a step trains on {batch // dp * dp} rows, not {batch}"
        )
    if int(cfg.trainer.n_gpus_per_node) > node_gpus:
        report.problems.append(
            f"trainer.n_gpus_per_node={cfg.trainer.n_gpus_per_node} but a node has {node_gpus} GPUs (--node-gpus)"
        )
    if batch < dp:
        report.problems.append(
            f"data.train_batch_size={batch} is smaller than the data-parallel size {dp}: 0 rows per GPU"
        )
    return report


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
