"""``balance``'s output in the Thinking-156k layout: the project's converter reads it with 0 rejects, each distinct
image once, every row pointing at its own image's bytes, and verl's SFT dataset reads the converted parquet."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from sophiavl.data_prep.trm_build.annotation import Annotation
from sophiavl.data_prep.trm_build.cli import main as trm_build_main
from sophiavl.rewards.collect import RolloutRecord
from sophiavl_testing.data_prep_helpers import import_qwen_vl_utils, offline_qwen25vl_processor, png_bytes

# 224x224 (a multiple of 28): 16x16 patches of 14 px -> 256 / merge 2**2 = 64 image tokens
RED, BLUE = png_bytes(224, 224, (255, 0, 0)), png_bytes(224, 224, (0, 0, 255))


def _name(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest() + ".png"


def _ann(rid: str, question: str, score: float, images: list[str]) -> Annotation:
    response = f"<think>Looking at the picture for {rid}.</think><answer>red</answer>"
    rollout = RolloutRecord(
        rid, "train", int(rid[1:]), "", "Colours", "free-form", question, response, 1.0, 2, "g", "grpo"
    )
    return Annotation(rollout, "judge", "b" * 64, images, [score], [str(score)], [None])


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layout")
    folder = tmp / "ann"
    (folder / "images").mkdir(parents=True)
    for data in (RED, BLUE):
        (folder / "images" / _name(data)).write_bytes(data)
    rows = [
        _ann("r1", "<image>What colour is this?", 0.7, [_name(RED)]),
        _ann("r2", "<image>Name the colour.", 0.3, [_name(RED)]),  # the same image, another question
        _ann("r3", "<image>What colour is this?", 0.9, [_name(BLUE)]),  # the same question, another image
        _ann("r4", "What colour is the sky?", 0.7, []),  # text-only
    ]
    (folder / "annotations-0.jsonl").write_text("".join(a.to_line() for a in rows), encoding="utf-8")
    out = tmp / "balanced"
    assert trm_build_main(["balance", "--annotations", str(folder), "--out", str(out), "--min", "0"]) == 0
    return out


def test_each_distinct_image_is_written_once_and_each_row_points_at_its_own(balanced):
    mm = json.loads((balanced / "json" / "multimodal_part.json").read_text())
    paths = {r["id"]: r["path"] for r in mm}
    assert paths == {"r1": f"images/{_name(RED)[:2]}/{_name(RED)}", "r2": f"images/{_name(RED)[:2]}/{_name(RED)}",
                     "r3": f"images/{_name(BLUE)[:2]}/{_name(BLUE)}"}  # fmt: skip
    files = sorted(p for p in (balanced / "images").rglob("*") if p.is_file())
    assert [p.name for p in files] == sorted([_name(RED), _name(BLUE)])
    assert (balanced / paths["r3"]).read_bytes() == BLUE
    assert [json.loads(x)["id"] for x in (balanced / "text_part.jsonl").read_text().splitlines()] == ["r4"]


@pytest.fixture(scope="module")
def converted(balanced, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    proc = subprocess.run(
        [sys.executable, "-m", "sophiavl.data_prep.thinking_156k", "--src", str(balanced), "--out", str(out),
         "--val-size", "1", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_the_converter_reads_it_with_no_rejects_and_keeps_each_rows_image(converted):
    report = json.loads((converted / "report.json").read_text())
    assert report["rows_read"] == 4 and report["rows_rejected"]["total"] == 0
    assert report["rows_written"]["total"] == 4 and report["text_only"]["total"] == 1
    rows = [r for f in sorted(converted.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    by_id = {r["extra_info"]["id"]: r for r in rows}
    assert {i: r["extra_info"]["score"] for i, r in by_id.items()} == {"r1": 0.7, "r2": 0.3, "r3": 0.9, "r4": 0.7}
    assert [im["bytes"] for im in by_id["r3"]["images"]] == [BLUE]
    assert [im["bytes"] for im in by_id["r1"]["images"]] == [RED] == [im["bytes"] for im in by_id["r2"]["images"]]
    assert by_id["r4"]["images"] == []


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # transformers, on token lists
def test_verls_sft_dataset_reads_the_converted_rows(converted):
    import_qwen_vl_utils()
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    processor = offline_qwen25vl_processor()
    tok = processor.tokenizer
    files = [str(f) for f in sorted(converted.glob("*.parquet"))]
    config = OmegaConf.create({"pad_mode": "no_padding", "max_length": 4096, "truncation": "error"})
    ds = MultiTurnSFTDataset(files, tok, config, processor=processor)
    assert len(ds) == 4
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    seen = {}
    for i in range(len(ds)):
        row = ds.dataframe.iloc[i].to_dict()
        item = ds[i]
        ids, mask = item["input_ids"], item["loss_mask"]
        score = row["extra_info"]["score"]
        assert tok.decode(ids[mask.bool()]) == f"<answer>{score}</answer><|im_end|>\n"
        seen[row["extra_info"]["id"]] = int((ids == pad).sum())
    assert seen == {"r1": 64, "r2": 64, "r3": 64, "r4": 0}
