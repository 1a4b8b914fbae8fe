"""``import-responses`` against a real prepared parquet made from the embedded sample (``make prepare-data``'s
converter): rows found by split/index, Ro scored, bad lines counted with examples, reruns resume."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from sophiavl.data_prep.sophiavl_130k import main as prepare
from sophiavl.data_prep.trm_build.cli import main
from sophiavl.rewards.collect import ShardReadStats, iter_shard_records


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    assert prepare(["--out", str(out), "--val-size", "16", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def rows(prepared):
    """The prepared rows' identity and ground truth, read with pyarrow (not the module under test)."""
    table = pq.read_table(sorted(prepared.glob("train-*.parquet"))[0], columns=["reward_model", "extra_info"])
    return [{**r["extra_info"], "truth": r["reward_model"]["ground_truth"]} for r in table.to_pylist()]


def _numerical(rows, skip=0):
    return [r for r in rows if r["problem_type"] == "numerical"][skip]


def _write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def _read(folder):
    stats = ShardReadStats()
    return list(iter_shard_records(folder, stats)), stats


def test_responses_become_scored_rollout_records(prepared, rows, tmp_path, capsys):
    a, b = _numerical(rows), _numerical(rows, 1)
    right = f"<think>I count them.</think><answer>{a['truth']}</answer>"
    wrong = "<think>I guess.</think><answer>999</answer>"  # no ground truth of the sample is 999
    inputs = _write(tmp_path / "sampled.jsonl", [
        {"split": "train", "index": a["index"], "response": right, "problem_id": a["problem_id"]},
        "",  # blank lines are not lines
        {"split": "train", "index": b["index"], "response": wrong},
        {"split": "train", "index": a["index"], "response": "no format at all"},
    ])  # fmt: skip
    out = tmp_path / "rollouts"
    assert main(["import-responses", "--responses", str(inputs), "--data", str(prepared), "--out", str(out)]) == 0
    records, stats = _read(out)
    assert stats.shards == 1 and stats.rejected == {}
    assert [p.name for p in out.glob("rollouts-*.jsonl")] == ["rollouts-offline-sampled.jsonl"]
    # numerical: 1 for the right number, 0 for a wrong one; a response failing the format gate scores 0
    assert [(r.rid, r.index, r.outcome) for r in records] == [
        ("sampled:1", a["index"], 1.0),
        ("sampled:3", b["index"], 0.0),
        ("sampled:4", a["index"], 0.0),
    ]
    first = records[0]
    assert (first.split, first.problem_id, first.problem_type, first.question, first.response, first.source) == (
        "train", a["problem_id"], "numerical", a["question"], right, "offline")  # fmt: skip
    assert (first.step, first.group, first.data_source) == (None, None, a["data_source"])
    report = json.loads((out / "import_report-sampled.json").read_text())
    assert (report["lines"], report["imported"], report["rejected"], report["unscored"]) == (3, 3, {}, {})
    assert "3 lines, 3 imported" in capsys.readouterr().out


def test_bad_lines_are_counted_with_an_example_and_the_rest_imported(prepared, rows, tmp_path, capsys):
    a = _numerical(rows)
    good = {"split": "train", "index": a["index"], "response": "<think>t</think><answer>1</answer>"}
    inputs = _write(tmp_path / "mixed.jsonl", [
        good,
        "{not json",
        {"split": "train", "index": -1, "response": "r"},
        {"split": "train", "response": "r"},
        {"split": "train", "index": 10**6, "response": "r"},
        {"split": "test", "index": a["index"], "response": "r"},
        {**good, "problem_id": "someone-else"},
        [1, 2],
    ])  # fmt: skip
    out = tmp_path / "rollouts"
    assert main(["import-responses", "--responses", str(inputs), "--data", str(prepared), "--out", str(out)]) == 0
    records, _ = _read(out)
    assert [r.rid for r in records] == ["mixed:1"]
    report = json.loads((out / "import_report-mixed.json").read_text())
    assert report["lines"] == 8 and report["imported"] == 1
    assert report["rejected"] == {"bad_json": 1, "bad_line": 3, "missing_row": 2, "problem_id_mismatch": 1}
    assert report["examples"]["bad_json"].startswith("mixed.jsonl:2: ")
    assert report["examples"]["bad_line"] == "mixed.jsonl:3: field 'index' must be an integer >= 0, not -1"
    assert report["examples"]["missing_row"] == "mixed.jsonl:5: no row split='train' index=1000000"
    assert "'someone-else'" in report["examples"]["problem_id_mismatch"]
    assert "missing_row: 2" in capsys.readouterr().out


def test_all_rejected_is_a_failure_and_bad_arguments_are_usage_errors(prepared, tmp_path):
    inputs = _write(tmp_path / "nothing.jsonl", [{"split": "train", "index": 10**6, "response": "r"}])
    out = str(tmp_path / "out")
    assert main(["import-responses", "--responses", str(inputs), "--data", str(prepared), "--out", out]) == 1
    assert main(["import-responses", "--responses", str(inputs), "--data", str(tmp_path), "--out", out]) == 2
    missing = str(tmp_path / "absent.jsonl")
    assert main(["import-responses", "--responses", missing, "--data", str(prepared), "--out", out]) == 2
    twin = tmp_path / "sub"
    twin.mkdir()
    other = _write(twin / "nothing.jsonl", [])
    args = ["import-responses", "--responses", str(inputs), str(other), "--data", str(prepared), "--out", out]
    assert main(args) == 2


def test_a_killed_import_resumes_to_what_an_uninterrupted_one_writes(prepared, rows, tmp_path):
    numerical = [r for r in rows if r["problem_type"] == "numerical"][:6]
    lines = [{"split": "train", "index": r["index"], "response": f"<think>t</think><answer>{r['truth']}</answer>"}
             for r in numerical]  # fmt: skip
    inputs = _write(tmp_path / "run.jsonl", lines)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    for out in (whole, cut):
        assert main(["import-responses", "--responses", str(inputs), "--data", str(prepared), "--out", str(out)]) == 0
    # the interrupted import: its shard holds the first 2 records and a torn third line, as a kill leaves it
    shard = cut / "rollouts-offline-run.jsonl"
    kept = shard.read_bytes().split(b"\n")
    shard.write_bytes(b"\n".join(kept[:2]) + b"\n" + kept[2][:30])
    assert main(["import-responses", "--responses", str(inputs), "--data", str(prepared), "--out", str(cut)]) == 0
    report = json.loads((cut / "import_report-run.json").read_text())
    assert (report["already_imported"], report["imported"]) == (2, 4)
    resumed, stats = _read(cut)
    # the writer ended the torn line before appending: it stays one bad line, which every reader skips and counts
    assert stats.rejected == {"bad_json": 1}
    assert resumed == _read(whole)[0]
    assert [r.outcome for r in resumed] == [1.0] * 6
    # a third run finds everything done
    assert main(["import-responses", "--responses", str(inputs), "--data", str(prepared), "--out", str(cut)]) == 0
    assert json.loads((cut / "import_report-run.json").read_text())["imported"] == 0
    assert len(_read(cut)[0]) == 6
