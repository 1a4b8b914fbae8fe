"""Answer extraction from a model response, the same for every benchmark and every model.

Order: the content of the **last** ``<answer>...</answer>``; else the content of the last ``\\boxed{...}`` (braces
balanced); else the whole response with every ``<think>...</think>`` block (and an unclosed trailing ``<think>...``)
removed. A response without tags is still scored (base models do not use them); whether the ``<answer>`` format was
used is reported separately (:func:`uses_answer_format`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"<think>.*\Z", re.DOTALL | re.IGNORECASE)
_BOXED = "\\boxed{"


@dataclass(frozen=True)
class Extracted:
    """``text``: the extracted answer, stripped; ``source``: ``"answer"``, ``"boxed"`` or ``"response"``."""

    text: str
    source: str


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` with nested braces balanced (``\\boxed{\\frac{1}{2}}``
    -> ``\\frac{1}{2}``), or ``None`` when there is none or its braces never close."""
    start = text.rfind(_BOXED)
    while start != -1:
        i = start + len(_BOXED)
        depth = 1
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i:j]
        start = text.rfind(_BOXED, 0, start)
    return None


def strip_think(response: str) -> str:
    """``response`` without ``<think>...</think>`` blocks, and without an unclosed ``<think>`` and all after it
    (a response cut inside its reasoning has no answer); stripped."""
    text = _THINK.sub(" ", response)
    return _OPEN_THINK.sub(" ", text).strip()


def extract_answer(response: str) -> Extracted:
    """The answer part of ``response`` (see the module docstring). Never raises; ``None`` counts as ``""``."""
    response = response or ""
    tagged = _ANSWER.findall(response)
    if tagged:
        return Extracted(tagged[-1].strip(), "answer")
    boxed = last_boxed(response)
    if boxed is not None:
        return Extracted(boxed.strip(), "boxed")
    return Extracted(strip_think(response), "response")


def uses_answer_format(response: str) -> bool:
    """True when ``response`` holds a complete ``<answer>...</answer>`` (the share reported as "format")."""
    return _ANSWER.search(response or "") is not None
