"""``annotate`` against the loopback fake judge, on the embedded sample prepared for real and shards written with
ShardWriter: what each request carries, what each line holds, the counted bad input, structured output, samples,
served-model lookup and outages."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from sophiavl.data_prep.trm_build.annotation import Annotation
from sophiavl.data_prep.trm_build.cli import main
from sophiavl_testing.annotate_helpers import (
    grid_reply_for,
    prepare_sample,
    read_prepared,
    rollout,
    synthetic_prepared,
    write_rollouts,
)

TEMPLATE = Path(__file__).resolve().parents[3] / "data_prep" / "trm_build" / "prompts" / "thinking_label.txt"
GRID_STRINGS = ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]
RID = re.compile(r"step of (\S+?)</think>")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_sample(tmp_path_factory.mktemp("prepared"))


@pytest.fixture(scope="module")
def rows(prepared):
    return read_prepared(prepared)


def sendable_rows(rows):
    """The prepared rows with one image or none (a row with several is a counted row error)."""
    return [key for key, row in sorted(rows.items()) if len(row["images"]) <= 1]


def user_text(payload: dict) -> str:
    return next(p["text"] for p in payload["messages"][-1]["content"] if p["type"] == "text")


def request_rid(payload: dict) -> str:
    return RID.search(user_text(payload)).group(1)


def scripted(payload: dict) -> tuple:
    return ("reply", grid_reply_for(request_rid(payload)))


def annotate(out, rollouts, prepared, base_url, *extra) -> int:
    argv = ["annotate", "--rollouts", str(rollouts), "--data", str(prepared), "--base-url", base_url]
    argv += ["--model", "judge-a", "--out", str(out), "--no-progress", "--max-retries", "0", "--backoff-s", "0"]
    return main(argv + list(extra))


def read_lines(out: Path) -> list[Annotation]:
    return [Annotation.from_line(line) for f in sorted(out.glob("annotations-*.jsonl")) for line in f.open()]


def report(out: Path) -> dict:
    return json.loads((out / "annotate_report.json").read_text())


def test_each_request_carries_its_rows_image_question_and_response(tmp_path, prepared, rows, fake_judge):
    keys = sendable_rows(rows)
    assert any(not rows[k]["images"] for k in keys) and any(rows[k]["images"] for k in keys)
    records = [rollout(f"r{n}", rows[key]["extra_info"]) for n, key in enumerate(keys)]
    write_rollouts(tmp_path / "roll", records)
    fake_judge.default = ("script", scripted)
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url) == 0

    by_rid = {r.rid: r for r in records}
    assert sorted(request_rid(p) for p in fake_judge.requests) == sorted(by_rid)
    for payload in fake_judge.requests:
        record = by_rid[request_rid(payload)]
        expected = rows[(record.split, record.index)]["images"]
        urls = [p["image_url"]["url"] for p in payload["messages"][-1]["content"] if p["type"] == "image_url"]
        assert [base64.b64decode(u.split(",", 1)[1]) for u in urls] == expected  # [] for a text-only row
        text = user_text(payload)
        assert f"Question: {record.question.replace('<image>', '').strip()}" in text
        assert f"Response: {record.response}" in text
        assert "Be strict" in text
        assert payload["model"] == "judge-a"
        assert payload["structured_outputs"] == {"choice": GRID_STRINGS}

    lines = read_lines(tmp_path / "out")
    assert sorted(a.rollout.rid for a in lines) == sorted(by_rid)
    template_hash = hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()
    for a in lines:
        assert a.rollout == by_rid[a.rollout.rid]
        assert a.judge_model == "judge-a" and a.prompt_sha256 == template_hash and a.row_error is None
        assert a.scores == [float(grid_reply_for(a.rollout.rid))]
        assert a.raw == [grid_reply_for(a.rollout.rid)] and a.errors == [None]
        images = rows[(a.rollout.split, a.rollout.index)]["images"]
        assert a.images == [hashlib.sha256(i).hexdigest() + ".png" for i in images]  # the sample's images are PNGs
        for name, image in zip(a.images, images, strict=True):
            assert (tmp_path / "out" / "images" / name).read_bytes() == image
    distinct = {hashlib.sha256(i).hexdigest() for k in keys for i in rows[k]["images"]}
    assert len(list((tmp_path / "out" / "images").iterdir())) == len(distinct)  # each distinct image once
    rep = report(tmp_path / "out")
    assert rep["rows"]["written"] == len(records) and rep["complete"] is True
    assert sum(rep["scores"].values()) == len(records)


def test_a_row_with_several_images_is_a_counted_row_error(tmp_path, prepared, rows, fake_judge):
    key = next(k for k, row in sorted(rows.items()) if len(row["images"]) == 2)
    write_rollouts(tmp_path / "roll", [rollout("two", rows[key]["extra_info"])])
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url) == 0
    (line,) = read_lines(tmp_path / "out")
    assert line.row_error.startswith("multi_image: 2 images") and fake_judge.requests == []
    assert report(tmp_path / "out")["row_errors"] == {"multi_image": 1}


def test_bad_input_is_counted_with_an_example_and_never_a_score(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 6, group_rows=2, bad_image_index=3)
    extra = {k[1]: v["extra_info"] for k, v in read_prepared(prepared).items()}
    records = [
        rollout("ok", extra[0]),
        rollout("missing", extra[1], index=99),
        rollout("mismatch", extra[2], problem_id="other"),
        rollout("badimg", extra[3]),
        rollout("offgrid", extra[4]),
        rollout("seven", extra[4]),
        rollout("garbage", extra[5]),
    ]
    shard = write_rollouts(tmp_path / "roll", records)
    with shard.open("ab") as fh:
        fh.write(b'{"v": 1, "rid": "torn"')  # a killed collector's last line
    replies = {"ok": "0.4", "offgrid": "0.75", "seven": "I give it 7", "garbage": "looks fine to me"}
    fake_judge.default = ("script", lambda p: ("reply", replies[request_rid(p)]))
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url) == 0

    lines = {a.rollout.rid: a for a in read_lines(tmp_path / "out")}
    assert sorted(lines) == sorted(r.rid for r in records)
    assert lines["ok"].scores == [0.4]
    assert lines["missing"].row_error.startswith("missing_row: ")
    assert lines["mismatch"].row_error.startswith("problem_id_mismatch: ")
    assert lines["badimg"].row_error.startswith("bad_image: ")
    for rid in ("missing", "mismatch", "badimg"):
        assert lines[rid].scores == [] and lines[rid].images == []
    assert lines["offgrid"].scores == [None] and lines["offgrid"].errors[0].startswith("off_grid: ")
    assert lines["seven"].scores == [None] and lines["seven"].errors[0].startswith("off_grid: ")
    assert lines["garbage"].scores == [None] and lines["garbage"].errors[0].startswith("unparsable: ")
    assert lines["garbage"].raw == ["looks fine to me"]
    assert len(fake_judge.requests) == 4  # no request for the three rows that could not be sent

    rep = report(tmp_path / "out")
    assert rep["rollouts"]["rejected"] == {"torn_line": 1}
    assert "rollouts-test.jsonl:8" in rep["rollouts"]["examples"]["torn_line"]
    assert rep["row_errors"] == {"missing_row": 1, "problem_id_mismatch": 1, "bad_image": 1}
    assert rep["sample_errors"] == {"off_grid": 2, "unparsable": 1}
    for kind in ("missing_row", "problem_id_mismatch", "bad_image", "off_grid", "unparsable"):
        assert kind in rep["examples"][kind]
    assert rep["scores"]["0.4"] == 1 and sum(rep["scores"].values()) == 1


def test_structured_output_auto_falls_back_when_the_server_rejects_it(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 4)
    extra = [v["extra_info"] for v in read_prepared(prepared).values()]
    write_rollouts(tmp_path / "roll", [rollout(f"r{i}", e) for i, e in enumerate(extra)])
    fake_judge.reject_fields = {"structured_outputs"}
    fake_judge.default = ("reply", "0.9")
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url, "--concurrency", "1") == 0
    assert [a.scores for a in read_lines(tmp_path / "out")] == [[0.9]] * 4
    # the first row: asked with the field (400), again without; the other three without it
    assert ["structured_outputs" in p for p in fake_judge.requests] == [True, False, False, False, False]
    rep = report(tmp_path / "out")["structured_output"]
    assert rep["active_at_end"] is False and "400" in rep["note"]


def test_structured_output_fallback_with_rows_in_flight_loses_no_row(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 16)
    extra = [v["extra_info"] for v in read_prepared(prepared).values()]
    write_rollouts(tmp_path / "roll", [rollout(f"r{i}", e) for i, e in enumerate(extra)])
    fake_judge.reject_fields = {"structured_outputs"}
    fake_judge.default = ("reply", "0.2")
    fake_judge.latency_s = 0.02  # several requests carrying the field are in flight when the first 400 comes back
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url, "--concurrency", "8") == 0
    lines = read_lines(tmp_path / "out")
    assert sorted(a.rollout.rid for a in lines) == sorted(f"r{i}" for i in range(16))
    assert all(a.scores == [0.2] and a.errors == [None] for a in lines)
    assert report(tmp_path / "out")["sample_errors"] == {}


def test_structured_output_off_and_guided_choice_style(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 1)
    extra = next(iter(read_prepared(prepared).values()))["extra_info"]
    write_rollouts(tmp_path / "roll", [rollout("a", extra)])
    assert (
        annotate(tmp_path / "o1", tmp_path / "roll", prepared, fake_judge.base_url, "--structured-output", "off") == 0
    )
    assert "structured_outputs" not in fake_judge.requests[0] and "guided_choice" not in fake_judge.requests[0]
    fake_judge.reset()
    args = ("--structured-style", "guided_choice")
    assert annotate(tmp_path / "o2", tmp_path / "roll", prepared, fake_judge.base_url, *args) == 0
    assert fake_judge.requests[0]["guided_choice"] == GRID_STRINGS


def test_samples_k_are_all_kept_and_need_a_temperature(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 1)
    extra = next(iter(read_prepared(prepared).values()))["extra_info"]
    write_rollouts(tmp_path / "roll", [rollout("a", extra)])
    fake_judge.default = ("choices", ["0.6", "0.8", "nope"])
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url, "--samples", "3") == 0
    (line,) = read_lines(tmp_path / "out")
    assert line.scores == [0.6, 0.8, None] and line.raw == ["0.6", "0.8", "nope"]
    assert line.errors[:2] == [None, None] and line.errors[2].startswith("unparsable")
    assert fake_judge.requests[0]["n"] == 3 and fake_judge.requests[0]["temperature"] == 1.0
    args = ("--samples", "2", "--temperature", "0")
    assert annotate(tmp_path / "o2", tmp_path / "roll", prepared, fake_judge.base_url, *args) == 2


def test_a_second_judge_labels_the_same_rows_into_the_same_folder(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 3)
    extra = [v["extra_info"] for v in read_prepared(prepared).values()]
    write_rollouts(tmp_path / "roll", [rollout(f"r{i}", e) for i, e in enumerate(extra)])
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url) == 0
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url, "--model", "judge-b") == 0
    pairs = sorted((a.rollout.rid, a.judge_model) for a in read_lines(tmp_path / "out"))
    assert pairs == [(f"r{i}", m) for i in range(3) for m in ("judge-a", "judge-b")]
    assert sorted(p.name for p in (tmp_path / "out").glob("annotations-*")) == [
        "annotations-judge-a.jsonl",
        "annotations-judge-b.jsonl",
    ]
    assert len(list((tmp_path / "out" / "images").iterdir())) == 3  # the images were written once


def test_served_model_is_looked_up_when_no_model_is_given(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 1)
    extra = next(iter(read_prepared(prepared).values()))["extra_info"]
    write_rollouts(tmp_path / "roll", [rollout("a", extra)])
    argv = ["annotate", "--rollouts", str(tmp_path / "roll"), "--data", str(prepared), "--out", str(tmp_path / "o")]
    assert main(argv + ["--base-url", fake_judge.base_url, "--no-progress"]) == 0
    (line,) = read_lines(tmp_path / "o")
    assert line.judge_model == "fake-thinking-rm" and fake_judge.requests[0]["model"] == "fake-thinking-rm"


def test_an_outage_stops_the_run_naming_the_endpoint_and_the_rerun_resumes(tmp_path, fake_judge, refused_url, capsys):
    prepared = synthetic_prepared(tmp_path / "prep", 12, group_rows=4)
    extra = [v["extra_info"] for v in read_prepared(prepared).values()]
    write_rollouts(tmp_path / "roll", [rollout(f"r{i}", e) for i, e in enumerate(extra)])
    args = ("--max-consecutive-failures", "3", "--concurrency", "2")
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, refused_url, *args) == 3
    err = capsys.readouterr().err
    assert "judge outage at " + refused_url + "/chat/completions" in err
    assert read_lines(tmp_path / "out") == []  # a failed call never becomes a line
    rep = report(tmp_path / "out")
    assert rep["complete"] is False and rep["unreachable"]["connection"] >= 3

    # a server that answers 503 every time: the same, through the HTTP path
    fake_judge.default = ("status", 503)
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url, *args) == 3
    assert read_lines(tmp_path / "out") == []
    assert report(tmp_path / "out")["unreachable"]["http_503"] >= 3

    fake_judge.default = ("script", scripted)
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url, *args) == 0
    lines = read_lines(tmp_path / "out")
    assert sorted(a.rollout.rid for a in lines) == sorted(f"r{i}" for i in range(12))
    assert all(a.scores == [float(grid_reply_for(a.rollout.rid))] for a in lines)


def test_a_failure_budget_stops_a_run_of_scattered_failures(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 8)
    extra = [v["extra_info"] for v in read_prepared(prepared).values()]
    write_rollouts(tmp_path / "roll", [rollout(f"r{i}", e) for i, e in enumerate(extra)])
    fake_judge.default = ("script", lambda p: ("status", 500) if int(request_rid(p)[1:]) % 2 else ("reply", "0.5"))
    args = ("--max-failures", "2", "--concurrency", "1")
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url, *args) == 3
    # rows r0..r5 asked in order: r1, r3, r5 fail; the third failure is past the budget of 2
    assert sorted(a.rollout.rid for a in read_lines(tmp_path / "out")) == ["r0", "r2", "r4"]


def test_missing_folders_are_usage_errors(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 1)
    assert annotate(tmp_path / "out", tmp_path / "nope", prepared, fake_judge.base_url) == 2
    assert annotate(tmp_path / "out", tmp_path / "prep", tmp_path / "nodata", fake_judge.base_url) == 2
    assert fake_judge.requests == []


def test_a_rollout_id_that_comes_twice_is_annotated_once(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", 2)
    extra = [v["extra_info"] for v in read_prepared(prepared).values()]
    write_rollouts(tmp_path / "roll", [rollout("a", extra[0]), rollout("b", extra[1])], tag="one")
    write_rollouts(tmp_path / "roll", [rollout("a", extra[0])], tag="two")  # the same rid in a second shard
    assert annotate(tmp_path / "out", tmp_path / "roll", prepared, fake_judge.base_url) == 0
    assert sorted(a.rollout.rid for a in read_lines(tmp_path / "out")) == ["a", "b"]
    assert len(fake_judge.requests) == 2
    rows = report(tmp_path / "out")["rows"]
    assert rows["read"] == 3 and rows["written"] == 2 and rows["skipped_done"] == 1
