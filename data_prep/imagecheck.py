"""Cheap image validation: read the header for format and size, and verify the file's structure, without
decoding the pixels (PNG chunk CRCs are checked; JPEG, GIF and others only get their header parsed)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

DEFAULT_MAX_PIXELS = 50_000_000  # width * height; about 7071 x 7071. Larger files are decompression-bomb suspects.
DEFAULT_MAX_BYTES = 64 << 20  # a single image file larger than 64 MiB is refused before it is read


class ImageRejected(ValueError):
    """The bytes are not a usable image. ``reason`` is ``image_unreadable`` or ``image_too_large``."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: ``format`` as PIL names it (``PNG``, ``JPEG``...), ``width`` and ``height`` in px."""

    format: str
    width: int
    height: int


def probe_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Checks that ``data`` is an image PIL can open, with ``width * height <= max_pixels`` (both >= 1).

    Only the header is parsed and ``Image.verify()`` run; the pixels are not decoded, so this costs microseconds
    to a few milliseconds even for large files.

    Raises:
        ImageRejected: ``image_too_large`` past the pixel limit (PIL's own bomb guard included),
            ``image_unreadable`` for empty, truncated, corrupt or non-image bytes.
    """
    if not data:
        raise ImageRejected("image_unreadable", "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                fmt = img.format or "unknown"
                if width < 1 or height < 1:
                    raise ImageRejected("image_unreadable", f"degenerate size {width}x{height}")
                if width * height > max_pixels:
                    raise ImageRejected("image_too_large", f"{width}x{height} px exceeds {max_pixels} px")
                img.verify()
    except ImageRejected:
        raise
    except Image.DecompressionBombError as e:
        raise ImageRejected("image_too_large", str(e)) from None
    except Exception as e:  # PIL raises many types for bad input (UnidentifiedImageError, SyntaxError, OSError...)
        raise ImageRejected("image_unreadable", f"{type(e).__name__}: {e}") from None
    return ImageInfo(fmt, width, height)
