"""Numbers in text: read out of short answers (shared by the MathVista, MMMU and ChartQA rules), and written into the
reports' tables (:func:`number_text`)."""

from __future__ import annotations

import re

# optional sign, digits with optional thousands commas, optional decimals, optional exponent; or a leading-dot decimal
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


def to_float(text: str) -> float | None:
    """``text`` as a float when the whole of it (stripped, thousands commas removed) is one number: ``"1,234.5"``
    -> 1234.5, ``"-3"`` -> -3.0, ``"1e3"`` -> 1000.0. Anything else (``"12%"``, ``"3 cm"``, ``"nan"``, ``"inf"``,
    ``""``) gives ``None``."""
    t = text.strip()
    if not t or _NUMBER.fullmatch(t) is None:
        return None
    return float(t.replace(",", ""))


def numbers_in(text: str) -> list[float]:
    """Every number in ``text``, in order (thousands commas understood): ``"x = 3, y = 1,500"`` -> [3.0, 1500.0]."""
    return [float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(text)]


def answer_number(text: str) -> float | None:
    """The number a short answer states: the whole text when it is one number; else, after removing ``$``, ``%``,
    ``°``, LaTeX ``^\\circ`` and ``\\%``, the **last** number in it (``"x = 12 cm"`` -> 12.0); ``None`` without one."""
    whole = to_float(text)
    if whole is not None:
        return whole
    cleaned = text.replace("^\\circ", " ").replace("^{\\circ}", " ").replace("\\%", " ")
    cleaned = re.sub(r"[$%°]", " ", cleaned)
    found = numbers_in(cleaned)
    return found[-1] if found else None


def number_text(value: float | None, fmt: str = ".1f") -> str:
    """``value`` formatted with ``fmt`` (``format(0.25, ".1f")`` -> ``"0.2"``) for a report table; ``"-"`` for
    ``None`` (a number that could not be computed, e.g. no row scored)."""
    return "-" if value is None else format(value, fmt)
