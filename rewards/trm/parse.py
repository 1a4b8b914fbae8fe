"""Reading the thinking reward model's score out of its reply."""

from __future__ import annotations

import re

# a number: 1, 0.7, .7, 0.75, 75%, with an optional sign (a negative score is clamped to 0)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d+)?|\.\d+)%?(?!\w|\.\d)")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_BOXED = re.compile(r"\\box(?:ed|es)?\s*\{([^{}]*)\}")

#: Only the last this many characters of a reply are read (the score comes last; bounds the work on huge replies).
PARSE_TAIL_CHARS = 16384


def _lone_number(text: str) -> float | None:
    numbers = _NUMBER.findall(text)
    if len(numbers) != 1:
        return None
    token = numbers[0]
    value = float(token[:-1]) / 100.0 if token.endswith("%") else float(token)
    return min(1.0, max(0.0, value))


def parse_score(text: str | None) -> float | None:
    """The score in ``text``, clamped to [0, 1], or ``None`` when there is none (never 0 for "unreadable").

    Looked for in this order, the first that yields exactly one number wins:

    1. the content of the **last** ``<answer>...</answer>`` (case-insensitive tags);
    2. the content of the last ``\\boxed{...}`` (also ``\\box{}``, ``\\boxes{}``);
    3. the whole reply, when it contains exactly one number.

    Numbers may have any number of decimals (``0.75`` stays 0.75: the grid 0, 0.1, ..., 1 is not enforced) or a
    percent sign (``75%`` is 0.75). Values outside [0, 1] are clamped (``7`` -> 1.0, ``-0.2`` -> 0.0). Several numbers
    in the deciding place (``0.5 or 0.9``) are ambiguous: ``None``. Only the last :data:`PARSE_TAIL_CHARS` characters
    are read.
    """
    if not text:
        return None
    text = text[-PARSE_TAIL_CHARS:]
    answers = _ANSWER.findall(text)
    if answers:
        value = _lone_number(answers[-1])
        if value is not None:
            return value
    boxed = _BOXED.findall(text)
    if boxed:
        value = _lone_number(boxed[-1])
        if value is not None:
            return value
    return _lone_number(text)
