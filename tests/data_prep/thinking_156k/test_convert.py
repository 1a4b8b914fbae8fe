"""The Thinking-156k converter (``python -m sophiavl.data_prep.thinking_156k``) on its embedded sample and on bad
input of every kind. Expected values come from the sample's record files read with :mod:`json` and from counts
written out by hand, never from the converter."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sophiavl.data_prep.convert import ConvertError
from sophiavl.data_prep.sample.make_trm_sample import build
from sophiavl.data_prep.thinking_156k.cli import SAMPLE_ROOT, main
from sophiavl.data_prep.thinking_156k.convert import TrmOptions, convert_trm
from sophiavl.data_prep.thinking_156k.fields import FieldError, detect_fields, parse_field_overrides
from sophiavl.data_prep.thinking_156k.records import REASONS, SampleRejected, image_paths, parse_score
from sophiavl.rewards.trm.prompt import sft_messages
from sophiavl_testing.data_prep_helpers import bomb_png, folder_files, lay_out_hub_cache, png_bytes, read_record_file

LEVELS = [f"{k / 10:.1f}" for k in range(11)]


def sample_records() -> dict[str, list[dict]]:
    """The sample's records per record file (read with json, not the converter's reader)."""
    return {
        "json/multimodal_part.json": read_record_file(SAMPLE_ROOT / "json" / "multimodal_part.json"),
        "text_part.jsonl": read_record_file(SAMPLE_ROOT / "text_part.jsonl"),
    }


def source_bytes(rel: str) -> bytes:
    rel = rel.removeprefix("./")
    if (SAMPLE_ROOT / rel).exists():
        return (SAMPLE_ROOT / rel).read_bytes()
    with zipfile.ZipFile(SAMPLE_ROOT / "Chart.zip") as zf:
        return zf.read(rel)


def rows(out: Path) -> list[dict]:
    return [r for p in sorted(out.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def run(src, out, **kw) -> dict:
    return convert_trm(TrmOptions(src=str(src), out=str(out), progress=False, **kw))


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("trm")
    return out, run(SAMPLE_ROOT, out, val_size=12)


# --- the sample -----------------------------------------------------------------------------------------------


def test_sample_generator_is_deterministic_and_matches_the_committed_sample(tmp_path):
    build(tmp_path / "a")
    build(tmp_path / "b")
    a, b = folder_files(tmp_path / "a"), folder_files(tmp_path / "b")
    assert a == b
    committed = folder_files(SAMPLE_ROOT)
    assert a.keys() == committed.keys()
    records = ("json/multimodal_part.json", "text_part.jsonl")
    assert {k: a[k] for k in records} == {k: committed[k] for k in records}  # images may differ across Pillow


def test_sample_layout_covers_what_the_converter_must_handle():
    recs = sample_records()
    mm, text = recs["json/multimodal_part.json"], recs["text_part.jsonl"]
    assert len(mm) == 40 and len(text) == 20
    assert sum(len(v) for v in folder_files(SAMPLE_ROOT).values()) < 400_000
    assert {f"{r['score']:.1f}" for r in mm} == set(LEVELS)  # every level among image rows...
    assert {r["score"] for r in text} == set(LEVELS)  # ...and among text rows, as numeric strings
    assert all("path" not in r and "id" not in r for r in text)
    members = zipfile.ZipFile(SAMPLE_ROOT / "Chart.zip").namelist()
    assert len(members) == 12 and all(m.startswith("Chart/bars/") for m in members)
    assert not (SAMPLE_ROOT / "Chart").exists()
    assert Counter(r["path"] for r in mm).most_common(1)[0] == ("./General/shared/scene_night_house.png", 4)
    assert sum("<image>" in r["problem"] for r in mm) == 2 and sum("<image>" in r["response"] for r in mm) == 1


def test_sample_report(sample_out):
    out, report = sample_out
    assert report["status"] == "ok" and report["rows_read"] == 60
    assert report["rows_written"] == {"train": 48, "val": 12, "total": 60}
    assert report["rows_rejected"] == {"total": 0, "by_reason": {}}
    assert report["by_subset"] == {
        "json/multimodal_part.json": {"read": 40, "written": 40, "rejected": 0},
        "text_part.jsonl": {"read": 20, "written": 20, "rejected": 0},
    }
    assert report["fields"] == {
        "json/multimodal_part.json": {
            "question": "problem",
            "response": "response",
            "score": "score",
            "image": "path",
            "source": "data_source",
            "id": "id",
        },
        "text_part.jsonl": {
            "question": "question",
            "response": "response",
            "score": "score",
            "image": None,
            "source": "source",
            "id": None,
        },
    }
    assert report["images_written"] == 40
    assert report["text_only"]["total"] == 20 and report["text_only"]["share"] == round(20 / 60, 6)
    assert report["text_only"]["train"] + report["text_only"]["val"] == 20
    assert report["by_data_source"] == {
        "CLEVR-like": 12,
        "ChartQA": 12,
        "LIMO": 10,
        "MetaMathQA": 10,
        "ScienceQA": 4,
        "TextOCR": 12,
    }
    # histograms: train + val per level equals the records' levels; 40 image rows cycle through 11 levels from
    # 0.0 (0.0-0.6: 4 rows, 0.7-1.0: 3 rows) and 20 text rows from 0.5 (all 2 rows but 0.3 and 0.4: 1 row)
    want = Counter({lvl: 3 for lvl in LEVELS}) + Counter({lvl: 1 for lvl in LEVELS[:7]})
    want += Counter({lvl: 2 for lvl in LEVELS}) - Counter({"0.3": 1, "0.4": 1})
    h = report["score_histogram"]
    assert {lvl: h["train"][lvl] + h["val"][lvl] for lvl in LEVELS} == dict(want)
    assert sum(h["val"].values()) == 12 and list(h["train"]) == LEVELS
    by_src = report["score_histogram_by_data_source"]
    assert sum(sum(s.values()) for src in by_src.values() for s in src.values()) == 60
    assert sum(by_src["ScienceQA"]["train"].values()) + sum(by_src["ScienceQA"]["val"].values()) == 4
    sharing = report["image_sharing"]
    assert sharing["limit"] == 32 and sharing["images"] == 37 and sharing["images_over_limit"] == 0
    assert sharing["worst"][0] == {"path": "General/shared/scene_night_house.png", "distinct_questions": 4, "rows": 4}
    assert report["shards"] == {"train": ["train-00000.parquet"], "val": ["val-00000.parquet"]}
    assert (out / "rejects.jsonl").read_text() == ""


def test_sample_rows_are_the_judges_prompt_with_original_images(sample_out):
    out, _ = sample_out
    recs = sample_records()
    by_key = {("json/multimodal_part.json", r["id"]): r for r in recs["json/multimodal_part.json"]}
    by_key.update({("text_part.jsonl", str(i)): r for i, r in enumerate(recs["text_part.jsonl"])})
    got = rows(out)
    assert len(got) == 60
    index = Counter()
    for row in got:
        assert set(row) == {"messages", "images", "extra_info"}
        extra = row["extra_info"]
        assert set(extra) == {"split", "index", "id", "data_source", "score"}
        assert extra["index"] == index[extra["split"]]  # 0, 1, 2... within each split, in file order
        index[extra["split"]] += 1
        file = "json/multimodal_part.json" if extra["id"].startswith("mm-") else "text_part.jsonl"
        rec = by_key[(file, extra["id"])]
        question = rec.get("problem", rec.get("question"))
        score = float(rec["score"])
        assert extra["score"] == score and extra["data_source"] == rec.get("data_source", rec.get("source"))
        has_image = "path" in rec
        assert row["messages"] == sft_messages(question, rec["response"], has_image, score)
        system, user, assistant = row["messages"]
        assert system == {"role": "system", "content": "You are a helpful assistant."}
        assert assistant == {"role": "assistant", "content": f"<answer>{score:.1f}</answer>"}
        assert user["content"].count("<image>") == len(row["images"]) == int(has_image)
        assert user["content"].endswith("<image>" if has_image else "\n")
        assert "<video>" not in user["content"] and "<audio>" not in user["content"]
        if has_image:
            assert [sha(i["bytes"]) for i in row["images"]] == [sha(source_bytes(rec["path"]))]
        else:
            assert row["images"] == []


def test_val_split_is_deterministic_and_independent_of_record_order(sample_out, tmp_path):
    out, _ = sample_out
    first = {(r["extra_info"]["data_source"], r["extra_info"]["id"]): r["extra_info"]["split"] for r in rows(out)}
    src = tmp_path / "src"
    shutil.copytree(SAMPLE_ROOT, src)
    mm = read_record_file(src / "json" / "multimodal_part.json")
    (src / "json" / "multimodal_part.json").write_text(json.dumps(mm[::-1]))  # reversed (its ids are explicit)
    run(src, tmp_path / "out", val_size=12)
    second = {
        (r["extra_info"]["data_source"], r["extra_info"]["id"]): r["extra_info"]["split"]
        for r in rows(tmp_path / "out")
        if r["extra_info"]["id"].startswith("mm-")
    }
    assert second == {k: v for k, v in first.items() if k[1].startswith("mm-")}


def test_rerun_replaces_shards_and_max_rows(sample_out, tmp_path):
    out, _ = sample_out
    report = run(SAMPLE_ROOT, tmp_path, val_size=12, shard_rows=20)
    assert report["shards"]["train"] == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    assert [pq.ParquetFile(tmp_path / f).metadata.num_rows for f in report["shards"]["train"]] == [20, 20, 8]
    assert rows(tmp_path) == rows(out)
    report = run(SAMPLE_ROOT, tmp_path, val_size=0, max_rows=45)  # files in name order: 40 json/..., then 5 text
    assert report["rows_read"] == 45 and sorted(p.name for p in tmp_path.glob("*.parquet")) == ["train-00000.parquet"]
    assert report["by_subset"]["text_part.jsonl"]["read"] == 5


@pytest.mark.slow
def test_workers_give_the_same_output(sample_out, tmp_path):
    out, _ = sample_out
    run(SAMPLE_ROOT, tmp_path, val_size=12, workers=2, batch_rows=7)
    assert rows(tmp_path) == rows(out)


def test_images_path_mode(tmp_path):
    report = run(SAMPLE_ROOT, tmp_path, val_size=0, images="path", max_reject_rate=1)
    assert report["rows_rejected"]["by_reason"] == {"image_only_in_archive": 12}  # the zipped charts
    for row in rows(tmp_path):
        for image in row["images"]:
            assert set(image) == {"image"} and os.path.isabs(image["image"]) and os.path.isfile(image["image"])


def test_shared_image_limit_rejects_every_row_of_the_image(tmp_path):
    report = run(SAMPLE_ROOT, tmp_path, val_size=12, shared_image_limit=3)
    assert report["rows_rejected"]["by_reason"] == {"image_shared": 4}
    assert report["status"] == "reject_rate_exceeded"  # 4 / 60 > 0.05, written anyway
    assert report["rows_written"] == {"train": 44, "val": 12, "total": 56}  # val chosen among the valid rows
    sharing = report["image_sharing"]
    assert sharing["images_over_limit"] == 1 and sharing["rows_rejected"] == 4
    lines = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert sorted(x["problem_id"] for x in lines) == ["mm-0036", "mm-0037", "mm-0038", "mm-0039"]
    assert all("4 distinct questions (limit 3)" in x["detail"] for x in lines)


# --- bad input ----------------------------------------------------------------------------------------------


def _rec(i, **kw) -> dict:
    base = {"id": f"r{i}", "question": f"Question {i}?", "response": "<think>ok</think><answer>1</answer>"}
    return {**base, "score": 0.5, **kw}


@pytest.fixture
def bad_src(tmp_path) -> Path:
    """One record per rejection reason (plus valid rows), in a root JSON file and a json/ JSON lines file."""
    src = tmp_path / "bad"
    (src / "img").mkdir(parents=True)
    (src / "img" / "ok.png").write_bytes(png_bytes(8, 8))
    (src / "img" / "shared.png").write_bytes(png_bytes(8, 8, (0, 255, 0)))
    (src / "img" / "garbage.png").write_bytes(b"not a png at all")
    (src / "img" / "bomb.png").write_bytes(bomb_png(3000, 3000))
    with zipfile.ZipFile(src / "Pics.zip", "w") as zf:
        zf.writestr("Pics/z.png", png_bytes(6, 6))
    root_records = [
        _rec(0, path="./img/ok.png", score="0.7"),  # valid: numeric string
        _rec(1, score=0.1 + 0.2),  # valid: snapped to 0.3, text-only
        _rec(2, path="", data_source="X"),  # valid: empty path = text-only
        _rec(3, path=["Pics/z.png"]),  # valid: one-element list, image in the archive
        5,  # not_an_object
        _rec(4, id=None),  # missing_id
        _rec(0),  # duplicate_id (r0 again)
        _rec(5, question="<image>  "),  # empty_question
        _rec(6, response=3),  # empty_response
        _rec(7, score="abc"),  # score_not_a_number
        _rec(8, score=None),  # score_not_a_number
        _rec(9, score=True),  # score_not_a_number
        _rec(10, score=1.5),  # score_out_of_range
        _rec(11, score=-0.2),  # score_out_of_range
        _rec(12, score=0.25),  # score_off_grid
        _rec(13, path=["img/ok.png", "img/ok.png"]),  # too_many_images
        _rec(14, path="../outside.png"),  # path_escapes_root
        _rec(15, path="/etc/passwd"),  # path_escapes_root
        _rec(16, path="img/nope.png"),  # image_missing
        _rec(17, path="img/garbage.png"),  # image_unreadable
        _rec(18, path="img/bomb.png"),  # image_too_large (max_pixels below)
    ]
    (src / "records.json").write_text(json.dumps(root_records))
    (src / "json").mkdir()
    shared = [_rec(100 + k, question=f"Shared question {k}?", path="img/shared.png") for k in range(3)]
    shared.append(_rec(103, question="<image>Shared question 0?", path="./img/shared.png"))  # same question
    (src / "json" / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shared))
    return src


def test_every_rejection_reason_is_counted_and_reported(bad_src, tmp_path):
    out = tmp_path / "out"
    report = run(bad_src, out, val_size=0, max_pixels=1_000_000, shared_image_limit=2, max_reject_rate=1)
    assert report["rows_read"] == 25
    assert report["rows_rejected"]["by_reason"] == {
        "not_an_object": 1,
        "missing_id": 1,
        "duplicate_id": 1,
        "empty_question": 1,
        "empty_response": 1,
        "score_not_a_number": 3,
        "score_out_of_range": 2,
        "score_off_grid": 1,
        "too_many_images": 1,
        "path_escapes_root": 2,
        "image_shared": 4,  # 3 distinct questions > limit 2: all 4 rows of the image
        "image_missing": 1,
        "image_unreadable": 1,
        "image_too_large": 1,
    }
    assert set(report["rows_rejected"]["by_reason"]) | {"image_only_in_archive"} == set(REASONS)
    assert report["rows_written"]["total"] == 4
    assert report["image_sharing"]["worst"][0] == {"path": "img/shared.png", "distinct_questions": 3, "rows": 4}
    written = {r["extra_info"]["id"]: r for r in rows(out)}
    assert set(written) == {"r0", "r1", "r2", "r3"}
    assert [r["extra_info"]["score"] for r in written.values()] == [0.7, 0.3, 0.5, 0.5]
    assert written["r1"]["messages"][2]["content"] == "<answer>0.3</answer>"
    assert written["r1"]["images"] == [] and written["r2"]["images"] == []
    assert written["r2"]["extra_info"]["data_source"] == "X"
    assert written["r1"]["extra_info"]["data_source"] == "records"  # no source: the file name
    assert written["r3"]["images"] == [{"bytes": png_bytes(6, 6)}]
    lines = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(lines) == 21 and set(lines[0]) == {"subset", "file", "record_index", "problem_id", "reason", "detail"}
    assert lines[0] == {
        "subset": "json/more.jsonl",
        "file": "more.jsonl",
        "record_index": 0,
        "problem_id": "r100",
        "reason": "image_shared",
        "detail": "img/shared.png is used by 3 distinct questions (limit 2)",
    }
    dup = next(x for x in lines if x["reason"] == "duplicate_id")
    assert dup["problem_id"] == "r0" and dup["record_index"] == 6 and dup["subset"] == "records.json"


def test_reject_rate_over_the_limit_exits_1_after_writing_everything(bad_src, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--src", str(bad_src), "--out", str(out), "--val-size", "0", "--no-progress"]) == 1
    assert "FAILED: reject rate" in capsys.readouterr().out
    for name in ("report.json", "rejects.jsonl", "train-00000.parquet"):
        assert (out / name).exists()


def test_a_file_without_a_required_field_stops_the_run_listing_its_keys(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_text(json.dumps({"question": "q", "response": "r", "rating": 0.5}) + "\n")
    out = tmp_path / "out"
    assert main(["--src", str(src), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "a.jsonl: no key for the score" in err and "question, rating, response" in err and "--field score=" in err
    assert not out.exists()
    args = ["--src", str(src), "--out", str(out), "--no-progress", "--val-size", "0"]
    assert main([*args, "--field", "score=rating"]) == 0
    assert json.loads((out / "report.json").read_text())["fields"]["a.jsonl"]["score"] == "rating"
    assert main(["--src", str(src), "--out", str(tmp_path / "o2"), "--field", "score=nope"]) == 2
    assert "no record has the key 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("value,message", [("score", "expected ROLE=NAME"), ("colour=x", "unknown role")])
def test_bad_field_option_is_a_usage_error(tmp_path, capsys, value, message):
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path), "--field", value])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_malformed_json_and_missing_records_fail_before_writing(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "json").mkdir(parents=True)
    (src / "json" / "a.json").write_text('[{"question": "q", "response": "r", "score": 0.5},\n {"question": ]')
    assert main(["--src", str(src), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "a.json: malformed JSON at line 2, column 15" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    (src / "json" / "a.json").write_text("[]")
    with pytest.raises(ConvertError, match="no records"):
        run(src, tmp_path / "o")
    (src / "json" / "a.json").unlink()
    with pytest.raises(ConvertError, match="no \\*.json or \\*.jsonl record files"):
        run(src, tmp_path / "o")
    with pytest.raises(ConvertError, match="does not exist"):
        run(tmp_path / "missing", tmp_path / "o")


@pytest.mark.parametrize(
    "kw",
    [{"shard_rows": 0}, {"workers": 0}, {"val_size": -1}, {"max_reject_rate": 1.5}, {"shared_image_limit": 0}],
)
def test_bad_option_values_fail_before_writing(tmp_path, kw):
    with pytest.raises(ConvertError):
        run(SAMPLE_ROOT, tmp_path / "o", **kw)
    assert not (tmp_path / "o").exists()


# --- units ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,want",
    [(0, 0.0), (1, 1.0), (0.7, 0.7), ("0.7", 0.7), (" 1 ", 1.0), ("1e-1", 0.1), (0.30000000000000004, 0.3),
     (1.0000004, 1.0), (-0.0000004, 0.0)],
)  # fmt: skip
def test_parse_score_accepts_grid_values(value, want):
    assert parse_score(value) == want


@pytest.mark.parametrize(
    "value,reason",
    [(None, "score_not_a_number"), (True, "score_not_a_number"), ("x", "score_not_a_number"),
     ("nan", "score_not_a_number"), ([0.5], "score_not_a_number"), (1.1, "score_out_of_range"),
     ("-0.1", "score_out_of_range"), (float("inf"), "score_out_of_range"), (0.05, "score_off_grid"),
     (0.7001, "score_off_grid")],
)  # fmt: skip
def test_parse_score_rejects(value, reason):
    with pytest.raises(SampleRejected) as e:
        parse_score(value)
    assert e.value.reason == reason


def test_image_paths():
    assert image_paths(None) == [] and image_paths("") == [] and image_paths([]) == []
    assert image_paths("./OCR/TextOCR/a.png") == ["OCR/TextOCR/a.png"] and image_paths(["a\\b.png"]) == ["a/b.png"]
    for value, reason in [(["a", "b"], "too_many_images"), ("../a", "path_escapes_root"), ([""], "image_missing")]:
        with pytest.raises(SampleRejected) as e:
            image_paths(value)
        assert e.value.reason == reason
    with pytest.raises(SampleRejected, match="holds a dict"):
        image_paths({"path": "a.png"})


def test_field_detection_first_candidate_wins():
    keys = {"query", "prompt", "output", "reasoning", "reward", "label", "images", "image", "source", "idx"}
    assert detect_fields(keys, {}, "f") == {
        "question": "prompt",
        "response": "reasoning",
        "score": "label",
        "image": "image",
        "source": "source",
        "id": "idx",
    }
    assert detect_fields(keys, {"score": "reward"}, "f")["score"] == "reward"
    assert detect_fields({"problem", "response", "thinking_score"}, {}, "f")["image"] is None
    with pytest.raises(FieldError, match="no key for the response"):
        detect_fields({"problem", "score"}, {}, "f")
    assert parse_field_overrides(["score=rating", " image = img "]) == {"score": "rating", "image": "img"}
    with pytest.raises(FieldError, match="given twice"):
        parse_field_overrides(["score=a", "score=b"])


# --- hub source -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hub_source_converts_like_the_folder(sample_out, tmp_path):
    """The sample served from a hub cache laid out by the test (blobs, snapshot symlinks, refs/main), offline."""
    out, _ = sample_out
    cache = tmp_path / "hub"
    lay_out_hub_cache(cache, "bunny127/SophiaVL-R1-Thinking-156k", folder_files(SAMPLE_ROOT), "c" * 40)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "hf_home"))
    cmd = [sys.executable, "-m", "sophiavl.data_prep.thinking_156k", "--no-progress", "--val-size", "12"]
    hub_out = tmp_path / "hub_out"
    proc = subprocess.run(
        [*cmd, "--src", "hf://bunny127/SophiaVL-R1-Thinking-156k", "--out", str(hub_out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert rows(hub_out) == rows(out)
    report = json.loads((hub_out / "report.json").read_text())
    assert report["source_folder"].endswith("datasets--bunny127--SophiaVL-R1-Thinking-156k/snapshots/" + "c" * 40)
    proc = subprocess.run(
        [*cmd, "--src", "hf://bunny127/other", "--out", str(tmp_path / "x")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "HF_HUB_OFFLINE=1" in proc.stderr and not (tmp_path / "x").exists()


def test_custom_prompt_template_is_used_like_the_judges(tmp_path, capsys):
    template = tmp_path / "t.txt"
    template.write_text("Be brief.\n---\nQ={question} R={response}\n")
    run(SAMPLE_ROOT, tmp_path / "out", val_size=0, max_rows=1, prompt_template=str(template))
    (row,) = rows(tmp_path / "out")
    rec = sample_records()["json/multimodal_part.json"][0]  # "<image>\nWhat word ...", score 0.0
    assert row["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"Q=What word is written in the image? R={rec['response']}\n<image>"},
        {"role": "assistant", "content": "<answer>0.0</answer>"},
    ]
    template.write_text("no placeholders\n")
    assert main(["--out", str(tmp_path / "o2"), "--prompt-template", str(template)]) == 2
    assert "--prompt-template" in capsys.readouterr().err and not (tmp_path / "o2").exists()


@pytest.mark.parametrize("how", ["command line", "environment"])
def test_make_prepare_trm_data(tmp_path, how):
    """The Makefile target (its install prerequisite marked up to date with -o): DATA_OUT on the command line or
    from the environment, the sample's 12-row validation split."""
    repo = Path(__file__).resolve().parents[3]
    out = tmp_path / "trm"
    args = [
        "make",
        "-s",
        "-o",
        ".venv/.installed",
        "prepare-trm-data",
        f"PY={sys.executable}",
        "PREP_ARGS=--no-progress",
    ]
    env = dict(os.environ)
    if how == "command line":
        args.append(f"DATA_OUT={out}")
    else:
        env["DATA_OUT"] = str(out)
    proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["rows_written"] == {"train": 48, "val": 12, "total": 60}
    assert report["source_folder"] == str(SAMPLE_ROOT)
