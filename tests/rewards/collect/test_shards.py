"""The collected-rollout record and its append-only shards: round trip, validation, torn and malformed lines."""

from __future__ import annotations

import json

import pytest

from sophiavl.rewards.collect import RolloutRecord, ShardReadStats, ShardWriter, iter_shard_records


def _record(rid: str = "run-1-0", **changes) -> RolloutRecord:
    values = dict(
        rid=rid,
        split="train",
        index=3,
        problem_id="math-7",
        data_source="Math",
        problem_type="numerical",
        question="How many circles?",
        response="<think>two</think><answer>2</answer>",
        outcome=1.0,
        step=4,
        group="uid-a",
        source="grpo",
    )
    values.update(changes)
    return RolloutRecord(**values)


def test_a_record_round_trips_through_its_line():
    record = _record()
    line = record.to_line()
    assert line.endswith("\n") and json.loads(line)["v"] == 1
    assert RolloutRecord.from_line(line) == record


def test_a_nan_outcome_is_written_as_null():
    assert json.loads(_record(outcome=float("nan")).to_line())["outcome"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"index": -1}, "'index'"),
        ({"index": True}, "'index'"),
        ({"outcome": 1.5}, "'outcome'"),
        ({"step": "3"}, "'step'"),
        ({"source": "web"}, "'source'"),
        ({"rid": ""}, "'rid' is empty"),
        ({"question": None}, "'question'"),
    ],
)
def test_a_bad_field_is_refused_by_name(change, message):
    data = json.loads(_record().to_line())
    data.update(change)
    with pytest.raises(ValueError, match=message):
        RolloutRecord.from_dict(data)


def test_a_missing_field_and_another_version_are_refused():
    data = json.loads(_record().to_line())
    with pytest.raises(ValueError, match="version 2"):
        RolloutRecord.from_dict({**data, "v": 2})
    del data["response"]
    with pytest.raises(ValueError, match="'response' missing"):
        RolloutRecord.from_dict(data)


def test_torn_and_malformed_lines_are_skipped_and_counted(tmp_path):
    writer = ShardWriter(tmp_path, "a")
    writer.write([_record("a-0"), _record("a-1")])
    writer.close()
    with open(writer.path, "a", encoding="utf-8") as fh:
        fh.write("not json\n")
        fh.write(json.dumps({"v": 1, "rid": "x"}) + "\n")
        fh.write(_record("a-2").to_line()[:40])  # a killed run's half-written last line
    stats = ShardReadStats()
    rids = [r.rid for r in iter_shard_records(tmp_path, stats)]
    assert rids == ["a-0", "a-1"]
    assert stats.shards == 1 and stats.records == 2
    assert stats.rejected == {"bad_json": 1, "bad_record": 1, "torn_line": 1}
    assert stats.examples["torn_line"].startswith("rollouts-a.jsonl:5:")


def test_a_resumed_writer_starts_a_new_line_after_a_torn_one(tmp_path):
    first = ShardWriter(tmp_path, "a")
    first.write([_record("a-0")])
    first.close()
    with open(first.path, "a", encoding="utf-8") as fh:
        fh.write('{"v": 1, "rid": "torn')
    second = ShardWriter(tmp_path, "a")
    second.write([_record("a-1")])
    second.close()
    stats = ShardReadStats()
    assert [r.rid for r in iter_shard_records(tmp_path, stats)] == ["a-0", "a-1"]
    assert stats.rejected == {"bad_json": 1}


def test_shards_are_read_in_name_order_and_a_missing_folder_is_an_error(tmp_path):
    for tag in ("b", "a"):
        writer = ShardWriter(tmp_path, tag)
        writer.write([_record(f"{tag}-0")])
        writer.close()
    assert [r.rid for r in iter_shard_records(tmp_path)] == ["a-0", "b-0"]
    with pytest.raises(FileNotFoundError, match="no rollout folder"):
        list(iter_shard_records(tmp_path / "missing"))
