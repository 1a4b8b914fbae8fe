"""Reading the judge's inputs out of a verl sample: the question text and the first image of ``raw_prompt``."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from typing import Any

from sophiavl.rewards.trm.prompt import strip_placeholders


def _messages(raw_prompt: Any) -> list[Mapping[str, Any]]:
    if raw_prompt is None:
        return []
    if isinstance(raw_prompt, str):
        return [{"role": "user", "content": raw_prompt}]
    return [m for m in list(raw_prompt) if isinstance(m, Mapping)]


def _parts(content: Any) -> Iterable[Any]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def question_text(raw_prompt: Any) -> str:
    """The text of the user turns of ``raw_prompt`` (a chat list, a numpy array of messages, or a plain string).

    Text parts are joined with newlines; ``<image>``-style placeholders are removed (``strip_placeholders``, the
    judge's one definition); system turns are left out (the
    judge sees the question, not the policy's instructions about output format).
    """
    texts: list[str] = []
    for message in _messages(raw_prompt):
        if message.get("role", "user") != "user":
            continue
        for part in _parts(message.get("content")):
            if isinstance(part, Mapping) and part.get("type", "text") == "text" and part.get("text") is not None:
                text = strip_placeholders(str(part["text"]))
                if text:
                    texts.append(text)
    return "\n".join(texts)


def _pil_to_png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def image_payload(part: Mapping[str, Any]) -> bytes | str:
    """Encoded bytes (or an http(s)/data URL) of one image content part.

    Order of preference: original ``bytes`` (parquet ``{"bytes": ...}`` structs; never re-encoded), an
    ``image_url``/URL string, a file path (read as is), and only then a PIL image (re-encoded as PNG).
    Raises ``ValueError`` when the part holds no usable image.
    """
    raw = part.get("bytes")
    if isinstance(raw, bytes | bytearray | memoryview) and len(raw) > 0:
        return bytes(raw)
    candidates = [part.get("image"), part.get("path"), part.get("url")]
    url = part.get("image_url")
    if isinstance(url, Mapping):
        url = url.get("url")
    candidates.insert(0, url)
    for item in candidates:
        if item is None:
            continue
        if isinstance(item, bytes | bytearray):
            return bytes(item)
        if isinstance(item, str | os.PathLike):
            text = os.fspath(item)
            if text.startswith(("http://", "https://", "data:")):
                return text
            path = text[len("file://") :] if text.startswith("file://") else text
            with open(path, "rb") as handle:
                return handle.read()
        if hasattr(item, "save") and hasattr(item, "convert"):  # a PIL image without its original bytes
            return _pil_to_png(item)
    raise ValueError(f"image part without usable data (keys {sorted(part)})")


def first_image(raw_prompt: Any) -> bytes | str | None:
    """The first image of ``raw_prompt`` (any role) as for :func:`image_payload`, or ``None`` when there is none."""
    for message in _messages(raw_prompt):
        for part in _parts(message.get("content")):
            if isinstance(part, Mapping) and part.get("type") in ("image", "image_url"):
                return image_payload(part)
    return None
