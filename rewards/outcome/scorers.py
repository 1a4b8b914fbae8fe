"""The five rule-based outcome scorers of SophiaVL-R1, one per ``problem_type``.

Each scorer takes the already extracted answer text (the content of the response's first ``<answer>`` tag, ``$``
removed) and the cleaned ground truth, and returns a float in [0, 1]. An answer they cannot read scores 0 (a wrong
answer); an error inside a library they call is raised, and the scorer pool (:mod:`.bounded`) reports it as
``scorer_failed``. They bound no time themselves: the pool does.
"""

from __future__ import annotations

import math
import re
import threading
from functools import lru_cache

#: Longest answer handed to the symbolic checker; longer answers score 0 (guards sympy against pathological input).
MAX_NUMERIC_ANSWER_CHARS = 512


def _math_parse(text: str) -> list:
    from math_verify import parse

    parsed = parse(text, parsing_timeout=None, raise_on_error=True)
    if not parsed and "$" not in text:
        # bare LaTeX such as \sqrt{2} is only recognised inside math delimiters
        parsed = parse(f"${text}$", parsing_timeout=None, raise_on_error=True)
    return parsed


def numerical_score(answer: str, ground_truth: str) -> float:
    """1.0 when ``answer`` and ``ground_truth`` are the same number or expression, else 0.0.

    Uses math-verify (symbolic and numeric equivalence): ``42.0`` = ``42``, ``\\frac{1}{2}`` = ``0.5``, ``x=5`` = ``5``.
    Values are compared after rounding to 6 decimals, so ``3.14`` != ``3.14159``. An empty answer, an answer longer
    than :data:`MAX_NUMERIC_ANSWER_CHARS` or one in which math-verify finds no expression scores 0.0 (a wrong answer).
    An error inside math-verify or sympy is raised, not scored: the scorer pool reports it as ``scorer_failed``.
    No time bound of its own: math-verify's (SIGALRM) works only in a main thread, and inside the pool's helper it
    would race the pool's bound and turn a runaway answer into a plain 0; the pool (:mod:`.bounded`) bounds the time.
    """
    answer, ground_truth = answer.strip(), ground_truth.strip()
    if not answer or not ground_truth or len(answer) > MAX_NUMERIC_ANSWER_CHARS:
        return 0.0
    from math_verify import verify

    gold = _math_parse(ground_truth)
    pred = _math_parse(answer)
    if not gold or not pred:
        return 0.0
    return 1.0 if verify(gold, pred, timeout_seconds=None, raise_on_error=True) else 0.0


# one option: "B", "b", "B.", "B)", "B:", "B. 40", "B) 40", "(B)", "(B) 40"
_OPTION_WITH_TEXT = re.compile(r"^(?:\(([A-Za-z])\)(?:\s.*)?|([A-Za-z])(?:[.:)](?:\s.*)?)?)\s*$", re.DOTALL)
_LETTER_RUN = re.compile(r"^[A-Z]+$")
_SEPARATORS = re.compile(r"[,;/&]|\band\b", re.IGNORECASE)


def option_letters(text: str) -> frozenset[str] | None:
    """The set of option letters named by ``text`` (upper case), or ``None`` when ``text`` names no option.

    Accepted: ``B``, ``b``, ``(B)``, ``B.``, ``B)``, ``B. 40``, ``B) 40``, ``(B) 40``; several options separated by
    ``,``, ``;``, ``/``, ``&`` or ``and`` (``A, C``, ``A. cat, C. dog``), or written together in upper case (``AC``).
    A string that is one option followed by text that itself contains a separator (``B. 40, 50``) is that one option.
    Anything else (``the answer is B``, ``ac``) names no option: ``None``.
    """
    text = text.strip()
    if not text:
        return None
    letters: set[str] = set()
    for part in _SEPARATORS.split(text):
        part = part.strip()
        if not part:
            continue
        m = _OPTION_WITH_TEXT.match(part)
        if m:
            letters.add((m.group(1) or m.group(2)).upper())
        elif _LETTER_RUN.match(part) and len(set(part)) == len(part):
            letters.update(part)
        else:
            letters.clear()
            break
    if letters:
        return frozenset(letters)
    whole = _OPTION_WITH_TEXT.match(text)
    if whole:
        return frozenset((whole.group(1) or whole.group(2)).upper())
    return None


def multiple_choice_score(answer: str, ground_truth: str) -> float:
    """1.0 when the answer names exactly the ground truth's set of option letters (any order, any case), else 0.0.

    See :func:`option_letters` for the accepted forms. ``A, C`` matches ``CA``; ``A`` does not match ``A, C``.
    """
    pred, gold = option_letters(answer), option_letters(ground_truth)
    if pred is None or gold is None:
        return 0.0
    return 1.0 if pred == gold else 0.0


def ocr_score(answer: str, ground_truth: str) -> float:
    """``exp(-WER)`` of the answer against the ground truth (word error rate by jiwer), in (0, 1].

    WER 0 gives 1.0; one word wrong out of two gives WER 0.5 and ``exp(-0.5) = 0.6065``. An empty answer against a
    non-empty reference is WER 1 (all words deleted): ``exp(-1) = 0.3679``. An empty reference scores 1.0 for an empty
    answer and 0.0 otherwise (WER is undefined there).
    """
    import jiwer

    answer, ground_truth = answer.strip(), ground_truth.strip()
    if not ground_truth:
        return 1.0 if not answer else 0.0
    if not answer:
        return math.exp(-1.0)
    return math.exp(-jiwer.wer(reference=ground_truth, hypothesis=answer))


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


_ROUGE_LOCK = threading.Lock()


def rouge_score(answer: str, ground_truth: str) -> float:
    """Mean of the ROUGE-1, ROUGE-2 and ROUGE-L F-measures (rouge-score, Porter stemmer), in [0, 1].

    Newlines count as spaces. rouge-score's tokenizer keeps only ASCII letters and digits, so text in other scripts
    scores 0.0 (as in the released code).
    """
    answer = answer.replace("\n", " ").strip()
    ground_truth = ground_truth.replace("\n", " ").strip()
    if not answer or not ground_truth:
        return 0.0
    with _ROUGE_LOCK:  # the stemmer keeps a cache; keep calls from verl's worker threads apart
        scores = _rouge().score(ground_truth, answer)
    return (scores["rouge1"].fmeasure + scores["rouge2"].fmeasure + scores["rougeL"].fmeasure) / 3.0
