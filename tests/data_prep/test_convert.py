"""End-to-end conversion tests: the embedded sample (zip and unpacked, JSON and JSON lines), determinism,
sharding, options, every rejection reason, the reject-rate limit and malformed JSON."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sophiavl.data_prep.convert import ConvertError, Options, convert
from sophiavl.data_prep.prompts import SYSTEM_PROMPT
from sophiavl.data_prep.records import REASONS
from sophiavl.data_prep.sophiavl_130k import SAMPLE_ROOT, main
from sophiavl_testing.data_prep_helpers import bomb_png, png_bytes, read_record_file, sample_records, source_bytes

# per problem_type in the sample: numerical = 16 counts + 4 two-image totals + 8 arithmetic + 10 bar values
SAMPLE_TYPES = {"numerical": 38, "multiple choice": 22, "OCR": 18, "free-form": 10, "text": 12}
SAMPLE_SUBSETS = {"chart": 18, "general": 16, "knowledge": 14, "math": 34, "ocr": 18}


def run(src, out, **kw) -> dict:
    return convert(Options(src=str(src), out=str(out), progress=False, **kw))


def rows(out: Path, split: str | None = None) -> list[dict]:
    splits = [split] if split else ["train", "val"]
    return [r for s in splits for f in sorted(out.glob(f"{s}-*.parquet")) for r in pq.read_table(f).to_pylist()]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample")
    return out, run(SAMPLE_ROOT, out, val_size=16)


# --- the sample -----------------------------------------------------------------------------------------------


def test_sample_report_reconciles(sample_out):
    out, report = sample_out
    assert report["status"] == "ok"
    assert report["rows_read"] == 100
    assert report["rows_written"] == {"train": 84, "val": 16, "total": 100}
    assert report["rows_rejected"] == {"total": 0, "by_reason": {}}
    assert report["by_problem_type"] == SAMPLE_TYPES
    assert {s: c["written"] for s, c in report["by_subset"].items()} == SAMPLE_SUBSETS
    assert report["images_written"] == 16 + 6 + 8 + 18 + 18 + 8 + 16  # two images in each of the 4 pair rows
    assert report["shards"] == {"train": ["train-00000.parquet"], "val": ["val-00000.parquet"]}
    assert json.loads((out / "report.json").read_text()) == report
    assert (out / "rejects.jsonl").read_text() == ""


def test_sample_rows_have_verl_schema_and_original_image_bytes(sample_out):
    out, _ = sample_out
    records = {(r["data_source"], str(r["problem_id"])): r for r in sample_records()}
    all_rows = rows(out)
    assert len(all_rows) == 100
    for split in ("train", "val"):
        assert [r["extra_info"]["index"] for r in rows(out, split)] == list(range(len(rows(out, split))))
    for row in all_rows:
        extra = row["extra_info"]
        rec = records[(row["data_source"], extra["problem_id"])]
        assert set(row) == {"data_source", "prompt", "images", "ability", "reward_model", "extra_info"}
        assert row["ability"] == extra["problem_type"] == rec["problem_type"]
        assert row["reward_model"] == {"style": "rule", "ground_truth": str(rec["solution"])[8:-9]}
        assert extra["answer"] == row["reward_model"]["ground_truth"] and extra["question"] == rec["problem"]
        assert extra["options"] == (rec["options"] if rec["problem_type"] == "multiple choice" else [])
        system, user = row["prompt"]
        assert system == {"role": "system", "content": SYSTEM_PROMPT} and user["role"] == "user"
        paths = rec["path"] if isinstance(rec["path"], list) else ([rec["path"]] if rec["data_type"] == "image" else [])
        assert user["content"].count("<image>") == len(row["images"]) == len(paths)
        assert [sha(i["bytes"]) for i in row["images"]] == [sha(source_bytes(p)) for p in paths]
        assert rec["problem"] in user["content"]
        for option in extra["options"]:
            assert option in user["content"]


def test_val_split_is_deterministic_and_order_independent(sample_out, tmp_path):
    out, _ = sample_out
    first = {(r["data_source"], r["extra_info"]["problem_id"]): r["extra_info"]["split"] for r in rows(out)}
    # the same records, each file reversed and the math file as JSON lines instead of an array
    src = tmp_path / "src"
    shutil.copytree(SAMPLE_ROOT, src)
    for f in list((src / "json").iterdir()):
        recs = read_record_file(f)
        f.unlink()
        if f.stem == "math":
            (src / "json" / "math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(recs)))
        else:
            (src / "json" / f"{f.stem}.json").write_text(json.dumps(recs[::-1]))
    out2 = tmp_path / "out"
    run(src, out2, val_size=16)
    second = {(r["data_source"], r["extra_info"]["problem_id"]): r["extra_info"]["split"] for r in rows(out2)}
    assert first == second and sum(v == "val" for v in second.values()) == 16


def test_rerun_gives_identical_parquet_and_removes_stale_shards(sample_out, tmp_path):
    out, _ = sample_out
    out2 = tmp_path / "out"
    run(SAMPLE_ROOT, out2, val_size=16, shard_rows=30)
    assert sorted(p.name for p in out2.glob("*.parquet")) == [
        "train-00000.parquet",
        "train-00001.parquet",
        "train-00002.parquet",
        "val-00000.parquet",
    ]
    assert [pq.ParquetFile(p).metadata.num_rows for p in sorted(out2.glob("train-*.parquet"))] == [30, 30, 24]
    assert rows(out2) == rows(out)
    run(SAMPLE_ROOT, out2, val_size=16)  # fewer shards now: the old train-00001/2 must go
    assert sorted(p.name for p in out2.glob("*.parquet")) == ["train-00000.parquet", "val-00000.parquet"]
    assert rows(out2) == rows(out)


@pytest.mark.slow
def test_workers_give_the_same_output(sample_out, tmp_path):
    out, _ = sample_out
    report = run(SAMPLE_ROOT, tmp_path, val_size=16, workers=2, batch_rows=7)
    assert report["rows_written"]["total"] == 100
    assert rows(tmp_path) == rows(out)


def test_subsets_and_max_rows(tmp_path):
    report = run(SAMPLE_ROOT, tmp_path / "a", subsets=["Chart", "OCR"], val_size=4)
    assert report["by_subset"].keys() == {"chart", "ocr"} and report["rows_written"]["total"] == 36
    report = run(SAMPLE_ROOT, tmp_path / "b", max_rows=40, val_size=4)
    # subsets are read in name order: chart (18), general (16), then 6 of knowledge
    assert report["rows_read"] == 40
    assert {s: c["read"] for s, c in report["by_subset"].items()} == {"chart": 18, "general": 16, "knowledge": 6}
    with pytest.raises(ConvertError, match="unknown subset"):
        run(SAMPLE_ROOT, tmp_path / "c", subsets=["Physics"])


def test_images_path_mode_points_at_unpacked_files_and_rejects_zipped_ones(tmp_path):
    report = run(SAMPLE_ROOT, tmp_path, images="path", val_size=8, max_reject_rate=1.0)
    assert report["rows_rejected"]["by_reason"] == {"image_only_in_archive": 18}  # the whole chart subset
    assert report["rows_written"]["total"] == 82
    for row in rows(tmp_path):
        for image in row["images"]:
            assert set(image) == {"image"} and os.path.isabs(image["image"]) and os.path.isfile(image["image"])
    lines = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert {(x["subset"], x["reason"]) for x in lines} == {("chart", "image_only_in_archive")} and len(lines) == 18


# --- bad input ------------------------------------------------------------------------------------------------


def _png(w=8, h=8) -> bytes:
    return png_bytes(w, h, (0, 128, 255))


def _good(pid, path="./Bad/ok.png", **kw):
    rec = {
        "problem_id": pid,
        "problem": "What colour is the square?",
        "data_type": "image" if path else "text",
        "problem_type": "free-form",
        "options": [],
        "process": "",
        "solution": "<answer>blue</answer>",
        "path": path,
        "data_source": "bad-fixture",
    }
    rec.update(kw)
    return rec


@pytest.fixture
def bad_src(tmp_path) -> Path:
    """A dataset with 3 good records and one bad record per rejection reason (image_only_in_archive aside)."""
    root = tmp_path / "bad"
    (root / "json").mkdir(parents=True)
    (root / "Bad").mkdir()
    (root / "Bad" / "ok.png").write_bytes(_png())
    (root / "Bad" / "text.png").write_bytes(b"this is not an image")
    (root / "Bad" / "bomb.png").write_bytes(bomb_png(20_000, 20_000))  # 4e8 px > 5e7 default limit
    (tmp_path / "outside.png").write_bytes(_png())
    (root / "Bad" / "link.png").symlink_to(tmp_path / "outside.png")
    with zipfile.ZipFile(root / "Zip.zip", "w") as zf:
        zf.writestr("Zip/in_zip.png", _png(6, 6))
    records = [
        _good(1),
        42,  # not_an_object
        _good(None),  # missing_id
        _good(1, problem="A duplicate of record 1"),  # duplicate_id
        _good(4, problem_type="essay"),  # unknown_problem_type
        _good(5, problem="<image>  "),  # empty_question
        _good(6, solution="<answer> </answer>"),  # missing_answer
        _good(7, problem_type="multiple choice", options=None),  # mc_without_options
        _good(8, path="./Bad/../../outside.png"),  # path_escapes_root
        _good(9, path="./Bad/missing.png"),  # image_missing
        _good(10, path="./Bad/text.png"),  # image_unreadable
        _good(11, path="./Bad/bomb.png"),  # image_too_large
        _good(12, path="/etc/hostname"),  # path_escapes_root (absolute)
        _good(13, path="./Bad/link.png"),  # path_escapes_root (symlink)
        _good(14, path=None),  # text-only, fine
        _good(15, path="./Zip/in_zip.png"),  # from the archive, fine in embed mode
    ]
    (root / "json" / "bad.json").write_text(json.dumps(records))
    return root


def test_every_rejection_reason_is_counted_and_reported(bad_src, tmp_path):
    out = tmp_path / "out"
    report = run(bad_src, out, val_size=1, max_reject_rate=1.0)
    expected = {r: 1 for r in REASONS if r != "image_only_in_archive"}
    expected["path_escapes_root"] = 3
    assert report["rows_rejected"]["by_reason"] == dict(sorted(expected.items()))
    assert report["rows_read"] == 16 == report["rows_written"]["total"] + report["rows_rejected"]["total"]
    assert report["rows_written"]["total"] == 3 and report["status"] == "ok"
    lines = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert [x["record_index"] for x in lines] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert lines[2] == {
        "subset": "bad",
        "file": "bad.json",
        "record_index": 3,
        "problem_id": "1",
        "reason": "duplicate_id",
        "detail": "problem_id 1 appears earlier in bad",
    }
    written = rows(out)
    assert sorted(r["extra_info"]["problem_id"] for r in written) == ["1", "14", "15"]
    assert {r["extra_info"]["problem_id"]: len(r["images"]) for r in written} == {"1": 1, "14": 0, "15": 1}


def test_reject_rate_over_the_limit_exits_1_after_writing_the_report(bad_src, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["--src", str(bad_src), "--out", str(out), "--val-size", "1", "--no-progress"])
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "reject_rate_exceeded" and report["reject_rate"] == round(13 / 16, 6)
    assert len(rows(out)) == 3
    assert "FAILED" in capsys.readouterr().out


def test_malformed_json_fails_with_file_and_position(bad_src, tmp_path, capsys):
    (bad_src / "json" / "broken.jsonl").write_text('{"problem_id": 1}\n{"problem_id": 2,}\n')
    out = tmp_path / "out"
    assert main(["--src", str(bad_src), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "broken.jsonl" in err and "line 2, column 18" in err
    assert not out.exists()  # found in the first pass, before anything is written


def test_command_line_runs_as_a_module(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sophiavl.data_prep.sophiavl_130k", "--out", str(out), "--val-size", "10"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "written: 100 (train 90, val 10)" in proc.stdout
    assert "converting" in proc.stderr  # the progress bar


def test_val_size_0_still_reads_everything_in_pass_1(bad_src, tmp_path):
    report = run(SAMPLE_ROOT, tmp_path / "a", val_size=0)
    assert report["rows_written"] == {"train": 100, "val": 0, "total": 100}
    (bad_src / "json" / "broken.jsonl").write_text('{"problem_id": 1}\n{"problem_id": 2,}\n')
    with pytest.raises(ConvertError, match="broken.jsonl"):
        run(bad_src, tmp_path / "b", val_size=0)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("kw", [{"images": "base64"}, {"workers": 0}, {"shard_rows": 0}, {"max_reject_rate": 2.0}])
def test_bad_option_values_fail_before_writing(tmp_path, kw):
    with pytest.raises(ConvertError):
        run(SAMPLE_ROOT, tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()
