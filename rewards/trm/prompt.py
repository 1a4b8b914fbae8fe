"""The judge's prompt: template loading, image encoding and the chat messages of one request.

This module is the one definition of what the thinking reward model (TRM) reads: :func:`build_messages` makes the
request the judge sends, :func:`sft_messages` the training conversation the TRM learns from (Thinking-156k rows,
``sophiavl.data_prep.thinking_156k``). Both put the same text (:func:`judge_text`) in the user turn, so a trained
TRM is asked exactly what it learned.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: The template shipped with the package (``rewards/trm/prompts/thinking_judge.txt``).
DEFAULT_TEMPLATE = "thinking_judge.txt"

#: Regex for vLLM structured output: one score on the grid 0, 0.1, ..., 1.0 inside answer tags.
SCORE_REGEX = r"<answer>(0(\.[0-9])?|1(\.0)?)</answer>"

#: Literal media placeholders removed from the question and the response: verl counts each ``<image>``/``<video>``
#: in a text as one media item, and the judge places the image itself.
PLACEHOLDERS = ("<image>", "<video>", "<audio>")

#: Where the image goes in an SFT user turn: right after the text, as the judge's request has [text, image] parts.
IMAGE_TOKEN = "<image>"

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
        text = resources.files("sophiavl.rewards.trm").joinpath("prompts", DEFAULT_TEMPLATE).read_text(encoding="utf-8")
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


def strip_placeholders(text: str) -> str:
    """``text`` without the literal :data:`PLACEHOLDERS` (removed until none is left, so ``<im<image>age>`` leaves
    nothing behind) and without surrounding whitespace. ``"<image>\\nWhat is x?"`` -> ``"What is x?"``."""
    previous = None
    while previous != text:
        previous = text
        for placeholder in PLACEHOLDERS:
            text = text.replace(placeholder, "")
    return text.strip()


def judge_text(template: PromptTemplate, question: str, response: str) -> str:
    """The user text the TRM reads for ``question`` and ``response``: the template rendered with both passed
    through :func:`strip_placeholders`. The judge's request and the SFT rows both use exactly this text."""
    return template.render(strip_placeholders(question), strip_placeholders(response))


def format_score(score: float) -> str:
    """A score on the grid 0.0, 0.1, ..., 1.0 as the TRM writes it: ``0.7``, ``0.0``, ``1.0`` (one decimal).

    A value within 1e-6 of a grid point is snapped to it (``0.30000000000000004`` -> ``0.3``). Raises
    ``ValueError`` for anything else: outside [0, 1], off the grid, NaN, or not a real number."""
    if isinstance(score, bool) or not isinstance(score, int | float) or score != score:
        raise ValueError(f"score {score!r} is not a number")
    tenths = round(score * 10)
    if not 0 <= tenths <= 10 or abs(score - tenths / 10) > 1e-6:
        raise ValueError(f"score {score!r} is not on the grid 0.0, 0.1, ..., 1.0")
    return f"{tenths / 10:.1f}"


def score_answer(score: float) -> str:
    """The TRM's reply for ``score``: ``<answer>0.7</answer>`` (see :func:`format_score`); it matches
    :data:`SCORE_REGEX`, the judge's structured-output constraint, and the judge's parser reads it back."""
    return f"<answer>{format_score(score)}</answer>"


def sft_messages(
    question: str, response: str, has_image: bool, score: float, template: PromptTemplate | None = None
) -> list[dict[str, str]]:
    """The SFT conversation of one Thinking-156k row, in verl ``MultiTurnSFTDataset``'s ``messages`` format.

    ``[system, user, assistant]``: the system turn is the template's system text (left out when it is empty, as
    in :func:`build_messages`); the user turn is :func:`judge_text` followed directly by :data:`IMAGE_TOKEN` when
    ``has_image`` (where the judge's image part goes; no separator, as Qwen2.5-VL's chat template renders the
    parts back to back); the assistant turn is :func:`score_answer`. ``template`` None loads the packaged one.

    Raises:
        ValueError: ``score`` off the grid (see :func:`format_score`).
    """
    template = template or load_template()
    user = judge_text(template, question, response) + (IMAGE_TOKEN if has_image else "")
    messages: list[dict[str, str]] = []
    if template.system:
        messages.append({"role": "system", "content": template.system})
    messages.append({"role": "user", "content": user})
    messages.append({"role": "assistant", "content": score_answer(score)})
    return messages


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
    is :func:`judge_text` (placeholders stripped from question and response) followed by the image (when given)."""
    content: list[dict] = [{"type": "text", "text": judge_text(template, question, response)}]
    if image is not None:
        content.append({"type": "image_url", "image_url": {"url": image_url(image)}})
    messages: list[dict] = []
    if template.system:
        messages.append({"role": "system", "content": template.system})
    messages.append({"role": "user", "content": content})
    return messages
