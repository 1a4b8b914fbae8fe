"""sophiavl.eval.prepare on tiny copies of the seven benchmarks in their real hub schemas
(examples/cpu/tiny_benchmarks.py): what each converter writes, what it rejects and why, the split/config choice, the
offline hub cache, and the prepared files read back together by verl's own RLHFDataset with an offline Qwen2.5-VL
processor."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

import tiny_benchmarks as fx  # examples/cpu (on pytest's path)
from sophiavl.eval.prepare import Options, prepare
from sophiavl.eval.schema import PAPER_MAX_PIXELS, PAPER_MIN_PIXELS, SCHEMA


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> dict[str, Path]:
    return fx.build_all(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def prepared(hub, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("eval")
    reports = {name: prepare(Options(benchmark=name, src=str(folder), out=str(out))) for name, folder in hub.items()}
    return out, reports


def rows(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / f"{name}.parquet").to_pylist()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("name", list(fx.EXPECTED))
def test_counts_and_rejections(prepared, name):
    out, reports = prepared
    read, written, rejected = fx.EXPECTED[name]
    report = reports[name]
    assert (report["rows_read"], report["rows_written"]) == (read, written)
    assert report["rows_rejected"] == {"total": sum(rejected.values()), "by_reason": rejected}
    lines = [json.loads(x) for x in (out / f"{name}.rejects.jsonl").read_text().splitlines()]
    assert sorted(x["reason"] for x in lines) == sorted(r for r, k in rejected.items() for _ in range(k))
    assert json.loads((out / f"{name}.prepare.json").read_text()) == report
    table = pq.read_table(out / f"{name}.parquet")
    assert table.schema.equals(SCHEMA) and table.num_rows == written  # one schema for all: concatenable


def test_mathvista_rows(prepared):
    out, _ = prepared
    got = rows(out, "mathvista")
    assert [r["extra_info"]["id"] for r in got] == ["1", "2", "3"]
    assert [r["reward_model"]["ground_truth"] for r in got] == ["B", "12", "1.5"]  # "4" is option B of 3, 4, 5
    assert [r["extra_info"]["problem_type"] for r in got] == ["multiple choice", "numerical", "numerical"]
    assert got[0]["extra_info"]["options"] == ["3", "4", "5"] and got[2]["extra_info"]["precision"] == 1.0
    assert got[2]["extra_info"]["unit"] == "cm" and got[0]["extra_info"]["category"] == "textbook question answering"
    assert [r["data_source"] for r in got] == ["mathvista"] * 3
    prompt = got[0]["prompt"]
    assert [m["role"] for m in prompt] == ["system", "user"]
    assert prompt[0]["content"] == fx_system_prompt()
    assert prompt[1]["content"].startswith("<image>\nHint:") and "(B) 4" in prompt[1]["content"]
    assert got[0]["images"] == [{"bytes": fx.png(fx.COLORS[1]), "min_pixels": PAPER_MIN_PIXELS,
                                 "max_pixels": PAPER_MAX_PIXELS}]  # fmt: skip


def fx_system_prompt() -> str:
    from sophiavl.data_prep.prompts import SYSTEM_PROMPT

    return SYSTEM_PROMPT


def test_mmmu_places_images_in_reference_order(prepared):
    out, _ = prepared
    first, number, words = rows(out, "mmmu")
    user = first["prompt"][1]["content"]
    assert user.startswith("Which work <image> is closest in style to <image>?\nOptions:\nA. [image 2]\nB. an oil")
    assert [sha(i["bytes"]) for i in first["images"]] == [sha(fx.png(fx.COLORS[1])), sha(fx.png(fx.COLORS[2]))]
    assert first["extra_info"]["options"] == ["[image 2]", "an oil painting", "a fresco"]
    assert first["extra_info"]["category"] == "Art_Theory" and first["reward_model"]["ground_truth"] == "A"
    assert number["extra_info"]["answers"] == ["3.5"] and number["extra_info"]["answer_type"] == "number"
    assert words["extra_info"]["answers"] == ["blue", "navy"] and words["reward_model"]["ground_truth"] == "blue"


def test_grouping_keys(prepared):
    out, _ = prepared
    bench = rows(out, "mmbench")
    assert [r["extra_info"]["id"] for r in bench] == ["1", "1000001", "2", "1000002"]
    assert [r["extra_info"]["group"] for r in bench] == ["1", "1", "2", "2"]  # index % 1,000,000
    assert bench[2]["extra_info"]["options"] == ["up", "down"]  # C and D are empty
    assert bench[2]["prompt"][1]["content"].startswith("<image>\nHint: The arrow points down.\nWhich animal")
    mme = rows(out, "mme")
    assert [r["extra_info"]["id"] for r in mme] == ["0", "1", "2", "3"]  # position in the split (two shards)
    assert [r["extra_info"]["group"] for r in mme] == ["artwork/1.jpg"] * 2 + ["code_reasoning/2.png"] * 2
    assert [r["reward_model"]["ground_truth"] for r in mme] == ["Yes", "No", "Yes", "No"]
    verse = rows(out, "mathverse")
    assert [r["extra_info"]["version"] for r in verse] == ["Text Dominant", "Vision Only", "Text Lite",
                                                           "Vision Intensive"]  # fmt: skip
    assert [r["extra_info"]["n_options"] for r in verse[:2]] == [4, 4]
    chart = rows(out, "chartqa")
    assert [r["extra_info"]["id"] for r in chart] == ["0", "1", "2"]
    assert [r["extra_info"]["category"] for r in chart] == ["human", "augmented", "human"]
    star = rows(out, "mmstar")
    assert [r["extra_info"]["n_options"] for r in star] == [4, 4, 3]


def test_split_config_and_max_rows(hub, tmp_path):
    test_split = prepare(Options(benchmark="mathvista", src=str(hub["mathvista"]), out=str(tmp_path), split="test"))
    assert test_split["files"] == ["data/test-00000-of-00001-fixture.parquet"] and test_split["rows_read"] == 1
    text_only = prepare(Options(benchmark="mathverse", src=str(hub["mathverse"]), out=str(tmp_path),
                                config="testmini_text_only"))  # fmt: skip
    assert text_only["files"] == ["testmini_text_only.parquet"] and text_only["rows_written"] == 1
    limited = prepare(Options(benchmark="mme", src=str(hub["mme"]), out=str(tmp_path), max_rows=2))
    assert (limited["rows_read"], limited["rows_written"]) == (2, 2)
    from sophiavl.eval.hubfiles import SplitNotFound

    with pytest.raises(SplitNotFound, match="split 'nope'"):
        prepare(Options(benchmark="mme", src=str(hub["mme"]), out=str(tmp_path), split="nope"))


def test_hub_source_offline_from_a_laid_out_cache(hub, tmp_path):
    cache = tmp_path / "hub-cache"
    fx.lay_out_hub_cache(cache, "Lin-Chen/MMStar", hub["mmstar"])
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    cmd = [sys.executable, "-m", "sophiavl.eval.prepare", "--benchmark", "mmstar", "--src", "hf://Lin-Chen/MMStar",
           "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_written"] == 3
    assert pq.read_table(tmp_path / "out" / "mmstar.parquet").num_rows == 3
    missing = subprocess.run([*cmd[:6], "hf://Lin-Chen/NotThere", *cmd[7:]], env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2 and "not in the hub cache" in missing.stderr


def test_bad_arguments(hub, tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark"):
        prepare(Options(benchmark="vqa", src=str(hub["mme"]), out=str(tmp_path)))
    with pytest.raises(ValueError, match="min_pixels"):
        prepare(Options(benchmark="mme", src=str(hub["mme"]), out=str(tmp_path), min_pixels=10, max_pixels=5))
    with pytest.raises(ValueError, match="does not exist"):
        prepare(Options(benchmark="mme", src=str(tmp_path / "absent"), out=str(tmp_path)))


# A 56 x 56 fixture image at the paper's min_pixels = 1280 * 28 * 28 = 1,003,520 px: qwen_vl_utils' smart_resize
# (verl's per-image path) scales it by sqrt(1,003,520 / 3,136) = sqrt(320) = 17.89 to ceil(56 * 17.89 / 28) * 28 =
# 36 * 28 = 1008 px a side (checked below). Without the per-image key it would stay 56 x 56 (4 tokens).
FETCHED_SIDE = 1008
# The processor then applies its own range: this offline one has transformers' default max_pixels 1,003,520
# (1280 * 28 * 28; Qwen2.5-VL-7B-Instruct's preprocessor_config.json says 12,845,056 and keeps 1008 x 1008), so
# 1008^2 = 1,016,064 px is scaled by sqrt(1,003,520 / 1,016,064) = 0.99381 to floor(1008 * 0.99381 / 28) * 28 =
# 35 * 28 = 980 px: (980 / 14)^2 = 4900 patches, 4900 / 2^2 = 1225 <|image_pad|> tokens.
TOKENS_PER_FIXTURE_IMAGE = 1225


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_rlhf_dataset_reads_all_benchmarks_together(prepared, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    from sophiavl_testing.data_prep_helpers import import_qwen_vl_utils, offline_qwen25vl_processor

    import_qwen_vl_utils()
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    out, reports = prepared
    processor = offline_qwen25vl_processor()
    files = [str(out / f"{name}.parquet") for name in fx.EXPECTED]
    config = OmegaConf.create({"cache_dir": str(tmp_path / "cache"), "prompt_key": "prompt", "image_key": "images",
                               "max_prompt_length": 32768, "filter_overlong_prompts": False})  # fmt: skip
    ds = RLHFDataset(files, processor.tokenizer, config, processor=processor)  # concatenate_datasets: one schema
    assert len(ds) == sum(r["rows_written"] for r in reports.values()) == 24
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        extra = item["extra_info"]
        seen.add(item["data_source"])
        assert extra["benchmark"] == item["data_source"]
        messages = item["raw_prompt"]
        parts = [p for p in messages[1]["content"] if p["type"] == "image"]
        want = 2 if extra["id"] == "validation_Art_Theory_1" else 1
        assert len(parts) == want
        assert all(p["min_pixels"] == PAPER_MIN_PIXELS and p["max_pixels"] == PAPER_MAX_PIXELS for p in parts)
        if i % 6:  # the processor pass costs a second per image: check every benchmark's first rows
            continue
        images, _, _ = RLHFDataset._process_multi_modal_info(messages, 14, config)
        assert [im.size for im in images] == [(FETCHED_SIDE, FETCHED_SIDE)] * want
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = build_multimodal_processor_inputs(processor, text=[text], images=images)
        assert int((inputs["input_ids"][0] == pad_id).sum()) == want * TOKENS_PER_FIXTURE_IMAGE
        assert int(inputs["image_grid_thw"].prod(dim=-1).sum()) // merge**2 == want * TOKENS_PER_FIXTURE_IMAGE
    assert seen == set(fx.EXPECTED)


def test_mmmu_repeated_and_unreferenced_images():
    from sophiavl.eval.benchmarks import mmmu

    img = {k: {"bytes": fx.png(fx.COLORS[k]), "path": None} for k in (1, 2, 3)}
    row = {"id": "validation_Math_9", "question": "Compare <image 2> with <image 1>; is <image 2> larger?",
           "options": "['yes', 'no']", "answer": "B", "question_type": "multiple-choice", "subfield": "x",
           "image_1": img[1], "image_2": img[2], "image_3": img[3]}  # fmt: skip
    item = mmmu.convert(row)
    # image 3 is never referenced: it goes first; then images 2 and 1 in order of first reference
    assert item.question == "<image>\nCompare <image> with <image>; is [image 2] larger?"
    assert [sha(b) for b in item.images] == [sha(img[3]["bytes"]), sha(img[2]["bytes"]), sha(img[1]["bytes"])]
    assert item.options == ["yes", "no"] and item.ground_truth == "B"


def test_chartqa_lmms_lab_schema():
    from sophiavl.eval.benchmarks import chartqa

    row = {"question": "What is the total?", "answer": "12", "type": "augmented_test",
           "image": {"bytes": fx.png(), "path": None}}  # fmt: skip
    item = chartqa.convert(row)
    assert (item.question, item.ground_truth, item.answers, item.category) == ("What is the total?", "12", ["12"],
                                                                               "augmented")  # fmt: skip
