"""A Ray cluster of several nodes on this one machine, for `make demo DEMO_ARGS="--nodes 2 --rm verl"` (docs/cpu.md).

Ray's own tool for testing clusters, ``ray.cluster_utils.Cluster``, starts a head node and further nodes (one raylet
each, sharing one GCS) as processes of this machine. Each node gets the fake GPUs as Ray's built-in ``GPU`` resource
(verl counts GPU/NPU only, and vLLM's launch looks the accelerator ids up by that name) and enough logical CPUs for
verl's placement-group bundles (3 CPUs per GPU), TransferQueue's actors and the agent-loop and reward workers.

Run as a process by ``start`` below (demo.py, step 3b):

    python examples/cpu/ray_cluster.py --nodes 2 --info WORKDIR/ray_nodes.json

It starts the nodes, writes the info file (the GCS address the trainer connects to with
``+ray_kwargs.ray_init.address``, and the nodes), and waits. On SIGTERM or SIGINT, or when its parent is gone, it
reads Ray's own record of where things ran (the GCS's placement-group and actor tables, which keep removed groups and
dead actors with their node ids), writes it into the info file, shuts the cluster down (``Cluster.shutdown``, which
checks that no process of a node is left) and exits 0.

Every node process inherits this process's environment: the demo starts it with the training run's environment (the
CPU scaffolding and the run's marker variable, so that the demo's marker-based clean-up also finds every Ray process
of the cluster) and a short private ``RAY_TMPDIR``, so that Ray's "current cluster" file and session folders never
touch /tmp/ray, which the single-node demo uses.

Every node registers under, and binds its servers (GCS, raylet, object manager, workers, agents) to, the loopback
address ``LOOPBACK`` (``node_ip_address``; Ray's default is the machine's network address, on all interfaces), and the
head starts no dashboard: the cluster opens nothing to the network. The trainer joins it with ``RAY_LOOPBACK_ENV``
(demo.training_env), so that its driver and workers, and the servers verl starts, take the same address.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# Per node: the fake GPUs (Ray's built-in GPU resource), logical CPUs (the single-node demo has 16 for its 2 GPUs:
# each GPU's bundle reserves 3, every TransferQueue, agent-loop, reward and router actor 1 more) and the object store
# (Cluster's default of 150 MiB is a test default; the single-node demo's Ray takes a share of RAM).
GPUS_PER_NODE = 1
CPUS_PER_NODE = 8
OBJECT_STORE_MIB = 512
# The address every node registers under and binds to. Ray's ``ray.init(_node_ip_address=...)`` and
# ``ray start --node-ip-address`` replace a loopback address by the machine's network address; ``Cluster`` passes
# ``node_ip_address`` to the node as it is.
LOOPBACK = "127.0.0.1"

# verl 0.9.1's resource pools (trainer/ppo/v1/trainer_base.py): the placement groups of a pool are named
# "<pool>verl_group_<counts>:<index>" (single_controller/ray/base.py, RayResourcePool.get_placement_groups).
POOLS = {"global_pool": "trainer: actor, reference, policy rollout", "reward_pool": "thinking RM (verl-served)"}
# verl's name of the TRM's vLLM server actor ("vllm_server_reward_<replica>_<node rank>") and of the policy's
# ("vllm_server_<replica>_<node rank>"), workers/rollout/vllm_rollout/vllm_async_server.py
TRM_SERVER_PREFIX = "vllm_server_reward_"
POLICY_SERVER_PREFIX = "vllm_server_"


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def ray_record(cluster) -> dict:
    """Ray's own view of the run, from the GCS: nodes (id, head, resources, the address each registered under),
    placement groups (name, state, the node of each bundle) and actors (name, class, state, node, pid), the removed
    and dead ones included."""
    state = cluster.global_state
    head = cluster.head_node.node_id
    nodes = [
        {
            "node_id": n["NodeID"],
            "head": n["NodeID"] == head,
            "alive": n["Alive"],
            "resources": n["Resources"],
            "address": n["NodeManagerAddress"],  # where the node registered (its raylet and object manager)
        }
        for n in state.node_table()
    ]
    nodes.sort(key=lambda n: not n["head"])  # the head first, then in order of start
    groups = [
        {
            "name": g["name"],
            "state": g["state"],
            "strategy": g["strategy"],
            "bundles": [g["bundles"][i] for i in sorted(g["bundles"])],
            "bundle_nodes": [g["bundles_to_node_id"][i] for i in sorted(g["bundles_to_node_id"])],
        }
        for g in state.placement_group_table().values()
    ]
    actors = [
        {
            "name": a["Name"],
            "class": a["ActorClassName"],
            "state": a["State"],
            "node_id": a["Address"]["NodeID"],
            "pid": a["Pid"],
        }
        for a in state.actor_table(None).values()
    ]
    return {"nodes": nodes, "placement_groups": groups, "actors": actors}


def node_args(args, head: bool = False) -> dict:
    """The arguments of one node (``Cluster``'s head_node_args, ``add_node``): its logical CPUs, fake GPUs and object
    store (MiB in ``args``, bytes here), the loopback address, and for the head no dashboard."""
    out = {
        "num_cpus": args.cpus_per_node,
        "num_gpus": args.gpus_per_node,
        "object_store_memory": args.object_store_mib * 2**20,
        "node_ip_address": LOOPBACK,
    }
    return {**out, "include_dashboard": False} if head else out


def serve(args) -> int:
    """The process: start the nodes, write the info file, wait for a signal (or for the parent to go), record Ray's
    view into the info file, shut the nodes down."""
    import ray  # noqa: F401  (the demo's venv; imported here only, so the helpers below need no Ray)
    from ray.cluster_utils import Cluster

    stop = []
    parent = os.getppid()
    started = time.time()
    cluster = Cluster(initialize_head=True, head_node_args=node_args(args, head=True))
    info = {"address": None, "pid": os.getpid()}
    try:
        for _ in range(args.nodes - 1):
            cluster.add_node(**node_args(args))
        cluster.wait_for_nodes()
        # after the nodes: each Node object installs its own SIGTERM handler (drain and shut down), which would stop
        # the cluster before its record is read
        signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
        signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
        info = {"address": cluster.address, "pid": os.getpid(), "start_s": round(time.time() - started, 1)}
        info.update(ray_record(cluster))
        _write_json(args.info, info)
        print(f"ray_cluster: {args.nodes} nodes up at {cluster.address} in {info['start_s']} s", flush=True)
        while not stop and os.getppid() == parent:
            time.sleep(0.5)
        info.update(ray_record(cluster))
        info["stopped_by"] = stop[0] if stop else "parent gone"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if info["address"]:
            _write_json(args.info, info)  # Ray's record first: the shutdown below may fail
        cluster.shutdown()  # raises if a process of a node survives
        info["shutdown"] = True
        if info["address"]:
            _write_json(args.info, info)
        print("ray_cluster: shut down", flush=True)
    return 0


class RayCluster:
    """A running ``ray_cluster.py`` process, as ``start`` returns it."""

    def __init__(self, proc: subprocess.Popen, info_path: Path, address: str, tmpdir: Path):
        self.proc, self.info_path, self.address, self.tmpdir = proc, info_path, address, tmpdir
        self.record: dict | None = None

    def stop(self, timeout: float = 90) -> dict:
        """Records Ray's view and shuts the cluster down (SIGTERM to the cluster process alone: its process group
        holds the nodes' processes, which it stops itself; the group is killed if it has not exited within
        ``timeout`` s), removes its RAY_TMPDIR; returns the info file's content. Idempotent."""
        if self.record is not None:
            return self.record
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.record = json.loads(self.info_path.read_text()) if self.info_path.exists() else {}
        self.record["exit_status"] = self.proc.returncode
        return self.record


def start(nodes: int, env: dict, work: Path, timeout: float, run_id: str) -> RayCluster:
    """Starts ``ray_cluster.py`` with ``nodes`` nodes in its own process group, with ``env`` plus a private
    RAY_TMPDIR (/tmp/svl-ray-<run_id>: Unix socket paths under it must stay short), its output in
    WORK/ray_cluster.log; waits up to ``timeout`` s for the nodes. Raises SystemExit when they do not come up."""
    info_path, log_path = work / "ray_nodes.json", work / "ray_cluster.log"
    info_path.unlink(missing_ok=True)
    tmpdir = Path(f"/tmp/svl-ray-{run_id}")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--nodes", str(nodes), "--info", str(info_path)]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            cmd, env={**env, "RAY_TMPDIR": str(tmpdir)}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    cluster = RayCluster(proc, info_path, "", tmpdir)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if info_path.exists():
            cluster.address = json.loads(info_path.read_text())["address"]
            if cluster.address:
                return cluster
        time.sleep(0.5)
    cluster.stop()
    raise SystemExit(f"the {nodes}-node Ray cluster did not come up within {timeout:.0f} s; see {log_path}")


def connect_overrides(address: str) -> list[str]:
    """The main_ppo overrides that run on an existing cluster: ray.init joins it at ``address`` (host:port of its
    GCS), and no ray_init num_cpus/num_gpus (Ray rejects them when connecting; verl's default num_cpus is null)."""
    return [f"+ray_kwargs.ray_init.address={address}"]


def pool_nodes(record: dict) -> dict[str, list[str]]:
    """Each of verl's resource pools (POOLS) that had a placement group -> the ids of the nodes of its bundles, in
    bundle order (one id per fake GPU of the pool)."""
    out: dict[str, list[str]] = {}
    for group in record.get("placement_groups", []):
        for pool in POOLS:
            if group["name"].startswith(f"{pool}verl_group_"):
                out.setdefault(pool, []).extend(group["bundle_nodes"])
    return out


def actors_named(record: dict, prefix: str, exclude: str | None = None) -> list[dict]:
    """The actors whose name starts with ``prefix`` (and not with ``exclude``)."""
    return [
        a
        for a in record.get("actors", [])
        if a["name"].startswith(prefix) and not (exclude and a["name"].startswith(exclude))
    ]


def trainer_workers(record: dict) -> list[dict]:
    """The trainer's FSDP workers: verl's colocated ``WorkerDict`` actors (actor, reference and the policy's rollout
    worker in one process per GPU; class ``create_colocated_worker_cls.<locals>.WorkerDict``), named
    ``<random prefix>WorkerDict_<group>:<rank>``; the rollout replicas' own worker groups (``rollout_*`` names, the
    TRM's among them) are left out."""
    return [
        a
        for a in record.get("actors", [])
        if a["class"].rsplit(".", 1)[-1] == "WorkerDict" and not a["name"].startswith("rollout_")
    ]


def layout_text(record: dict) -> str:
    """Which node each pool and each of verl's named actors ran on, from Ray's record (``RayCluster.stop``)."""
    pools = pool_nodes(record)
    lines = ["=== Ray nodes (ray.cluster_utils.Cluster on this machine; GCS placement-group and actor tables) ==="]
    for index, node in enumerate(record.get("nodes", []), start=1):
        res = node["resources"]
        head = " (head)" if node["head"] else ""
        lines.append(f"node {index}{head} {node['node_id'][:12]}: GPU {res.get('GPU', 0):g}, CPU {res.get('CPU', 0):g}")
        for pool, ids in pools.items():
            if node["node_id"] in ids:
                lines.append(f"  pool {pool} ({POOLS[pool]}): {ids.count(node['node_id'])} bundle(s)")
        names = sorted(a["name"] for a in record.get("actors", []) if a["node_id"] == node["node_id"] and a["name"])
        if names:
            lines.append(f"  named actors: {', '.join(names)}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="A Ray cluster of several nodes on this machine (examples/cpu)")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--gpus-per-node", type=int, default=GPUS_PER_NODE, help="fake GPUs (Ray's GPU resource)")
    parser.add_argument("--cpus-per-node", type=int, default=CPUS_PER_NODE, help="logical CPUs")
    parser.add_argument("--object-store-mib", type=int, default=OBJECT_STORE_MIB)
    parser.add_argument("--info", type=Path, required=True, help="JSON: the address, then Ray's record of the run")
    args = parser.parse_args(argv)
    if args.nodes < 1:
        parser.error("--nodes must be >= 1")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
