"""The demo's option handling, without running anything heavy: which recipes start a judge, the overrides of each
thinking-RM topology, the row selection of sample_rows.py, Ray on loopback, and the harness's loopback checks (a real
process listening on real sockets). Fast (no vLLM, no verl run, no Ray)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

import demo  # examples/cpu (on pytest's path)
import sample_rows
from sophiavl_testing import e2e_harness as harness


def test_recipes_with_and_without_a_judge():
    assert demo.recipe_uses_judge("sophiavl", []) is True
    assert demo.recipe_uses_judge("sophiavl_official", []) is True
    # sophiavl_grpo sets reward.thinking_rm.enable: false in its own file
    assert demo.recipe_uses_judge("sophiavl_grpo", []) is False
    # the command line wins, whichever way
    assert demo.recipe_uses_judge("sophiavl", ["reward.thinking_rm.enable=false"]) is False
    assert demo.recipe_uses_judge("sophiavl_grpo", ["reward.thinking_rm.enable=true"]) is True
    with pytest.raises(SystemExit, match="no_such_recipe"):
        demo.recipe_uses_judge("no_such_recipe", [])


def _args(**kw):
    base = dict(group_size=8, batch=4, response_length=48, steps=2, overrides=[], workdir=Path("/w"))
    return argparse.Namespace(**{**base, **kw})


def test_external_topology_points_the_manager_at_the_judge():
    cmd = demo.training_command(_args(rm="external"), Path("/rows"), Path("/models"), "http://127.0.0.1:9/v1")
    assert "+recipe=sophiavl" in cmd
    assert "reward.reward_model.enable=False" in cmd
    assert "reward.thinking_rm.base_url=http://127.0.0.1:9/v1" in cmd
    assert "+ray_kwargs.ray_init.num_gpus=1" in cmd
    assert "trainer.default_local_dir=/w/checkpoints" in cmd


def test_verl_topology_serves_the_judge_on_its_own_pool():
    cmd = demo.training_command(_args(rm="verl"), Path("/rows"), Path("/models"), None)
    for key in ("reward.reward_model.enable=True", "reward.reward_model.enable_resource_pool=True",
                "reward.reward_model.n_gpus_per_node=1", "reward.reward_model.model_path=/models/judge",
                "reward.thinking_rm.base_url=null", "reward.reward_model.rollout.free_cache_engine=False",
                "+ray_kwargs.ray_init.num_gpus=2"):  # fmt: skip
        assert key in cmd, key
    assert not any(item.startswith("reward.thinking_rm.base_url=http") for item in cmd)


def test_a_recipe_without_judge_gets_no_judge_keys():
    cmd = demo.training_command(_args(rm="external", recipe="sophiavl_grpo"), Path("/r"), Path("/m"), None)
    assert "+recipe=sophiavl_grpo" in cmd
    assert not any(item.startswith("reward.thinking_rm.") for item in cmd)


def test_user_overrides_come_last():
    cmd = demo.training_command(_args(rm="external", overrides=["trainer.save_freq=5"]), Path("/r"), Path("/m"), None)
    assert cmd[-1] == "trainer.save_freq=5"


def _table() -> pa.Table:
    rows = [
        {"prompt": [{"role": "user", "content": f"<image>\nq{i}"}], "images": [{"bytes": b"x"}],
         "extra_info": {"problem_type": kind}}
        for i, kind in enumerate(["numerical", "multiple choice", "numerical", "multiple choice", "multiple choice"])
    ]  # fmt: skip
    return pa.Table.from_pylist(rows)


def test_sample_rows_keeps_the_first_rows_of_a_problem_type():
    kept = sample_rows.first_rows(_table(), 2, text_only=False, problem_type="multiple choice").to_pylist()
    assert [r["prompt"][0]["content"] for r in kept] == ["<image>\nq1", "<image>\nq3"]
    assert sample_rows.first_rows(_table(), 10, text_only=False, problem_type="OCR").num_rows == 0
    # no type: the first rows, whatever their type; text-only drops images and placeholders
    plain = sample_rows.first_rows(_table(), 2, text_only=True).to_pylist()
    assert [r["prompt"][0]["content"] for r in plain] == ["q0", "q1"]
    assert "images" not in plain[0]


def test_failed_sessions_load_the_failing_agent_loop_through_verl_config():
    from omegaconf import OmegaConf

    cmd = demo.training_command(_args(rm="external", failed_sessions=True), Path("/r"), Path("/m"), None)
    config_path = demo.AGENT_LOOPS / "failing.yaml"
    assert f"actor_rollout_ref.rollout.agent.agent_loop_config_path={config_path}" in cmd
    assert "actor_rollout_ref.rollout.agent.default_agent_loop=failing_single_turn" in cmd
    (entry,) = OmegaConf.load(config_path)
    assert entry.name == "failing_single_turn"
    module, cls = entry._target_.rsplit(".", 1)
    assert (config_path.parent / f"{module}.py").read_text().count(f"class {cls}(") == 1
    plain = demo.training_command(_args(rm="external"), Path("/r"), Path("/m"), None)
    assert not any("agent_loop_config_path" in item for item in plain)


# Issue 28 section 8: the demos stay on loopback. The runs themselves are checked by harness.assert_on_loopback
# (test_e2e_demo.py, test_e2e_multinode.py); here the demo's settings and the harness's own checks.


def test_training_runs_keep_ray_on_loopback_without_a_dashboard():
    env = demo.training_env(demo.base_env("r"), Path("/w/metrics.jsonl"))
    # Ray's switch for local-only Ray (its default on macOS and Windows): node address 127.0.0.1
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    local = demo.training_command(_args(rm="external"), Path("/r"), Path("/m"), None)
    assert "+ray_kwargs.ray_init.include_dashboard=False" in local
    # joining the --nodes cluster: its head has no dashboard; Ray takes no dashboard option when connecting
    joined = demo.training_command(_args(rm="verl"), Path("/r"), Path("/m"), None, "127.0.0.1:6379")
    assert not [c for c in joined if "dashboard" in c]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.0.2.2", False), ("::ffff:192.0.2.2", False),
     ("10.1.2.3", False), ("some-host", False)],
)  # fmt: skip
def test_is_loopback(host, loopback):
    assert harness.is_loopback(host) is loopback


def test_log_addresses_finds_urls_ray_node_ips_and_host_ports():
    text = (
        "View the dashboard at http://127.0.0.1:8265\n"
        "(vLLMHttpServer pid=7, ip=192.0.2.2) Router is running on 192.0.2.2:35013\n"
        "connect tcp://[::1]:5555, see https://docs.ray.io/en/latest, module pkg://sophiavl.rewards.outcome\n"
        "vllm 0.30.0 at 01:09:01, version 1.2.3.4, [2026-12-08 01:09:01,809]\n"
        f"http://{socket.gethostname()}:8000/v1\n"
    )
    # docs.ray.io and the pkg:// module are not hosts of this run; versions, times and an address without a port
    # are not addresses
    assert harness.log_addresses(text) == ["127.0.0.1", "192.0.2.2", "192.0.2.2", "[::1]", socket.gethostname()]


# A process that listens on loopback and on every interface, then waits (killed by the test).
LISTENER = """
import socket, sys, time
socks = []
for host in ("127.0.0.1", "0.0.0.0"):
    s = socket.socket()
    s.bind((host, 0))
    s.listen()
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
time.sleep(60)
"""


def test_socket_watch_sees_what_the_run_listens_on():
    token = "t" + os.urandom(6).hex()
    watch = harness.SocketWatch(token, interval=0.2).start()
    env = dict(os.environ, **{harness.WATCH_VAR: token})
    proc = subprocess.Popen([sys.executable, "-c", LISTENER], env=env, stdout=subprocess.PIPE, text=True)
    # a process without the tag is not looked at
    other = socket.socket()
    other.bind(("0.0.0.0", 0))
    other.listen()
    try:
        loop_port, any_port = map(int, proc.stdout.readline().split())
        time.sleep(1.0)  # five looks
    finally:
        seen = watch.stop()
        proc.kill()
        proc.wait()
        other.close()
    assert sorted((s["address"], s["port"], s["pid"]) for s in seen) == sorted(
        [("127.0.0.1", loop_port, proc.pid), ("0.0.0.0", any_port, proc.pid)]
    )
    assert all("-c" in s["process"] for s in seen)
    # what assert_on_loopback rejects: the socket on every interface
    assert [s["port"] for s in seen if not harness.is_loopback(s["address"])] == [any_port]
