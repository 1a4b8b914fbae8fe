"""The output row: verl's RLHF parquet layout, as an explicit pyarrow schema (so every shard has the same one)."""

from __future__ import annotations

import pyarrow as pa

from .prompts import build_prompt
from .records import Problem

IMAGE_MODES = ("embed", "path")  # --images

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])  # one chat message
_REWARD = pa.struct([("style", pa.string()), ("ground_truth", pa.string())])
_EXTRA = pa.struct(
    [
        ("split", pa.string()),
        ("index", pa.int64()),
        ("problem_id", pa.string()),
        ("problem_type", pa.string()),
        ("data_source", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("options", pa.list_(pa.string())),
    ]
)


def image_struct(images: str) -> pa.DataType:
    """One image of a row: ``struct<bytes: binary>`` for ``images="embed"``, ``struct<image: string>`` (an absolute
    path) for ``images="path"``. Exactly one field, because verl opens ``bytes`` whenever that key is present.

    Raises:
        ValueError: ``images`` is neither ``"embed"`` nor ``"path"``.
    """
    if images == "embed":
        return pa.struct([("bytes", pa.binary())])
    if images == "path":
        return pa.struct([("image", pa.string())])
    raise ValueError(f"images must be 'embed' or 'path', not {images!r}")


def row_schema(images: str) -> pa.Schema:
    """The schema for ``images="embed"`` (``images: list<struct<bytes: binary>>``) or ``images="path"``
    (``images: list<struct<image: string>>``, absolute paths). Each image struct has exactly one field, because
    verl's RLHFDataset opens ``bytes`` whenever that key is present."""
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(MESSAGE)),
            ("images", pa.list_(image_struct(images))),
            ("ability", pa.string()),
            ("reward_model", _REWARD),
            ("extra_info", _EXTRA),
        ]
    )


def make_row(problem: Problem, images: list[dict], split: str, index: int) -> dict:
    """One output row for ``problem``.

    Args:
        problem: the validated record.
        images: one dict per image, ``{"bytes": b"..."}`` or ``{"image": "/abs/path"}``, in record order.
        split: ``"train"`` or ``"val"``.
        index: 0-based position of the row within its split.
    """
    return {
        "data_source": problem.data_source,
        "prompt": build_prompt(problem.question, problem.problem_type, problem.options, len(images)),
        "images": images,
        "ability": problem.problem_type,
        "reward_model": {"style": "rule", "ground_truth": problem.answer},
        "extra_info": {
            "split": split,
            "index": index,
            "problem_id": problem.problem_id,
            "problem_type": problem.problem_type,
            "data_source": problem.data_source,
            "question": problem.question,
            "answer": problem.answer,
            "options": list(problem.options),
        },
    }
