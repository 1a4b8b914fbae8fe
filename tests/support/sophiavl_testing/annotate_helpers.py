"""Helpers of the ``annotate`` tests and benchmark: prepared parquet (the embedded sample, or synthetic rows with
small distinct PNGs), the prepared rows read back with plain pyarrow (not the code under test), and rollout shards
written with the project's ``ShardWriter``.

Not a test module: imported as ``sophiavl_testing.annotate_helpers`` (tests/support is on pytest's path).
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from sophiavl.data_prep.schema import row_schema
from sophiavl.rewards.collect import RolloutRecord
from sophiavl.rewards.collect.shards import ShardWriter


def prepare_sample(out: Path) -> Path:
    """The embedded SophiaVL-R1-130k sample prepared by ``python -m sophiavl.data_prep.sophiavl_130k`` (images
    embedded, 3 validation rows) into ``out``; returns ``out``."""
    from sophiavl.data_prep.sophiavl_130k import main

    assert main(["--out", str(out), "--val-size", "3", "--no-progress"]) == 0
    return out


def read_prepared(folder: Path) -> dict[tuple[str, int], dict]:
    """Every prepared row of ``folder`` as ``{(split, index): {"extra_info": ..., "images": [bytes, ...]}}``, read
    with pyarrow alone (small folders only: every image is loaded)."""
    rows: dict[tuple[str, int], dict] = {}
    for path in sorted(folder.glob("*.parquet")):
        for row in pq.read_table(path, columns=["extra_info", "images"]).to_pylist():
            extra = row["extra_info"]
            rows[(extra["split"], extra["index"])] = {
                "extra_info": extra,
                "images": [cell["bytes"] for cell in row["images"]],
            }
    return rows


def png(seed: int, size: int = 8) -> bytes:
    """A ``size`` x ``size`` PNG whose colour depends on ``seed`` (distinct for seeds below 2**24)."""
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (seed & 255, (seed >> 8) & 255, (seed >> 16) & 255)).save(buf, "PNG")
    return buf.getvalue()


def synthetic_prepared(out: Path, n_rows: int, group_rows: int = 256, bad_image_index: int | None = None) -> Path:
    """A prepared folder ``out/train-00000.parquet`` of ``n_rows`` one-image rows in the prepared schema
    (``extra_info.index`` 0..n-1, problem_id ``p<index>``, question ``question <index>``), ``group_rows`` rows per
    row group. Row ``bad_image_index`` (if given) gets bytes that are not an image."""
    out.mkdir(parents=True, exist_ok=True)
    schema = row_schema("embed")
    with pq.ParquetWriter(out / "train-00000.parquet", schema) as writer:
        for start in range(0, n_rows, group_rows):
            rows = []
            for i in range(start, min(n_rows, start + group_rows)):
                image = b"not an image at all" if i == bad_image_index else png(i)
                rows.append(
                    {
                        "data_source": "synthetic",
                        "prompt": [{"role": "user", "content": f"<image>question {i}"}],
                        "images": [{"bytes": image}],
                        "ability": "numerical",
                        "reward_model": {"style": "rule", "ground_truth": "1"},
                        "extra_info": {
                            "split": "train",
                            "index": i,
                            "problem_id": f"p{i}",
                            "problem_type": "numerical",
                            "data_source": "synthetic",
                            "question": f"question {i}",
                            "answer": "1",
                            "options": [],
                        },
                    }
                )
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    return out


def rollout(rid: str, extra: dict, response: str | None = None, **changes) -> RolloutRecord:
    """A collected record of prepared row ``extra`` (its ``extra_info``); the response names the rid (so a request
    can be traced to its record) unless given; ``changes`` replace fields."""
    values = dict(
        rid=rid,
        split=extra["split"],
        index=extra["index"],
        problem_id=extra["problem_id"],
        data_source=extra["data_source"],
        problem_type=extra["problem_type"],
        question=extra["question"],
        response=response if response is not None else f"<think>step of {rid}</think><answer>1</answer>",
        outcome=1.0,
        step=1,
        group=f"g{extra['index']}",
        source="grpo",
    )
    values.update(changes)
    return RolloutRecord(**values)


def write_rollouts(folder: Path, records: list[RolloutRecord], tag: str = "test", chunk: int = 4096) -> Path:
    """Writes ``records`` to ``folder/rollouts-<tag>.jsonl`` with ``ShardWriter`` (``chunk`` records per write);
    returns the shard's path."""
    writer = ShardWriter(folder, tag)
    for start in range(0, len(records), chunk):
        writer.write(records[start : start + chunk])
    writer.close()
    return writer.path


def grid_reply_for(rid: str) -> str:
    """The scripted judge's reply for a rollout id: a grid score from the rid's characters
    (``sum(ord) % 11 / 10``), written alone, e.g. ``"0.3"``."""
    return f"{sum(map(ord, rid)) % 11 / 10:.1f}"
