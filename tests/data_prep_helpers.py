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
