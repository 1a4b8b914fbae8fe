"""The judge's prompt: template loading, image encoding and the chat messages of one request."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: The template shipped with the package (``rewards/prompts/thinking_judge.txt``).
DEFAULT_TEMPLATE = "thinking_judge.txt"

#: Regex for vLLM structured output: one score on the grid 0, 0.1, ..., 1.0 inside answer tags.
SCORE_REGEX = r"<answer>(0(\.[0-9])?|1(\.0)?)</answer>"

_SEPARATOR = "\n---\n"
_PLACEHOLDER = re.compile(r"\{(question|response)\}")


@dataclass(frozen=True)
class PromptTemplate:
    """A system message and a user text with ``{question}`` and ``{response}`` placeholders."""

    system: str
    user: str

    def render(self, question: str, response: str) -> str:
        """The user text with both placeholders filled in one pass (braces elsewhere, and placeholders inside the
        filled-in texts, are left alone)."""
        values = {"question": question, "response": response}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.user)


def load_template(path: str | None = None) -> PromptTemplate:
    """Loads a prompt template.

    ``path`` None (or ``"default"``) loads the packaged template; otherwise a file path. The file holds the system
    message, a line ``---``, then the user text, which must contain ``{question}`` and ``{response}``; without the
    ``---`` line the whole file is the user text and the system message is empty. Raises ``ValueError`` when a
    placeholder is missing, ``FileNotFoundError`` when the file does not exist.
    """
    if path in (None, "", "default"):
        text = resources.files("sophiavl.rewards").joinpath("prompts", DEFAULT_TEMPLATE).read_text(encoding="utf-8")
        where = f"package template {DEFAULT_TEMPLATE}"
    else:
        text = Path(path).expanduser().read_text(encoding="utf-8")
        where = str(path)
    text = text.replace("\r\n", "\n")
    if _SEPARATOR in text:
        system, user = text.split(_SEPARATOR, 1)
    else:
        system, user = "", text
    for placeholder in ("{question}", "{response}"):
        if placeholder not in user:
            raise ValueError(f"prompt template {where} lacks the placeholder {placeholder}")
    return PromptTemplate(system=system.strip(), user=user.strip() + "\n")


def sniff_image_mime(data: bytes) -> str:
    """The MIME type of encoded image bytes from their magic number (PNG, JPEG, GIF, WebP, BMP, TIFF).

    Raises ``ValueError`` for anything else (a corrupt image must not be sent as if it were one).
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"BM"):
        return "image/bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    raise ValueError(f"not a recognised image format (first bytes {data[:8]!r})")


def image_url(image: bytes | str) -> str:
    """An ``image_url`` value: ``data:<mime>;base64,...`` for bytes; a string (``http(s)://`` or ``data:``) as is."""
    if isinstance(image, str):
        if not image.startswith(("http://", "https://", "data:")):
            raise ValueError("an image given as text must be an http(s):// or data: URL")
        return image
    return f"data:{sniff_image_mime(image)};base64,{base64.b64encode(image).decode('ascii')}"


def build_messages(template: PromptTemplate, question: str, response: str, image: bytes | str | None) -> list[dict]:
    """The chat messages of one judgement: the system message (when not empty), then a user message whose content
    is the rendered prompt text followed by the image (when given)."""
    content: list[dict] = [{"type": "text", "text": template.render(question, response)}]
    if image is not None:
        content.append({"type": "image_url", "image_url": {"url": image_url(image)}})
    messages: list[dict] = []
    if template.system:
        messages.append({"role": "system", "content": template.system})
    messages.append({"role": "user", "content": content})
    return messages
