"""Helpers shared by the ``test_data_prep_*`` modules: small PNGs and the embedded sample's records and images.

Not a test module and not imported as ``tests.*``: ``conftest.py`` loads it by file path as
``sophiavl_tests_data_prep_helpers``, which the tests import by that name.
"""

from __future__ import annotations

import io
import json
import struct
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
