"""The annotation folder's images: each distinct image written once, named by the sha256 of its bytes.

``OUT/images/<sha256>.<ext>`` with ``ext`` from the decoded format (``png``, ``jpg``, ``gif``, ``webp``, ``bmp``,
``tiff``). An image that does not decode is refused (:class:`~sophiavl.data_prep.imagecheck.ImageRejected`), never
written. Whether a file exists is asked of the file system (the last few hundred digests are remembered, since the
rollouts of one row come together), so memory does not grow with the number of images.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

from sophiavl.data_prep.imagecheck import ImageRejected, probe_image

#: How many recent image digests skip the check and the file-system lookup (bounded memory).
RECENT = 256
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
        self._last: OrderedDict[str, str] = OrderedDict()  # the last RECENT digests stored -> their names

    def _remember(self, digest: str, name: str) -> None:
        self._last[digest] = name
        if len(self._last) > RECENT:
            self._last.popitem(last=False)

    def put(self, data: bytes) -> str:
        """Stores ``data`` (encoded image bytes) once and returns its file name ``<sha256>.<ext>``.

        The header is checked and the structure verified (:func:`~sophiavl.data_prep.imagecheck.probe_image`; the
        pixels are not decoded). The file is written under a temporary name and renamed, so a killed run never
        leaves a half-written image under its final name.

        Raises:
            ImageRejected: the bytes are not a usable image (empty, truncated, corrupt, unknown format, too large).
        """
        digest = hashlib.sha256(data).hexdigest()
        known = self._last.get(digest)
        if known is not None:  # the same image as a recent row's (a group's rollouts come together): checked then
            self.reused += 1
            return known
        info = probe_image(data)
        ext = EXTENSIONS.get(info.format)
        if ext is None:
            raise ImageRejected("image_unreadable", f"unsupported image format {info.format}")
        name = f"{digest}.{ext}"
        path = self.root / name
        self._remember(digest, name)
        if path.exists():
            self.reused += 1
            return name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.written += 1
        return name
