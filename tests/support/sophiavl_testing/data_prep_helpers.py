"""Helpers shared by the data_prep tests (and a few eval tests): small PNGs, the embedded sample's records and
images, a hub cache laid out offline, an offline Qwen2.5-VL processor.

Not a test module: imported as ``sophiavl_testing.data_prep_helpers`` (tests/support is on pytest's path).
"""

from __future__ import annotations

import importlib.machinery
import io
import json
import struct
import sys
import types
import zipfile
import zlib
from pathlib import Path

from PIL import Image

from sophiavl.data_prep.sophiavl_130k import SAMPLE_ROOT


def png_bytes(w: int = 4, h: int = 3, color=(255, 0, 0)) -> bytes:
    """A real ``w`` x ``h`` PNG of one colour."""
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(w: int, h: int) -> bytes:
    """A PNG whose valid IHDR claims ``w`` x ``h`` but with almost no pixel data (a decompression-bomb stand-in)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def read_record_file(path: Path) -> list:
    """The records of one ``.json`` (array) or ``.jsonl`` file, read with :mod:`json` (not the reader under test)."""
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()]


def sample_records(root: Path = SAMPLE_ROOT) -> list[dict]:
    """Every record under ``root/json``, files in name order."""
    return [r for f in sorted((root / "json").iterdir()) for r in read_record_file(f)]


def source_bytes(rel: str) -> bytes:
    """The embedded sample's image for a record path: the unpacked file, else the member of ``Chart.zip``."""
    rel = rel.removeprefix("./")
    f = SAMPLE_ROOT / rel
    if f.exists():
        return f.read_bytes()
    with zipfile.ZipFile(SAMPLE_ROOT / "Chart.zip") as zf:
        return zf.read(rel)


def lay_out_hub_cache(
    cache: Path, repo_id: str, files: dict[str, bytes], commit: str, refs: tuple[str, ...] = ("main",)
) -> Path:
    """Writes a Hugging Face hub cache entry for the dataset ``repo_id`` as ``huggingface_hub`` lays it out:
    ``datasets--OWNER--NAME/blobs/<sha256>`` holds each file once, ``snapshots/<commit>/<path>`` is a relative
    symlink to its blob, and ``refs/<ref>`` holds the commit hash (no newline). Returns the snapshot folder."""
    import hashlib
    import os

    repo = cache / ("datasets--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = repo / "snapshots" / commit
    for rel, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def folder_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` as ``{relative posix path: bytes}``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- an offline Qwen2.5-VL processor, for reading converted parquet with verl's own dataset classes ---------

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def import_qwen_vl_utils():
    """``qwen_vl_utils``, imported with a temporary torchvision stub when torchvision cannot be imported (its image
    path is PIL-only; the stub is removed right after, so transformers never sees it)."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        pass
    else:
        import qwen_vl_utils

        return qwen_vl_utils
    names = ("torchvision", "torchvision.io", "torchvision.transforms")
    stubs = {n: types.ModuleType(n) for n in names}
    for n, m in stubs.items():
        m.__spec__ = importlib.machinery.ModuleSpec(n, None)
    stubs["torchvision"].__version__ = "0.0.0+stub"
    stubs["torchvision"].io = stubs["torchvision.io"]
    stubs["torchvision"].transforms = stubs["torchvision.transforms"]
    stubs["torchvision.transforms"].InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic")
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update(stubs)
    try:
        import qwen_vl_utils
    finally:
        for n in names:
            if saved[n] is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = saved[n]
    return qwen_vl_utils


def offline_qwen25vl_processor():
    """A Qwen2.5-VL processor built offline: a tiny byte-level BPE tokenizer with Qwen's special tokens and a
    minimal chat template (image parts -> ``<|vision_start|><|image_pad|><|vision_end|>``), the PIL Qwen2-VL image
    processor, and a stand-in video processor (never called: the data has no video)."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2_5_VLProcessor, Qwen2TokenizerFast
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.video_processing_utils import BaseVideoProcessor

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["How many circles are in the picture? Answer inside <answer> </answer>."], trainer)
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE
    )

    # Without torchvision, transformers.BaseVideoProcessor is a dummy class and ProcessorMixin checks against it.
    base = transformers.BaseVideoProcessor
    bases = (base,) if base is BaseVideoProcessor else (base, BaseVideoProcessor)

    class NoVideoProcessor(*bases):
        merge_size = 2
        temporal_patch_size = 2

        def __init__(self):
            BaseVideoProcessor.__init__(self)

    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessorPil(),
        tokenizer=tokenizer,
        video_processor=NoVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
