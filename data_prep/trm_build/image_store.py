"""The annotation folder's images: each distinct image written once, named by the sha256 of its bytes.

``OUT/images/<sha256>.<ext>`` with ``ext`` from the decoded format (``png``, ``jpg``, ``gif``, ``webp``, ``bmp``,
``tiff``). An image that does not decode is refused (:class:`~sophiavl.data_prep.imagecheck.ImageRejected`), never
written. Whether a file exists is asked of the file system, so memory does not grow with the number of images.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sophiavl.data_prep.imagecheck import ImageRejected, probe_image

#: PIL format name -> file extension.
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "MPO": "jpg"}


class ImageStore:
    """Writes images under ``<folder>/images/`` (created); ``written`` counts files this store wrote, ``reused``
    images that were there already."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.root = Path(folder) / "images"
        self.root.mkdir(parents=True, exist_ok=True)
        self.written = 0
        self.reused = 0

    def put(self, data: bytes) -> str:
        """Stores ``data`` (encoded image bytes) once and returns its file name ``<sha256>.<ext>``.

        The header is checked and the structure verified (:func:`~sophiavl.data_prep.imagecheck.probe_image`; the
        pixels are not decoded). The file is written under a temporary name and renamed, so a killed run never
        leaves a half-written image under its final name.

        Raises:
            ImageRejected: the bytes are not a usable image (empty, truncated, corrupt, unknown format, too large).
        """
        info = probe_image(data)
        ext = EXTENSIONS.get(info.format)
        if ext is None:
            raise ImageRejected("image_unreadable", f"unsupported image format {info.format}")
        name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        path = self.root / name
        if path.exists():
            self.reused += 1
            return name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.written += 1
        return name
