"""End to end on CPU across two Ray nodes: `make demo DEMO_ARGS="--nodes 2 --rm verl"` (docs/cpu.md, docs/training.md).

examples/cpu/ray_cluster.py starts a head node and a second node on this machine with Ray's
``ray.cluster_utils.Cluster`` (one fake GPU and 8 logical CPUs each), the demo's training run (verl main_ppo
+recipe=sophiavl, verl serving the thinking RM on its own pool) joins it with ``+ray_kwargs.ray_init.address``, and the
cluster is shut down after it. Checked from Ray's own record (the GCS's placement-group and actor tables, read before
the shutdown): the trainer's pool and workers ran on one node and the TRM's pool and vLLM replica on the other; every
step trained; the docs' multi-node commands are the one that ran (less the CPU scaffolding); the nodes and every server
stayed on loopback; nothing is left running.

Marker ``multinode``: `make test-multinode` runs this file alone. Needs the e2e venv like tests/e2e/test_e2e_demo.py
(skipped without it, failed with SOPHIAVL_E2E=require). Shares the session's rows and tiny models with the other e2e
runs (demo.py --assets).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

import ray_cluster  # examples/cpu (on pytest's path)
from sophiavl_testing import e2e_harness as harness

pytestmark = pytest.mark.multinode
STEPS, BATCH, GROUP = 2, 4, 8  # the demo's defaults: 4 prompts x 8 responses per step
DOC = harness.REPO / "docs" / "training.md"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return harness.run_demo(tmp_path_factory, "e2e-multinode", ["--steps", str(STEPS), "--rm", "verl", "--nodes", "2"])


@pytest.fixture(scope="module")
def record(run):
    return run.summary["ray_nodes"]


def _node(record: dict, node_id: str) -> int:
    """The node's number in the demo's printout (1: the head)."""
    return [n["node_id"] for n in record["nodes"]].index(node_id) + 1


def test_two_nodes_each_with_one_fake_gpu(record):
    nodes = record["nodes"]
    assert len(nodes) == 2
    assert [n["head"] for n in nodes] == [True, False]
    assert len({n["node_id"] for n in nodes}) == 2
    for node in nodes:
        assert node["alive"], node  # recorded before the shutdown
        assert node["resources"]["GPU"] == 1.0
        assert node["resources"]["CPU"] == 8.0


def test_trainer_and_thinking_rm_ran_on_different_nodes(record):
    """Ray's placement groups: verl's trainer pool (global_pool) and the TRM's pool (reward_pool), one fake GPU each,
    on different nodes; Ray's actors: the trainer's workers and the policy's vLLM server on the trainer's node, the
    TRM's vLLM server on the other one."""
    pools = ray_cluster.pool_nodes(record)
    assert sorted(pools) == ["global_pool", "reward_pool"]
    assert len(pools["global_pool"]) == 1 and len(pools["reward_pool"]) == 1  # one bundle (fake GPU) each
    trainer_node, trm_node = pools["global_pool"][0], pools["reward_pool"][0]
    assert trainer_node != trm_node
    assert {trainer_node, trm_node} == {n["node_id"] for n in record["nodes"]}

    trm_servers = ray_cluster.actors_named(record, ray_cluster.TRM_SERVER_PREFIX)
    assert [a["node_id"] for a in trm_servers] == [trm_node], trm_servers
    policy_servers = ray_cluster.actors_named(
        record, ray_cluster.POLICY_SERVER_PREFIX, exclude=ray_cluster.TRM_SERVER_PREFIX
    )
    assert [a["node_id"] for a in policy_servers] == [trainer_node], policy_servers
    workers = ray_cluster.trainer_workers(record)
    assert workers, record["actors"]
    assert {a["node_id"] for a in workers} == {trainer_node}, workers


def test_layout_printed(run, record):
    """The demo prints which node each pool ran on, numbered as in Ray's node table (the head first)."""
    pools = ray_cluster.pool_nodes(record)
    out = run.proc.stdout
    assert "=== Ray nodes" in out
    blocks = re.split(r"\n(?=node \d)", out.split("=== Ray nodes", 1)[1])
    for pool, ids in pools.items():
        number = _node(record, ids[0])
        block = next(b for b in blocks if b.startswith(f"node {number}"))
        assert f"pool {pool} " in block, block


def test_every_step_trained(run):
    steps = run.summary["steps"]
    assert [s["step"] for s in steps] == list(range(1, STEPS + 1))
    for step in steps:
        assert step["trust/rm_requested_count"] == BATCH * GROUP  # every response judged once
        assert step["trust/rm_failed_count"] == 0
    assert any(s["actor/grad_norm"] > 0 for s in steps), [s["actor/grad_norm"] for s in steps]


def test_training_joined_the_cluster(run, record):
    command = (run.work / "command.txt").read_text().split()
    assert f"+ray_kwargs.ray_init.address={record['address']}" in command
    assert not [c for c in command if c.lstrip("+").startswith(("ray_kwargs.ray_init.num_cpus",
                                                                 "ray_kwargs.ray_init.num_gpus"))]  # fmt: skip
    for key in ("trainer.nnodes=1", "trainer.n_gpus_per_node=1", "reward.reward_model.enable_resource_pool=True",
                "reward.reward_model.nnodes=1", "reward.reward_model.n_gpus_per_node=1"):  # fmt: skip
        assert key in command


def _doc_commands(path: Path) -> list[str]:
    """The docs' main_ppo commands that join a running cluster (``+ray_kwargs.ray_init.address``), continuation
    lines joined."""
    joined = path.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        line.strip()
        for line in joined.splitlines()
        if "verl.trainer.main_ppo" in line and "+ray_kwargs.ray_init.address=" in line
    ]


def _keys(words: list[str]) -> set[str]:
    return {w.split("=", 1)[0] for w in words if "=" in w and not w.startswith("-")}


def test_docs_multinode_commands_are_the_one_that_ran(run):
    """docs/training.md's multi-node commands use only keys this run set (the run adds the CPU scaffolding), and
    their layout keys are this run's with more GPUs per node."""
    docs = _doc_commands(DOC)
    assert len(docs) >= 2, "docs/training.md: the two-node and three-node commands"
    ran = (run.work / "command.txt").read_text().split()
    ran_keys = _keys(ran)
    for doc in docs:
        words = doc.split()
        assert words[:4] == ["python", "-m", "verl.trainer.main_ppo", "+recipe=sophiavl"], doc
        assert not sorted(_keys(words) - ran_keys), doc
        layout = dict(w.split("=", 1) for w in words if w.startswith(("trainer.n", "reward.reward_model.n")))
        assert sorted(layout) == ["reward.reward_model.n_gpus_per_node", "reward.reward_model.nnodes",
                                  "trainer.n_gpus_per_node", "trainer.nnodes"], doc  # fmt: skip
        assert layout["reward.reward_model.nnodes"] == "1"


def test_cluster_on_loopback(run, record):
    """Issue 28 section 8: both nodes registered under 127.0.0.1 (Ray's node table) and the trainer joined the GCS
    there; nothing of the run listened beyond loopback and its logs name no other address
    (harness.assert_on_loopback)."""
    assert [n["address"] for n in record["nodes"]] == ["127.0.0.1", "127.0.0.1"]
    assert record["address"].startswith("127.0.0.1:")
    harness.assert_on_loopback(run)
    processes = [s["process"] for s in run.listening]
    assert sum("ray/raylet/raylet" in p for p in processes) >= 2, processes  # a raylet per node


def test_cluster_shut_down_and_nothing_left(run, record):
    """The cluster process recorded Ray's view, shut the nodes down (Cluster.shutdown checks that no process of a
    node survives) and exited 0; its GCS port is closed, no process names its Ray folder, and nothing of the run is
    left (harness.assert_nothing_left)."""
    assert record["stopped_by"] == "SIGTERM"
    assert record["shutdown"] is True
    assert record["exit_status"] == 0
    host, port = record["address"].rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex((host, int(port))) != 0, f"the cluster's GCS port {port} still accepts connections"
    tmpdir = f"/tmp/svl-ray-{run.summary['run_id']}"
    assert not Path(tmpdir).exists()
    assert harness.demo.pids_naming(tmpdir) == []
    harness.assert_nothing_left(run)
