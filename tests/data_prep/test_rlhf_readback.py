"""The converted sample read back by verl 0.9.1's own RLHFDataset with an offline Qwen2.5-VL processor.

Checks what the rollout will see: every ``<image>`` placeholder becomes an image content part carrying the
original bytes, and the processor expands each image into exactly ``grid_thw.prod() / merge_size**2``
``<|image_pad|>`` tokens, matching the rows of ``pixel_values``.

The processor is built without torchvision (it crashes next to the CPU torch here): the PIL Qwen2-VL image
processor, a stand-in for the video processor (never called: the data has no video), and ``qwen_vl_utils``
imported with a temporary torchvision stub (its image path is PIL-only; the stub is removed right after, so
transformers never sees it). With a working torchvision the real one is used.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from PIL import Image

from sophiavl.data_prep.convert import Options, convert
from sophiavl.data_prep.sophiavl_130k import SAMPLE_ROOT
from sophiavl_testing.data_prep_helpers import (
    import_qwen_vl_utils,
    offline_qwen25vl_processor,
    sample_records,
    source_bytes,
)


@pytest.fixture(scope="module")
def sample_parquet(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rlhf")
    report = convert(Options(src=str(SAMPLE_ROOT), out=str(out), val_size=16, progress=False))
    assert report["rows_written"]["total"] == 100
    return out


def _source_images() -> dict[tuple[str, str], list[str]]:
    """(data_source, problem_id) -> sha256 of each source image, from the sample's record files read with json
    (each data_source of the sample lives in one subset, so the pair is unique)."""
    out = {}
    for rec in sample_records():
        paths = rec["path"] if isinstance(rec["path"], list) else [rec["path"]]
        shas = [hashlib.sha256(source_bytes(p)).hexdigest() for p in paths] if rec["data_type"] == "image" else []
        out[(rec["data_source"], str(rec["problem_id"]))] = shas
    return out


# <|image_pad|> tokens per image, by (width, height). qwen_vl_utils and the image processor resize to multiples of
# patch 14 x merge 2 = 28 px (smart_resize; all sizes here lie inside min_pixels 56*56 .. max_pixels), then
# tokens = (h/14 * w/14) / merge**2:
#   224x224 (shapes, figures, scenes): 224 -> 224, 16x16 patches = 256 -> 64 tokens
#   280x224 (bar charts): 280 -> 280, 224 -> 224, 20x16 = 320 -> 80 tokens
#   256x96 (words): 256/28 = 9.14 -> 9*28 = 252, 96/28 = 3.43 -> 3*28 = 84, 18x6 = 108 -> 27 tokens
IMAGE_TOKENS = {(224, 224): 64, (280, 224): 80, (256, 96): 27}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # transformers, on token lists
def test_rlhf_dataset_expands_each_image_into_matching_image_tokens(sample_parquet, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))  # keep ~/.cache clean
    import_qwen_vl_utils()
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    processor = offline_qwen25vl_processor()
    files = sorted(str(p) for p in sample_parquet.glob("*.parquet"))
    n_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    config = OmegaConf.create(
        {
            "cache_dir": str(tmp_path / "cache"),
            "prompt_key": "prompt",
            "image_key": "images",
            "max_prompt_length": 4096,
            "filter_overlong_prompts": True,  # runs verl's own multimodal length pass over every row
            "filter_overlong_prompts_workers": 1,
        }
    )
    ds = RLHFDataset(files, processor.tokenizer, config, processor=processor)
    assert len(ds) == n_rows == 100, "a row failed verl's multimodal processing (it filters failures out)"

    merge = processor.image_processor.merge_size
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    start_id = processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    sources = _source_images()
    seen_types, text_only = set(), 0
    for i in range(len(ds)):
        item = ds[i]
        extra = item["extra_info"]
        seen_types.add(extra["problem_type"])
        assert extra["split"] in ("train", "val")
        assert item["reward_model"]["ground_truth"] == extra["answer"]
        messages = item["raw_prompt"]
        assert [m["role"] for m in messages] == ["system", "user"]
        want = sources[(item["data_source"], extra["problem_id"])]
        if not want:
            text_only += 1
            assert isinstance(messages[1]["content"], str) and "<image>" not in messages[1]["content"]
            continue
        parts = [p for p in messages[1]["content"] if p["type"] == "image"]
        assert [hashlib.sha256(p["bytes"]).hexdigest() for p in parts] == want  # original bytes, in order
        images, videos, audios = RLHFDataset._process_multi_modal_info(messages, 14, config)
        assert len(images) == len(want) and videos is None and audios is None
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = build_multimodal_processor_inputs(processor, text=[text], images=images)
        ids = inputs["input_ids"][0]
        grid = inputs["image_grid_thw"]
        assert grid.shape == (len(want), 3)
        assert int((ids == start_id).sum()) == len(want)
        assert int((ids == pad_id).sum()) == int(grid.prod(dim=-1).sum()) // merge**2
        assert inputs["pixel_values"].shape[0] == int(grid.prod(dim=-1).sum())
        for part, grid_row in zip(parts, grid, strict=True):  # each image's own token count
            w, h = Image.open(io.BytesIO(part["bytes"])).size
            assert int(grid_row.prod()) // merge**2 == IMAGE_TOKENS[(w, h)]
    assert seen_types == {"numerical", "multiple choice", "OCR", "free-form", "text"}
    assert text_only == 14
