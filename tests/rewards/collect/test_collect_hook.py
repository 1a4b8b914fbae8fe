"""Collection during a verl run: the real reward manager, configured by the composed recipes, scores real DataProto
samples shaped as verl 0.9.1's V1 agent loop hands them over (``uid`` and ``global_steps`` among the non-tensor keys),
and its collector's shards are read back with the shard reader."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from verl import DataProto

from sophiavl.rewards.collect import CollectConfig, RolloutCollector, ShardReadStats, iter_shard_records
from sophiavl.rewards.reward_manager import ThinkingRewardManager
from sophiavl_testing.byte_tokenizer import byte_bpe_tokenizer

GOOD = "<think>2 plus 2 is 4</think><answer>4</answer>"
WRONG = "<think>2 plus 2 is 5</think><answer>5</answer>"


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level BPE built in memory (no hub): decodes any text it encodes."""
    return byte_bpe_tokenizer([GOOD, WRONG])


def sample(tokenizer, response, *, index=3, split="train", uid="uid-a", step=1, extra=None) -> DataProto:
    """One sample as verl 0.9.1's agent loop builds it for the reward loop (agent_loop.py ``_compute_score``): every
    key of the prompt's row, ``uid`` and ``global_steps`` included, as a one-element numpy array."""
    response_ids = torch.tensor(tokenizer.encode(response) + [tokenizer.pad_token_id] * 2)
    mask = torch.cat([torch.ones(3), torch.ones(len(response_ids) - 2), torch.zeros(2)]).long()
    batch = {
        "prompts": torch.tensor([[5, 6, 7]]),
        "responses": response_ids[None],
        "attention_mask": mask[None],
    }
    info = {"split": split, "index": index, "problem_id": f"p-{index}", "problem_type": "numerical",
            "data_source": "Math", "question": "What is 2+2?"}  # fmt: skip
    info.update(extra or {})
    raw_prompt = np.empty(1, dtype=object)
    raw_prompt[0] = [{"role": "user", "content": "<image>What is 2+2? Think first."}]
    non_tensor = {
        "data_source": np.array(["Math"], dtype=object),
        "reward_model": np.array([{"ground_truth": "4", "style": "rule"}], dtype=object),
        "extra_info": np.array([info], dtype=object),
        "raw_prompt": raw_prompt,
        "uid": np.array([uid]),
        "global_steps": np.array([step]),
        "session_id": np.array([0]),
    }
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor)


def score(manager, data):
    return asyncio.run(manager.run_single(data))


def read(folder):
    stats = ShardReadStats()
    return list(iter_shard_records(folder, stats)), stats


def test_grpo_recipe_collects_every_scored_training_response(compose_ppo, tokenizer, tmp_path):
    cfg = compose_ppo("+recipe=sophiavl_grpo", f"reward.collect.dir={tmp_path / 'rollouts'}")
    manager = ThinkingRewardManager(cfg, tokenizer, None)
    outs = [
        score(manager, sample(tokenizer, GOOD, index=3, uid="uid-a", step=1)),
        score(manager, sample(tokenizer, WRONG, index=3, uid="uid-a", step=1)),
        score(manager, sample(tokenizer, GOOD, index=5, uid="uid-b", step=2)),
    ]
    assert [o["reward_score"] for o in outs] == [1.0, 0.0, 1.0]  # scoring itself unchanged
    records, stats = read(tmp_path / "rollouts")
    assert stats.shards == 1 and stats.rejected == {} and stats.records == 3
    assert [(r.index, r.outcome, r.step, r.group, r.response) for r in records] == [
        (3, 1.0, 1, "uid-a", GOOD),
        (3, 0.0, 1, "uid-a", WRONG),
        (5, 1.0, 2, "uid-b", GOOD),
    ]
    first = records[0]
    assert (first.split, first.problem_id, first.data_source, first.problem_type, first.question, first.source) == (
        "train", "p-3", "Math", "numerical", "What is 2+2?", "grpo")  # fmt: skip
    tag = manager.collector.tag
    assert [r.rid for r in records] == [f"{tag}-0", f"{tag}-1", f"{tag}-2"]
    assert tag.split("-")[1] == str(os.getpid())  # <host>-<pid>-<start stamp>


@pytest.mark.parametrize("recipe", ["sophiavl", "sophiavl_official", "sophiavl_variance", "sophiavl_wo_trust"])
def test_every_training_recipe_has_collection_off_by_default(compose_ppo, recipe):
    cfg = compose_ppo(f"+recipe={recipe}")
    assert cfg.reward.collect == {"dir": None, "validation": False}
    assert not CollectConfig.from_config(cfg.reward.collect).enabled


def test_default_recipe_builds_no_collector(compose_ppo, tokenizer):
    manager = ThinkingRewardManager(compose_ppo("+recipe=sophiavl_grpo"), tokenizer, None)
    assert manager.collector is None


def test_validation_rows_only_on_request(compose_ppo, tokenizer, tmp_path):
    for folder, extra in (("off", []), ("on", ["reward.collect.validation=true"])):
        cfg = compose_ppo("+recipe=sophiavl_grpo", f"reward.collect.dir={tmp_path / folder}", *extra)
        manager = ThinkingRewardManager(cfg, tokenizer, None)
        score(manager, sample(tokenizer, GOOD, split="val", index=0))
        score(manager, sample(tokenizer, GOOD, split="train", index=1))
        manager.collector.close()
    assert [(r.split, r.index) for r in read(tmp_path / "off")[0]] == [("train", 1)]
    assert [(r.split, r.index) for r in read(tmp_path / "on")[0]] == [("val", 0), ("train", 1)]


def test_a_row_without_identity_is_counted_not_written(compose_ppo, tokenizer, tmp_path, capsys):
    cfg = compose_ppo("+recipe=sophiavl_grpo", f"reward.collect.dir={tmp_path}")
    manager = ThinkingRewardManager(cfg, tokenizer, None)
    out = score(manager, sample(tokenizer, GOOD, extra={"index": None}, step=4))
    assert out["reward_score"] == 1.0  # the reward is unaffected
    score(manager, sample(tokenizer, GOOD, index=2, step=4))
    manager.collector.close()
    collector = manager.collector
    assert (collector.written, collector.skipped) == (1, 1)
    assert "'index'" in collector.skip_example
    assert [r.index for r in read(tmp_path)[0]] == [2]
    assert "step 4: 1 records written, 1 skipped" in capsys.readouterr().out


def test_each_worker_writes_its_own_shard(compose_ppo, tokenizer, tmp_path):
    cfg = compose_ppo("+recipe=sophiavl_grpo", f"reward.collect.dir={tmp_path}")
    workers = [ThinkingRewardManager(cfg, tokenizer, None) for _ in range(2)]
    for i, manager in enumerate(workers):
        score(manager, sample(tokenizer, GOOD, index=i))
    shards = sorted(p.name for p in tmp_path.iterdir())
    assert len(shards) == 2 and len({w.collector.tag for w in workers}) == 2
    records, _ = read(tmp_path)
    assert sorted(r.index for r in records) == [0, 1] and len({r.rid for r in records}) == 2


@pytest.mark.parametrize(
    ("node", "message"),
    [({"dir": "/tmp/x", "valdation": True}, r"unknown keys under reward\.collect: \['valdation'\]"),
     ({"dir": "/tmp/x", "validation": "yes"}, r"reward\.collect\.validation must be true or false")],
)  # fmt: skip
def test_config_errors_name_the_key(node, message):
    with pytest.raises(ValueError, match=message):
        CollectConfig.from_config(node)


def test_empty_dir_means_off():
    assert not CollectConfig.from_config({"dir": "", "validation": False}).enabled
    with pytest.raises(ValueError, match="needs reward.collect.dir"):
        RolloutCollector(CollectConfig())


WRITER = """
import sys
from sophiavl.rewards.collect import CollectConfig, RolloutCollector
collector = RolloutCollector(CollectConfig(dir=sys.argv[1]), tag="killed")
info = {"split": "train", "index": 1, "problem_type": "numerical"}
i = 0
while True:
    response = "<think>x</think><answer>1</answer>" * 50
    collector.add(info, "Math", "q", response, 1.0, step=i // 8 + 1, group=f"g{i // 8}")
    i += 1
"""


def test_a_killed_writer_leaves_whole_records_and_the_next_run_appends(tmp_path):
    folder = tmp_path / "rollouts"
    shard = folder / "rollouts-killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (shard.exists() and shard.read_bytes().count(b"\n") >= 200) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # while it writes
    proc.wait()
    data = shard.read_bytes()
    whole = data.count(b"\n")
    # a kill may land between two writes or inside one; cut the last line as a kill inside a write leaves it
    if data.endswith(b"\n"):
        shard.write_bytes(data[:-20])
        whole -= 1
    records, stats = read(folder)
    assert len(records) == whole >= 200
    assert stats.rejected == {"torn_line": 1}
    assert all(r.outcome == 1.0 and r.group == f"g{(r.step - 1)}" for r in records)
    # the resumed run (another process: another tag) appends a shard of its own; nothing is rewritten
    resumed = RolloutCollector(CollectConfig(dir=str(folder)))
    resumed.add({"split": "train", "index": 2, "problem_type": "numerical"}, "Math", "q", "r", 0.0, step=9, group="g")
    resumed.close()
    records2, stats2 = read(folder)
    assert len(records2) == whole + 1 and stats2.shards == 2 and stats2.rejected == {"torn_line": 1}
    assert [r for r in records2 if r.rid.startswith("killed-")] == records
