"""The settings both converters share (``sophiavl_130k`` and ``thinking_156k``), one dataclass each converter extends.

The flags that set them are in :mod:`sophiavl.data_prep.cli` (``add_source_args``, ``add_conversion_args``,
``common_options``); each converter's ``--help`` states every field's meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

from .imagecheck import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS


@dataclass
class ConversionOptions:
    """Settings common to both converters.

    Attributes:
        src: dataset folder or ``hf://OWNER/NAME``.
        out: output folder (earlier ``train-/val-*.parquet`` in it are replaced).
        revision: hub sources only: branch, tag or commit (``None``: main).
        val_size: rows held out for validation (>= 0).
        max_rows: read at most this many records in total (``None``: all).
        images: ``embed`` (file bytes in the parquet) or ``path`` (absolute paths to unpacked files).
        shard_rows: rows per parquet shard.
        workers: processes reading and checking images.
        max_reject_rate: the run exits 1 when rejected / read exceeds this share, in [0, 1].
        max_pixels: images above W*H pixels are rejected.
        max_image_bytes: image files above this many bytes are rejected.
        batch_rows: records handed to the image stage at once.
        progress: show a progress bar.
    """

    src: str
    out: str
    revision: str | None = None
    val_size: int = 500
    max_rows: int | None = None
    images: str = "embed"
    shard_rows: int = 10_000
    workers: int = 1
    max_reject_rate: float = 0.05
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_image_bytes: int = DEFAULT_MAX_BYTES
    batch_rows: int = 64
    progress: bool = True
