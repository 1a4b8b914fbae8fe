"""TRMSFTDataset's checks of the ``images`` column and its options, on real parquet files read by verl's own
``MultiTurnSFTDataset`` code (the reading half; batches, the processor and a forward pass are in
tests/trm/test_mixed_batch.py, which needs the e2e venv)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

import build_tiny_models  # examples/cpu (on pytest's path)
from sophiavl.trm.sft_dataset import (
    ImageCellError,
    TRMSFTDataset,
    expand_parquet_paths,
    normalize_image,
    normalize_images_cell,
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_models.build_tokenizer()


def _row(i: int, images, placeholders: int | None = None) -> dict:
    n = len(images or []) if placeholders is None else placeholders
    return {
        "messages": [
            {"role": "system", "content": "grader"},
            {"role": "user", "content": f"question {i}" + "<image>" * n},
            {"role": "assistant", "content": "<answer>0.5</answer>"},
        ],
        "images": images,
        "extra_info": {"split": "train", "index": i, "id": f"id{i}", "data_source": "t", "score": 0.5},
    }


def _parquet(tmp_path: Path, rows: list[dict], name: str = "train-00000.parquet") -> str:
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def _dataset(files, tokenizer, **extra):
    config = OmegaConf.create({"pad_mode": "no_padding", "max_length": 4096, "truncation": "error", **extra})
    return TRMSFTDataset(files, tokenizer, config, processor=None)


# ---- one image entry -------------------------------------------------------------------------------------------


def test_bytes_entry_loses_null_fields_and_its_reference_path():
    assert normalize_image({"bytes": b"png", "image": None}) == {"bytes": b"png"}
    assert normalize_image({"bytes": b"png", "path": "a.png"}) == {"bytes": b"png"}


def test_path_only_entry_becomes_an_image_path():
    assert normalize_image({"bytes": None, "path": "/data/a.png"}) == {"image": "/data/a.png"}
    assert normalize_image({"bytes": None, "image": "/data/a.png"}) == {"image": "/data/a.png"}
    assert normalize_image({"image": "https://x/a.png", "max_pixels": 1000}) == {
        "image": "https://x/a.png",
        "max_pixels": 1000,
    }


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"bytes": None, "path": None}, "neither"),
        ({"path": "rel/a.png"}, "relative"),
        ({"bytes": b"x", "image": "/a.png"}, "both"),
        ({"image": 3}, "string"),
        ("a.png", "struct"),
    ],
)
def test_unusable_entries_are_errors(entry, words):
    with pytest.raises(ImageCellError, match=words):
        normalize_image(entry)


def test_a_null_cell_is_a_text_only_row_and_counts_must_match():
    messages = [{"role": "user", "content": "q"}]
    assert normalize_images_cell(None, messages) == []
    with pytest.raises(ImageCellError, match="1 <image> placeholder.s. but 0 image"):
        normalize_images_cell(None, [{"role": "user", "content": "q<image>"}])


# ---- the dataset -----------------------------------------------------------------------------------------------


def test_cells_are_normalised_where_verl_reads_them(tmp_path, tokenizer):
    rows = [
        _row(0, [{"bytes": b"\x89PNG", "image": None}]),
        _row(1, [{"bytes": None, "image": "/abs/b.png"}]),
        _row(2, None),  # a null cell
        _row(3, []),
    ]
    ds = _dataset(_parquet(tmp_path, rows), tokenizer)
    assert len(ds) == 4
    cells = list(ds.dataframe[ds.image_key])
    assert cells == [[{"bytes": b"\x89PNG"}], [{"image": "/abs/b.png"}], [], []]
    assert ds.text_only_dropped == 0


def test_bad_rows_fail_the_read_with_their_ids(tmp_path, tokenizer):
    rows = [
        _row(0, [{"bytes": b"\x89PNG", "path": None}]),
        _row(1, [{"bytes": None, "path": "relative.png"}]),
        _row(2, [], placeholders=1),
        _row(3, None),
    ]
    with pytest.raises(ImageCellError) as err:
        _dataset(_parquet(tmp_path, rows), tokenizer)
    text = str(err.value)
    assert "2 of 4 rows" in text
    assert "row 1 (id id1)" in text and "relative" in text
    assert "row 2 (id id2)" in text and "1 <image> placeholder(s) but 0 image(s)" in text
    assert "id0" not in text and "id3" not in text


def test_drop_removes_text_only_rows_and_keeps_columns_aligned(tmp_path, tokenizer):
    rows = [_row(0, None), _row(1, [{"bytes": b"a"}]), _row(2, []), _row(3, [{"bytes": b"b"}])]
    ds = _dataset(_parquet(tmp_path, rows), tokenizer, text_only_rows="drop")
    assert len(ds) == 2
    assert ds.text_only_dropped == 2
    assert [m[1]["content"] for m in ds.messages] == ["question 1<image>", "question 3<image>"]
    assert [info["id"] for info in ds.dataframe["extra_info"]] == ["id1", "id3"]
    assert list(ds.dataframe[ds.image_key]) == [[{"bytes": b"a"}], [{"bytes": b"b"}]]


def test_keep_is_the_default_and_other_modes_are_refused(tmp_path, tokenizer):
    files = _parquet(tmp_path, [_row(0, None), _row(1, [{"bytes": b"a"}])])
    assert len(_dataset(files, tokenizer)) == 2
    with pytest.raises(ValueError, match="text_only_rows"):
        _dataset(files, tokenizer, text_only_rows="fake_image")


def test_globs_and_directories_read_every_shard(tmp_path, tokenizer):
    _parquet(tmp_path, [_row(0, None), _row(1, None)], "train-00000.parquet")
    _parquet(tmp_path, [_row(2, None)], "train-00001.parquet")
    _parquet(tmp_path, [_row(9, None)], "val-00000.parquet")
    ds = _dataset(str(tmp_path / "train-*.parquet"), tokenizer)
    assert [m[1]["content"] for m in ds.messages] == ["question 0", "question 1", "question 2"]
    assert expand_parquet_paths([str(tmp_path)]) == [
        str(tmp_path / n) for n in ("train-00000.parquet", "train-00001.parquet", "val-00000.parquet")
    ]
    assert expand_parquet_paths("hdfs://x/y.parquet") == ["hdfs://x/y.parquet"]
    with pytest.raises(FileNotFoundError, match="no parquet file matches"):
        expand_parquet_paths([str(tmp_path / "test-*.parquet")])
