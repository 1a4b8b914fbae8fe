"""The converted Thinking-156k sample read back by verl 0.9.1's own ``MultiTurnSFTDataset`` with an offline
Qwen2.5-VL processor (``tests/support/sophiavl_testing/data_prep_helpers.py``): what the SFT trainer will see.

For an image row and a text-only row, in both image modes: the number of ``<image>`` placeholders equals
``len(images)`` (the dataset asserts it), the image becomes one ``<|vision_start|>`` and ``grid.prod() / merge**2``
``<|image_pad|>`` tokens, and the loss mask covers exactly the assistant turn ``<answer>0.7</answer>`` plus its
``<|im_end|>\\n``, nothing of the prompt.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from sophiavl.data_prep.thinking_156k.cli import SAMPLE_ROOT
from sophiavl.data_prep.thinking_156k.convert import TrmOptions, convert_trm
from sophiavl_testing.data_prep_helpers import import_qwen_vl_utils, offline_qwen25vl_processor

# 224x224 shapes: smart_resize keeps 224 (a multiple of 28), 16x16 patches = 256 -> 256 / merge 2**2 = 64 tokens
SHAPES_TOKENS = 64


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    outs = {}
    for mode in ("embed", "path"):
        out = tmp_path_factory.mktemp(f"trm_{mode}")
        report = convert_trm(TrmOptions(src=str(SAMPLE_ROOT), out=str(out), val_size=12, images=mode, progress=False))
        # path mode rejects the 12 zipped chart images (no file path to point at)
        assert report["rows_written"]["total"] == (60 if mode == "embed" else 48)
        outs[mode] = out
    return outs


def _pick(out, want_image: bool) -> tuple[str, int]:
    """(parquet file, row) of a train row with score 0.7 from General/shapes (image) or a text-only row."""
    f = str(out / "train-00000.parquet")
    for i, row in enumerate(pq.read_table(f).to_pylist()):
        extra = row["extra_info"]
        is_shapes = extra["data_source"] == "CLEVR-like"
        if extra["score"] == 0.7 and (is_shapes if want_image else not row["images"]):
            return f, i
    raise AssertionError("the sample lost its score-0.7 rows")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # transformers, on token lists
@pytest.mark.parametrize("mode", ["embed", "path"])
@pytest.mark.parametrize("want_image", [True, False])
def test_multiturn_sft_dataset_reads_rows_with_masked_score(converted, mode, want_image):
    import_qwen_vl_utils()
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    processor = offline_qwen25vl_processor()
    tok = processor.tokenizer
    f, i = _pick(converted[mode], want_image)
    config = OmegaConf.create({"pad_mode": "no_padding", "max_length": 4096, "truncation": "error"})
    ds = MultiTurnSFTDataset([f], tok, config, processor=processor)

    row = ds.dataframe.iloc[i].to_dict()
    n_images = len(row["images"])
    assert n_images == int(want_image)
    assert sum(str(m["content"]).count("<image>") for m in row["messages"]) == n_images
    messages = ds._build_messages(row)  # verl's placeholder expansion; asserts the count itself too
    parts = [p for m in messages for p in m["content"] if p["type"] == "image"]
    assert len(parts) == n_images
    if want_image:  # the image part is the last part of the user turn, as in the judge's request
        assert messages[1]["content"][-1]["type"] == "image"

    item = ds[i]
    ids, mask = item["input_ids"], item["loss_mask"]
    assert tok.decode(ids[mask.bool()]) == "<answer>0.7</answer><|im_end|>\n"
    assert int(mask.sum()) == len(tok("<answer>0.7</answer><|im_end|>\n")["input_ids"])
    start = tok.convert_tokens_to_ids("<|vision_start|>")
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert int((ids == start).sum()) == n_images
    assert int((ids == pad).sum()) == SHAPES_TOKENS * n_images
    if want_image:
        grid = item["multi_modal_inputs"]["image_grid_thw"]
        assert grid.tolist() == [[1, 16, 16]]
        assert item["position_ids"].shape == (4, ids.shape[0])  # text row + 3 mrope rows
    else:
        assert "multi_modal_inputs" not in item  # verl 0.9.1: text-only rows carry none (trm-training.md 5.1)
