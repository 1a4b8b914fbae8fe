"""Arithmetic of a verl 0.9.1 run's layout on a cluster: resource pools on nodes, rollout replicas, padded batches.

Pure functions on numbers (no verl, no Ray), used by ``python -m sophiavl.recipes.preflight``. Facts of verl 0.9.1
they encode:

* every resource pool is a list of per-node GPU counts (``[n_gpus_per_node] * nnodes``); each entry becomes one Ray
  placement group of that many bundles ``{"CPU": 3, "GPU": 1}`` (``RayResourcePool``, ``max_colocate_count=3``),
  placed with ``STRICT_PACK``: all on one node;
* a rollout (or reward-model) replica spans ``tensor x data x pipeline`` parallel GPUs; verl makes
  ``pool GPUs // replica GPUs`` replicas (rounded down, ``LLMServerManager``, ``RewardModelManager``);
* a training batch is padded with no-op rows up to a multiple of ``_get_required_batch_multiple`` (``padding_utils``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: CPUs verl reserves per GPU bundle of a resource pool (``ResourcePoolManager.max_colocate_count``).
CPUS_PER_GPU = 3


@dataclass
class Node:
    """One physical node and the placement groups put on it: ``(pool name, GPUs)``."""

    gpus: int
    cpus: int | None
    groups: list[tuple[str, int]] = field(default_factory=list)

    @property
    def used_gpus(self) -> int:
        return sum(g for _, g in self.groups)


def place_pools(
    pools: dict[str, list[int]],
    node_gpus: int,
    node_cpus: int | None = None,
    nodes: int | None = None,
) -> tuple[list[Node], list[str]]:
    """Places each pool's per-node entries (one placement group each) on nodes of ``node_gpus`` GPUs.

    First fit, largest group first, as few nodes as possible; a group needs ``gpus`` GPUs and ``3 * gpus`` CPUs on one
    node. ``node_cpus`` None: CPUs are not checked. ``nodes`` None: as many nodes as needed; else at most that many.
    Returns the nodes used and one problem line per group that does not fit (an entry larger than a node, or no room
    left on ``nodes`` nodes).
    """
    groups = sorted(
        ((name, gpus) for name, entries in pools.items() for gpus in entries), key=lambda g: g[1], reverse=True
    )
    placed: list[Node] = []
    problems: list[str] = []
    for name, gpus in groups:
        cpus = CPUS_PER_GPU * gpus
        if gpus > node_gpus or (node_cpus is not None and cpus > node_cpus):
            problems.append(
                f"pool {name}: one node's share is {gpus} GPUs and {cpus} CPUs (verl places it on a single node), but "
                f"a node has {node_gpus} GPUs" + (f" and {node_cpus} CPUs" if node_cpus is not None else "")
            )
            continue
        target = next((n for n in placed if _fits(n, gpus, cpus)), None)
        if target is None:
            if nodes is not None and len(placed) >= nodes:
                problems.append(
                    f"pool {name}: no room for {gpus} more GPUs on {nodes} node(s) of {node_gpus} GPUs (the pools need "
                    f"{sum(sum(e) for e in pools.values())} GPUs in all)"
                )
                continue
            target = Node(node_gpus, node_cpus)
            placed.append(target)
        target.groups.append((name, gpus))
    return placed, problems


def _fits(node: Node, gpus: int, cpus: int) -> bool:
    if node.used_gpus + gpus > node.gpus:
        return False
    return node.cpus is None or CPUS_PER_GPU * node.used_gpus + cpus <= node.cpus


def replica_problems(what: str, pool_gpus: int, tp: int, dp: int, pp: int, gpus_per_node: int) -> list[str]:
    """Problems of vLLM replicas of ``tp x dp x pp`` GPUs on a pool of ``pool_gpus`` GPUs (``what`` names the keys).

    verl makes ``pool_gpus // (tp * dp * pp)`` replicas: none when the replica is larger than the pool (verl fails at
    start-up or serves nothing), and idle GPUs when it does not divide the pool. A replica wider than a node must span
    whole nodes (``gpus_per_node`` must divide it).
    """
    size = tp * dp * pp
    problems = []
    if size > pool_gpus:
        problems.append(
            f"{what}: a replica needs TP x DP x PP = {tp} x {dp} x {pp} = {size} GPUs, the pool has {pool_gpus}"
        )
    elif pool_gpus % size:
        problems.append(
            f"{what}: TP x DP x PP = {size} does not divide the pool's {pool_gpus} GPUs: verl starts "
            f"{pool_gpus // size} replica(s) and leaves {pool_gpus % size} GPU(s) without one"
        )
    per_node = min(gpus_per_node, size)
    if per_node and size % per_node:
        problems.append(f"{what}: a replica of {size} GPUs does not span whole nodes of {gpus_per_node} GPUs")
    return problems


def padded_rows(rows: int, multiple: int) -> int:
    """Rows verl adds to a batch of ``rows`` rows so that ``multiple`` divides it (0 when it already does)."""
    return (-rows) % multiple if multiple > 0 else 0
