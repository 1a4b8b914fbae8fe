"""Which option a multiple-choice answer names: deterministic rules, never a random fallback.

Used by MathVista and MathVerse, whose official scorers leave this step to a GPT extractor; MMBench, MMStar and
MMMU follow their own official rules instead (:mod:`sophiavl.eval.option_rules`).

:func:`pick_option` reads the extracted answer text (see :mod:`sophiavl.eval.extract.answer`) and tries, in order:

1. the whole text is one option letter in a usual form (``B``, ``(B)``, ``B.``, ``B) 40``, ``\\text{B}``...);
2. the whole text equals an option's text (case and surrounding punctuation ignored; options sharing that text are
   the same answer, the first is taken);
3. a letter in parentheses, ``(B)``;
4. a letter followed by ``.``, ``)`` or ``:``, ``B.``;
5. a capital letter standing alone, ``the answer is B``;
6. an option's text inside the answer.

Each step only considers the valid letters (``A`` up to the number of options). When a step finds several
different options, the one mentioned last wins (as MMMU's official parser does); step 6 prefers the longest text
among those ending at the same place. A text that names several options at once in step 1 (``A, C``) names none.
Nothing found: ``None``, which scores as wrong.
"""

from __future__ import annotations

import re
import string

from sophiavl.rewards.outcome.scorers import option_letters

LETTERS = string.ascii_uppercase

_WRAPPERS = re.compile(r"\\text\{([^{}]*)\}|\\mathrm\{([^{}]*)\}|\\textbf\{([^{}]*)\}")
_PAREN = re.compile(r"\(([A-Z])\)")
_PUNCT = re.compile(r"(?<![A-Za-z])([A-Z])[.):](?![A-Za-z0-9])")
_ALONE = re.compile(r"(?<![A-Za-z0-9'])([A-Z])(?![A-Za-z0-9'])")


def letters_for(n_options: int) -> str:
    """``"ABCD"`` for 4 options; 0 gives ``""``. Raises ``ValueError`` above 26."""
    if not 0 <= n_options <= len(LETTERS):
        raise ValueError(f"n_options must lie in [0, 26], got {n_options}")
    return LETTERS[:n_options]


def normalise_text(text: str) -> str:
    """Lower case, inner white space collapsed, surrounding white space and ``.,;:!`` removed."""
    return " ".join(text.lower().split()).strip(" .,;:!")


def _unwrap(text: str) -> str:
    text = _WRAPPERS.sub(lambda m: next(g for g in m.groups() if g is not None), text)
    return text.replace("$", "").replace("*", "").strip()


def _last(matches: list[tuple[int, str]]) -> str | None:
    return max(matches)[1] if matches else None


def pick_option(answer: str, n_options: int, option_texts: list[str] | None = None) -> str | None:
    """The letter of the option ``answer`` names, or ``None`` (see the module docstring for the rules).

    Args:
        answer: the extracted answer text.
        n_options: how many options the question has (letters ``A`` .. ), 1 to 26.
        option_texts: the options' texts in letter order, used by steps 2 and 6; ``None`` or ``[]`` skips them
            (MMStar and MathVerse keep their options inside the question).
    """
    valid = letters_for(n_options)
    text = _unwrap(answer or "")
    if not text or not valid:
        return None
    named = option_letters(text)
    if named is not None and len(named) == 1 and next(iter(named)) in valid:
        return next(iter(named))
    if named is not None and len(named) > 1:
        return None
    texts = [normalise_text(t) for t in (option_texts or [])][: len(valid)]
    norm = normalise_text(text)
    exact = [valid[i] for i, t in enumerate(texts) if t and t == norm]
    if exact:
        return exact[0]
    for pattern in (_PAREN, _PUNCT, _ALONE):
        found = [(m.start(), m.group(1)) for m in pattern.finditer(text) if m.group(1) in valid]
        if found:
            return _last(found)
    inside = []
    for i, t in enumerate(texts):
        if not t:
            continue
        for m in re.finditer(r"(?<![a-z0-9])" + re.escape(t) + r"(?![a-z0-9])", norm):
            inside.append((m.end(), len(t), valid[i]))
    return max(inside)[2] if inside else None
