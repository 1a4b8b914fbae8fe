"""The TRM's SFT dataset: verl 0.9.1's ``MultiTurnSFTDataset`` made safe for mixed text-only and image rows.

Select it in verl's SFT trainer with::

    data.custom_cls.path=pkg://sophiavl.trm.sft_dataset  data.custom_cls.name=TRMSFTDataset

(the recipe ``+recipe=sophiavl_trm`` sets both). Rows are the Thinking-156k converter's: ``messages`` (system,
user, assistant; the user text ends with one ``<image>`` for an image row), ``images`` (``[]`` for a text-only row).

What it changes, without patching verl:

1. **Mixed batches** (the fix). verl's ``MultiTurnSFTDataset.__getitem__`` returns the key ``multi_modal_inputs``
   only for rows whose processor output has image tensors. ``SFTTensorCollator.collate_variable_batch``
   (``verl/utils/dataset/dataset_utils.py``) takes the union of the rows' keys but reads ``batch[0][key]``, so a
   batch whose *first* row is text-only raises ``KeyError: 'multi_modal_inputs'`` as soon as any other row has an
   image. Here every row of a vision-language processor carries ``multi_modal_inputs``: an empty dict for a
   text-only row. The collator then stacks that key for every batch (a stack of non-tensor data), and verl's
   engine (``extract_multi_modal_inputs``, ``verl/utils/model.py``) concatenates the image tensors of the rows that
   have them and skips the empty dicts. Rows are never altered or given fake images. (A micro-batch with no image
   at all is a different verl bug, in its Qwen2.5-VL forward, that no dataset can fix: see ``data.text_only_rows``
   below and docs/trm-training.md, "Known verl bugs".)
2. **Image cells checked when the files are read**, so that a bad row fails the run before the first step with
   its row number instead of deep inside a data-loader worker:

   - a null ``images`` cell becomes ``[]`` (verl would call ``len(None)``);
   - image entries with null fields (parquet stores a column that mixes ``{"bytes": ...}`` and ``{"image": ...}``
     entries as one struct, so each entry carries the other's field as null) lose those fields (verl asserts that
     ``bytes`` and ``image`` are not both present);
   - a path-only Hugging Face image ``{"bytes": null, "path": "/abs.png"}`` becomes ``{"image": "/abs.png"}``
     (verl would open ``BytesIO(None)``); a relative path is an error (it would depend on the working directory);
   - an entry with neither bytes nor a path, or a row whose ``<image>`` placeholders do not match its image count
     (verl's assertion in ``_build_messages``), is an error listing the first offending rows.

   Image bytes are not decoded here (that happens lazily per row, as in verl); the converter checks them.
3. **Sharded files**: ``data.train_files``/``val_files`` may be globs or directories (``expand_parquet_paths``), so
   the recipe's ``data/trm/train-*.parquet`` reads every shard the converter wrote.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

#: How many offending rows an error message lists.
MAX_LISTED = 5

IMAGE_PLACEHOLDER = "<image>"


class ImageCellError(ValueError):
    """An ``images`` cell the trainer cannot use; the message names the rows."""


def normalize_image(entry: Any) -> Any:
    """One element of an ``images`` list in the form verl's ``process_image`` accepts.

    A PIL image passes unchanged. A mapping loses its null fields; ``{"path": p}`` (a path-only Hugging Face image)
    becomes ``{"image": p}``, and with ``bytes`` present the ``path`` (a file name kept for reference by HF
    ``datasets``) is dropped. Raises ``ImageCellError`` for an entry with neither ``bytes`` nor ``image``/``path``,
    for a relative path, and for anything that is not a mapping or PIL image.
    """
    if hasattr(entry, "convert") and hasattr(entry, "size"):  # PIL.Image.Image
        return entry
    if not isinstance(entry, Mapping):
        raise ImageCellError(f"an image must be a struct ({{bytes}} or {{image}}), got {type(entry).__name__}")
    out = {k: v for k, v in entry.items() if v is not None}
    if "bytes" in out:
        out.pop("path", None)
        if "image" in out:
            raise ImageCellError("an image has both `bytes` and `image`; keep one")
        return out
    if "image" not in out and "path" in out:
        out["image"] = out.pop("path")
    if "image" not in out:
        raise ImageCellError(f"an image has neither `bytes` nor `image`/`path` (fields: {sorted(entry)})")
    source = out["image"]
    if not isinstance(source, str):
        raise ImageCellError(f"an image's `image` must be a path or URL string, got {type(source).__name__}")
    is_url = source.startswith(("http://", "https://", "file://", "data:"))
    if not is_url and not os.path.isabs(source):
        raise ImageCellError(f"image path {source!r} is relative; write absolute paths (or bytes)")
    out.pop("path", None)
    return out


def expand_parquet_paths(paths: Any) -> list[str]:
    """``data.train_files``/``val_files`` entries as a list of files: an entry with ``*``, ``?`` or ``[`` is a glob
    (its sorted matches; the converter writes ``train-00000.parquet``, ``train-00001.parquet``, ...), a directory
    stands for its sorted ``*.parquet`` files, anything else is kept as given (verl also reads ``hdfs://`` paths).
    Raises ``FileNotFoundError`` when a glob or directory yields no file."""
    out: list[str] = []
    for entry in [paths] if isinstance(paths, str) else list(paths):
        entry = str(entry)
        if os.path.isdir(entry):
            found = sorted(glob.glob(os.path.join(entry, "*.parquet")))
        elif any(ch in entry for ch in "*?["):
            found = sorted(glob.glob(os.path.expanduser(entry)))
        else:
            out.append(entry)
            continue
        if not found:
            raise FileNotFoundError(f"no parquet file matches {entry!r} (run `make prepare-trm-data`?)")
        out.extend(found)
    return out


def placeholder_count(messages: Any) -> int:
    """Number of ``<image>`` placeholders in the string contents of a row's messages."""
    return sum(m["content"].count(IMAGE_PLACEHOLDER) for m in messages if isinstance(m.get("content"), str))


def normalize_images_cell(cell: Any, messages: Any) -> list:
    """A row's ``images`` cell as a list of normalised entries (``normalize_image``); null becomes ``[]``.

    Raises ``ImageCellError`` when the count differs from the row's ``<image>`` placeholders.
    """
    images = [] if cell is None else [normalize_image(e) for e in list(cell)]
    expected = placeholder_count(messages)
    if expected != len(images):
        raise ImageCellError(f"{expected} <image> placeholder(s) but {len(images)} image(s)")
    return images


class TRMSFTDataset(MultiTurnSFTDataset):
    """``MultiTurnSFTDataset`` for batches that mix text-only and image rows (see the module docstring).

    Same constructor and config keys as verl's class (``data.messages_key``, ``data.image_key``, ``data.max_length``,
    ``data.truncation``, ...). Reading raises ``ImageCellError`` naming up to ``MAX_LISTED`` bad rows (their
    position in the concatenated files, and the ``extra_info.id`` when present).

    One key of its own, ``data.text_only_rows`` (set with ``+data.text_only_rows=...`` or in the recipe):
    ``keep`` (default) trains on every row; ``drop`` removes the rows without an image when the files are read and
    prints how many (``self.text_only_dropped``). ``drop`` exists because of a second verl 0.9.1 bug that no dataset
    can fix: a *micro-batch* without any image crashes in verl's Qwen2.5-VL forward with transformers 5
    (``verl/models/transformers/qwen2_vl.py`` L390-394, ``AttributeError: 'BaseModelOutputWithPooling' object has
    no attribute 'mean'``; docs/trm-training.md, "Known verl bugs").
    """

    TEXT_ONLY_MODES = ("keep", "drop")

    def __init__(self, parquet_files, tokenizer, config, processor=None, max_samples: int = -1):
        mode = (config or {}).get("text_only_rows", "keep")
        if mode not in self.TEXT_ONLY_MODES:
            raise ValueError(f"data.text_only_rows must be one of {self.TEXT_ONLY_MODES}, got {mode!r}")
        self.text_only_rows = mode
        self.text_only_dropped = 0
        super().__init__(parquet_files, tokenizer, config, processor=processor, max_samples=max_samples)

    def _download(self):
        self.parquet_files = expand_parquet_paths(self.parquet_files)
        super()._download()

    def _read_files_and_process(self):
        super()._read_files_and_process()
        if self.image_key not in self.dataframe.columns:
            return
        # verl reads rows by position (iloc); a fresh index lets the checked cells replace the column in place
        self.dataframe = self.dataframe.reset_index(drop=True)
        cells = self._checked_image_cells()
        self.dataframe[self.image_key] = pd.Series(cells, index=self.dataframe.index, dtype=object)
        if self.text_only_rows == "drop":
            self._drop_rows_without_images(cells)

    def _drop_rows_without_images(self, cells: list[list]) -> None:
        keep = [i for i, cell in enumerate(cells) if cell]
        self.text_only_dropped = len(cells) - len(keep)
        self.dataframe = self.dataframe.iloc[keep].reset_index(drop=True)
        self.messages = [self.messages[i] for i in keep]
        if self.tools is not None:
            self.tools = [self.tools[i] for i in keep]
        if self.enable_thinking is not None:
            self.enable_thinking = [self.enable_thinking[i] for i in keep]
        print(
            f"TRMSFTDataset: dropped {self.text_only_dropped} text-only row(s) of {len(cells)} "
            f"(data.text_only_rows=drop); {len(keep)} rows left"
        )

    def _checked_image_cells(self) -> list[list]:
        cells, bad = [], []
        ids = self._row_ids()
        for pos, (cell, messages) in enumerate(zip(self.dataframe[self.image_key], self.messages, strict=True)):
            try:
                cells.append(normalize_images_cell(_to_python(cell), messages))
            except ImageCellError as err:
                bad.append(f"row {pos}{ids[pos]}: {err}")
                cells.append([])
        if bad:
            listed = "; ".join(bad[:MAX_LISTED])
            more = f" (and {len(bad) - MAX_LISTED} more)" if len(bad) > MAX_LISTED else ""
            raise ImageCellError(
                f"{len(bad)} of {len(cells)} rows have unusable `{self.image_key}` cells: {listed}{more}"
            )
        return cells

    def _row_ids(self) -> list[str]:
        if "extra_info" not in self.dataframe.columns:
            return [""] * len(self.dataframe)
        out = []
        for info in self.dataframe["extra_info"]:
            info = _to_python(info)
            row_id = info.get("id") if isinstance(info, Mapping) else None
            out.append(f" (id {row_id})" if row_id is not None else "")
        return out

    def _build_messages(self, example: dict):
        # verl's process_image writes the decoded image into the entry it is given; the checked cells live in the
        # table as Python objects, so each read gets copies (else the second epoch finds `bytes` and `image`)
        if self.image_key in example:
            cell = example[self.image_key]
            example = {**example, self.image_key: [dict(e) if isinstance(e, Mapping) else e for e in cell]}
        return super()._build_messages(example)

    def __getitem__(self, item):
        row = super().__getitem__(item)
        if self.processor is not None and "multi_modal_inputs" not in row:
            row["multi_modal_inputs"] = {}  # text-only row: see fix 1 in the module docstring
        return row


def _to_python(value: Any) -> Any:
    """A cell of a pyarrow-backed pandas table as plain Python; a null (None, pd.NA) becomes None."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "as_py"):
        return value.as_py()
    if hasattr(value, "tolist") and not isinstance(value, bytes | str):
        return value.tolist()
    return value
