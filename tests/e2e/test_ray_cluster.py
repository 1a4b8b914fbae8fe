"""The two-node demo's option handling and its reading of Ray's record (examples/cpu/ray_cluster.py), without starting
Ray: the overrides that join a cluster, the option checks, and which pool and actor ran on which node in a record
written by hand in the shape ``ray_record`` reads from the GCS. The real two-node run: test_e2e_multinode.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import demo  # examples/cpu (on pytest's path)
import ray_cluster

A, B = "a" * 56, "b" * 56  # node ids (hex, as the GCS gives them)
RECORD = {
    "address": "192.0.2.2:40000",
    "nodes": [
        {"node_id": A, "head": True, "alive": True, "resources": {"CPU": 8.0, "GPU": 1.0}, "address": "127.0.0.1"},
        {"node_id": B, "head": False, "alive": True, "resources": {"CPU": 8.0, "GPU": 1.0}, "address": "127.0.0.1"},
    ],
    "placement_groups": [
        {"name": "global_poolverl_group_1:0", "state": "REMOVED", "strategy": "STRICT_PACK",
         "bundles": [{"CPU": 3.0, "GPU": 1.0}], "bundle_nodes": [B]},
        {"name": "reward_poolverl_group_1:0", "state": "REMOVED", "strategy": "STRICT_PACK",
         "bundles": [{"CPU": 3.0, "GPU": 1.0}], "bundle_nodes": [A]},
        {"name": "unrelated_group", "state": "REMOVED", "strategy": "PACK", "bundles": [{"CPU": 1.0}],
         "bundle_nodes": [A]},
    ],
    "actors": [
        {"name": "x7Kq2pWorkerDict_0:0", "class": "create_colocated_worker_cls.<locals>.WorkerDict", "state": "DEAD",
         "node_id": B, "pid": 11},
        {"name": "vllm_server_0_0", "class": "vLLMHttpServer", "state": "DEAD", "node_id": B, "pid": 12},
        {"name": "rollout_reward_colocate_0CheckpointEngineWorker_0:0", "class": "CheckpointEngineWorker",
         "state": "DEAD", "node_id": A, "pid": 13},
        {"name": "rollout_colocate_0WorkerDict_0:0", "class": "create_colocated_worker_cls.<locals>.WorkerDict",
         "state": "DEAD", "node_id": B, "pid": 16},
        {"name": "vllm_server_reward_0_0", "class": "vLLMHttpServer", "state": "DEAD", "node_id": A, "pid": 14},
        {"name": "", "class": "TaskRunnerV1", "state": "DEAD", "node_id": A, "pid": 15},
    ],
}  # fmt: skip


def _args(**kw):
    base = dict(group_size=8, batch=4, steps=2, response_length=48, overrides=[], recipe="sophiavl", rm="verl")
    return argparse.Namespace(**{**base, **kw})


def test_joining_a_cluster_replaces_the_local_ray_resources():
    local = demo.training_command(_args(), Path("/rows"), Path("/models"), None)
    assert "ray_kwargs.ray_init.num_cpus=16" in local and "+ray_kwargs.ray_init.num_gpus=2" in local
    assert not [c for c in local if "ray_init.address" in c]
    joined = demo.training_command(_args(), Path("/rows"), Path("/models"), None, "192.0.2.2:40000")
    assert "+ray_kwargs.ray_init.address=192.0.2.2:40000" in joined
    # Ray refuses num_cpus/num_gpus when it joins a cluster
    assert not [c for c in joined if "ray_init.num_cpus" in c or "ray_init.num_gpus" in c]
    # everything else is the same command
    assert [c for c in joined if "ray_init" not in c] == [c for c in local if "ray_init" not in c]


@pytest.mark.parametrize("extra", [["--nodes", "2"], ["--nodes", "2", "--rm", "external"], ["--nodes", "3"]])
def test_two_nodes_need_verl_serving_the_judge(extra, capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(extra)
    assert exc.value.code == 2  # argparse's usage error, before anything starts
    assert "--nodes" in capsys.readouterr().err


def test_pools_and_actors_on_nodes():
    assert ray_cluster.pool_nodes(RECORD) == {"global_pool": [B], "reward_pool": [A]}
    assert [a["pid"] for a in ray_cluster.actors_named(RECORD, ray_cluster.TRM_SERVER_PREFIX)] == [14]
    policy = ray_cluster.actors_named(RECORD, ray_cluster.POLICY_SERVER_PREFIX, exclude=ray_cluster.TRM_SERVER_PREFIX)
    assert [a["pid"] for a in policy] == [12]
    assert [a["pid"] for a in ray_cluster.trainer_workers(RECORD)] == [11]


def test_layout_text_puts_each_pool_under_its_node():
    text = ray_cluster.layout_text(RECORD)
    lines = text.splitlines()
    assert lines[1] == f"node 1 (head) {A[:12]}: GPU 1, CPU 8"
    assert lines[2] == "  pool reward_pool (thinking RM (verl-served)): 1 bundle(s)"
    assert lines[3] == "  named actors: rollout_reward_colocate_0CheckpointEngineWorker_0:0, vllm_server_reward_0_0"
    assert lines[4] == f"node 2 {B[:12]}: GPU 1, CPU 8"
    assert lines[5] == "  pool global_pool (trainer: actor, reference, policy rollout): 1 bundle(s)"
    assert lines[6] == "  named actors: rollout_colocate_0WorkerDict_0:0, vllm_server_0_0, x7Kq2pWorkerDict_0:0"
    assert len(lines) == 7


def test_a_missing_record_prints_no_pools():
    assert ray_cluster.pool_nodes({}) == {}
    assert ray_cluster.layout_text({}).count("\n") == 1


def test_every_node_on_loopback_and_no_dashboard():
    """Issue 28 section 8: each node registers under and binds to 127.0.0.1 (Ray's default: the machine's network
    address); the head starts no dashboard."""
    args = argparse.Namespace(cpus_per_node=8, gpus_per_node=1, object_store_mib=512)
    head, node = ray_cluster.node_args(args, head=True), ray_cluster.node_args(args)
    assert head == {"num_cpus": 8, "num_gpus": 1, "object_store_memory": 512 * 2**20, "node_ip_address": "127.0.0.1",
                    "include_dashboard": False}  # fmt: skip
    assert node == {"num_cpus": 8, "num_gpus": 1, "object_store_memory": 512 * 2**20, "node_ip_address": "127.0.0.1"}
