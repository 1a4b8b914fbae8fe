"""The benchmarks' own rules for reading an option out of an answer, re-implemented (no random fallback).

* :func:`vlmeval_choice`: VLMEvalKit's ``can_infer`` (``vlmeval/utils/matching_util.py`` at c0e00db, the version of
  the paper's evaluation), used by MMBench and MMStar: first a letter standing alone, then an option's text inside
  the answer. It also decides ``"Z"`` (the answer refuses or names no option), which scores as wrong.
* :func:`mmmu_choice`: MMMU's ``parse_multi_choice_response`` (``mmmu/utils/eval_utils.py`` of
  ``MMMU-Benchmark/MMMU``): ``(B)`` first, else `` B `` between spaces, else (answers of more than 5 words) an option's
  text; among several candidates the one mentioned last. Where the official code picks at random, ``None``.
* :func:`options_from_question`: the option texts of a question that lists them inline (MMStar's
  ``Options: A: ..., B: ...``), so that the text rule can use them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

#: answers VLMEvalKit treats as a refusal ("Z")
_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_SPLIT_CHARS = ".()[],:;!*#{}"
NO_OPTION = "Z"


def _letter_alone(answer: str, letters: Sequence[str]) -> str | None:
    if any(r in answer for r in _REFUSALS):
        return NO_OPTION
    cleaned = answer
    for ch in _SPLIT_CHARS:
        cleaned = cleaned.replace(ch, " ")
    tokens = set(cleaned.split())
    found = [x for x in letters if x in tokens]
    if len(found) == 1:
        return found[0]
    if not found and NO_OPTION in tokens:
        return NO_OPTION
    return None


def _text_inside(answer: str, options: Mapping[str, str]) -> str | None:
    texts = {k: str(v).lower() for k, v in options.items()}
    lowered = answer.lower()
    if not texts or len(lowered) > 2 * sum(len(t) for t in texts.values()):
        return None
    found = [k for k, t in texts.items() if t in lowered]
    return found[0] if len(found) == 1 else None


def vlmeval_choice(answer: str, options: Mapping[str, str]) -> str | None:
    """The option ``answer`` names by VLMEvalKit's ``can_infer``, or ``None``.

    ``options`` maps each valid letter (``"A"``, ``"B"`` ...) to its text (``""`` when the text is not known, then
    only letters count). Rules, in order:

    1. the answer contains one of a few refusal sentences: ``"Z"``;
    2. after replacing ``.()[],:;!*#{}`` by spaces, exactly one valid letter occurs as a word: that letter
       (``"The answer is B."``, ``"(C) 40"``; an article ``"A cat"`` counts as A, as in VLMEvalKit); no valid letter but
       a word ``Z``: ``"Z"``; two or more different letters: go on;
    3. the answer (lower-cased) is at most twice as long as all option texts together and exactly one option's text
       (lower-cased) occurs in it: that option.

    ``"Z"`` means "no option", a wrong answer. ``None``: the rules find no answer.
    """
    answer = str(answer or "")
    letter = _letter_alone(answer, list(options))
    if letter is not None:
        return letter
    return _text_inside(answer, {k: v for k, v in options.items() if str(v)})


def mmmu_choice(answer: str, options: Mapping[str, str]) -> str | None:
    """The option ``answer`` names by MMMU's ``parse_multi_choice_response``, or ``None`` where that code would pick
    one at random.

    ``options`` maps each letter to its text, in letter order. The answer is stripped of ``, . ! ? ; : '`` at both ends
    (one character kind after the other, in that order) and padded with a space on each side; then the candidates are
    the letters written ``(X)``; if none, the letters standing between two spaces; if none and the answer has more
    than 5 words, the options whose text occurs in it (case-insensitive). One candidate: it; several: the one whose
    last occurrence starts last (the first in letter order on a tie).
    """
    text = str(answer or "")
    for ch in ",.!?;:'":
        text = text.strip(ch)
    text = f" {text} "
    letters = list(options)
    patterns = [(x, f"({x})") for x in letters if f"({x})" in text]
    lowered = text
    if not patterns:
        patterns = [(x, f" {x} ") for x in letters if f" {x} " in text]
    if not patterns and len(text.split()) > 5:
        lowered = text.lower()
        patterns = [(x, str(t).lower()) for x, t in options.items() if str(t).lower() in lowered]
    if not patterns:
        return None
    best = max(range(len(patterns)), key=lambda i: (lowered.rfind(patterns[i][1]), -i))
    return patterns[best][0]


_OPTIONS_HEAD = re.compile(r"Options:\s*", re.IGNORECASE)


def options_from_question(question: str, n_options: int) -> list[str]:
    """The texts of options ``A`` .. listed inline after the last ``Options:`` of ``question``, as MMStar writes them
    (``Options: A: a cat, B: a dog, C: a bird``): each text runs to the next letter's ``, X:`` marker. ``[]`` when
    the question has no such list or its markers are not ``A:``, ``B:`` ... in order for all ``n_options``."""
    heads = list(_OPTIONS_HEAD.finditer(question))
    if not heads or n_options < 1:
        return []
    body = question[heads[-1].end() :]
    starts = []
    pos = 0
    for i in range(n_options):
        letter = chr(65 + i)
        marker = re.compile(r"(?:^|[,;\s])" + letter + r":\s*") if i else re.compile(r"^" + letter + r":\s*")
        m = marker.search(body, pos)
        if m is None:
            return []
        starts.append((m.start(), m.end()))
        pos = m.end()
    texts = []
    for i, (_, end) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(body)
        texts.append(body[end:stop].strip().rstrip(",;").strip())
    return texts
