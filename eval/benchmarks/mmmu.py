"""MMMU validation (``lmms-lab/MMMU``, all 30 subjects merged): 900 rows, about 94 % multiple choice.

Conversion: ``options`` is a string holding a Python list (parsed with ``ast.literal_eval``); ``<image k>``
references in the question and the options become ``<image>`` placeholders in order of first reference, with
``image_k`` as the image (a later reference to the same image reads ``[image k]``; images present but never
referenced go before the question). The subject is the middle of the id (``validation_Art_Theory_3`` ->
``Art_Theory``). Scoring, following the official MMMU rules:

* multiple choice: the option :func:`sophiavl.eval.option_rules.mmmu_choice` reads (the official
  ``parse_multi_choice_response`` order: ``(B)``, else `` B ``, else an option's text in an answer of more than 5
  words; the last mentioned wins) equals the gold letter; an answer where the official parser would pick a random
  letter is **undecided and wrong** (no random fallback);
* open: :func:`open_correct`, the official ``parse_open_response`` and ``eval_open``: the key parts of the answer
  and the numbers in them; numbers compare rounded to 2 decimals; a text gold counts when its lower-cased form
  (padded with a space when it is one character) is contained in a lower-cased candidate. A match is decided; a
  non-match is undecided (rules cannot rule out an equivalent answer; a model may decide it).

Aggregation: accuracy (%); per subject as ``subject/<name>``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from sophiavl.eval.benchmarks.base import (
    Aggregate,
    Benchmark,
    Rejected,
    ScoredRow,
    Verdict,
    category_accuracy,
    choice_verdict,
    image_bytes,
)
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.choices import LETTERS
from sophiavl.eval.numbers import to_float
from sophiavl.eval.option_rules import mmmu_choice
from sophiavl.eval.schema import EvalItem

N_IMAGE_COLUMNS = 7
_REF = re.compile(r"<image (\d+)>")
# words after which an open answer usually states its result (the official parser's indicators)
_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL = (":", ",", ".", "!", "?", ";", "'")
# the official number patterns: with thousands commas, scientific notation, plain
_WITH_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_PLAIN = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def _parse_options(raw: Any) -> list[str]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return []
    if isinstance(raw, list):
        return [str(o) for o in raw]
    try:
        value = ast.literal_eval(str(raw))
    except (ValueError, SyntaxError):
        raise Rejected("bad_options", f"options {str(raw)[:80]!r} is not a Python list") from None
    if not isinstance(value, list):
        raise Rejected("bad_options", f"options {str(raw)[:80]!r} is not a list")
    return [str(o) for o in value]


def place_images(row: Mapping[str, Any], texts: list[str]) -> tuple[list[str], list[bytes]]:
    """Replaces ``<image k>`` references in ``texts`` (question, then options) by ``<image>`` placeholders in order of
    first reference and returns the new texts and the images in that order; unreferenced images are prepended to the
    first text. Raises :class:`Rejected` (``image_missing``) for a reference to an empty image column."""
    order: list[int] = []

    def sub(m: re.Match) -> str:
        k = int(m.group(1))
        if k in order:
            return f"[image {k}]"
        if not 1 <= k <= N_IMAGE_COLUMNS or row.get(f"image_{k}") is None:
            raise Rejected("image_missing", f"<image {k}> is referenced but image_{k} is empty")
        order.append(k)
        return "<image>"

    out = [_REF.sub(sub, t) for t in texts]
    extra = [k for k in range(1, N_IMAGE_COLUMNS + 1) if row.get(f"image_{k}") is not None and k not in order]
    if extra:
        out[0] = "<image>" * len(extra) + "\n" + out[0]
    images = [image_bytes(row.get(f"image_{k}"), f"image_{k}") for k in extra + order]
    return out, images


def subject_of(row_id: str) -> str:
    """``validation_Art_Theory_3`` -> ``Art_Theory``; an id of another shape is its own subject."""
    parts = row_id.split("_")
    return "_".join(parts[1:-1]) if len(parts) >= 3 else row_id


def convert(row: Mapping[str, Any]) -> EvalItem:
    question = cell(row, "question", reject_empty="empty_question")
    answer = cell(row, "answer", reject_empty="missing_answer")
    options = _parse_options(row.get("options"))
    texts, images = place_images(row, [question, *options])
    question, options = texts[0], texts[1:]
    common = dict(
        id="",
        question=question,
        images=images,
        category=subject_of(cell(row, "id")),
        subcategory=cell(row, "subfield") or None,
    )
    qtype = cell(row, "question_type")
    if qtype == "multiple-choice":
        if not options or len(options) > len(LETTERS):
            raise Rejected("bad_options", f"{len(options)} options")
        if len(answer) != 1 or answer not in LETTERS[: len(options)]:
            raise Rejected("answer_not_an_option", f"answer {answer!r} for {len(options)} options")
        return EvalItem(ground_truth=answer, problem_type="multiple choice", options=options, **common)
    if qtype != "open":
        raise Rejected("unknown_question_type", f"question_type={qtype!r}")
    answers = [answer]
    if answer.startswith("["):
        try:
            value = ast.literal_eval(answer)
            if isinstance(value, list) and value:
                answers = [str(v) for v in value]
        except (ValueError, SyntaxError):
            pass
    kind = "number" if all(to_float(a) is not None for a in answers) else "text"
    return EvalItem(ground_truth=answers[0], problem_type="short answer", answers=answers, answer_type=kind, **common)


def key_parts(response: str) -> list[str]:
    """The parts of an open answer that state its result, as the official parser finds them: the answer is stripped,
    stripped of ``.`` at both ends and lower-cased, then split into sentences at ``. `` before a capital letter or at
    newlines (after lower-casing only newlines split, as in the official code); per sentence the shortest tail after
    an indicator (``could be``, ``so``, ``is``, ``thus``, ``therefore``, ``final``, ``answer``, ``result``; for the
    last sentence also ``=``), unless it is empty or one punctuation mark; the whole lower-cased answer when no
    sentence has one."""
    text = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", text)
    parts = []
    for i, sentence in enumerate(sentences):
        indicators = _INDICATORS + (("=",) if i == len(sentences) - 1 else ())
        shortest = None
        for word in indicators:
            if word in sentence:
                tail = sentence.split(word)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL:
            parts.append(shortest)
    return parts or [text]


def numbers_of(text: str) -> list[str]:
    """The official ``extract_numbers``: numbers with thousands commas, then in scientific notation, then plain ones,
    as written, each pattern on the whole text (``"1,000 and 2.5e3 or 7"`` -> ``["1,000", "2.5e3", "000", "2", "3",
    "7"]``: the plain pattern also reads parts of the others, as the official code does)."""
    return _WITH_COMMAS.findall(text) + _SCIENTIFIC.findall(text) + _PLAIN.findall(text)


def normalise(text: str) -> list[float | str]:
    """The official ``normalize_str``: a number (``float`` accepts it once commas are removed) becomes itself rounded
    to 2 decimals; any other text its lower-cased form, and a one-character text ``[" x", "x "]`` (so that a lone
    letter only matches a word)."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        pass
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def open_candidates(response: str) -> list[float | str]:
    """The official ``parse_open_response``: the key parts (:func:`key_parts`) and the numbers in them, each
    normalised (:func:`normalise`), without duplicates."""
    parts = key_parts(response)
    raw = parts + [n for p in parts for n in numbers_of(p)]
    out: list[float | str] = []
    for item in raw:
        for value in normalise(item):
            if value not in out:
                out.append(value)
    return out


def open_correct(answer: str, golds: list[str]) -> bool:
    """The official ``eval_open``: right when a text candidate of ``answer`` (:func:`open_candidates`) contains a
    normalised text gold, or a number candidate equals a normalised number gold."""
    norm_golds = [g for gold in golds for g in normalise(gold)]
    for pred in open_candidates(answer):
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in norm_golds):
                return True
        elif pred in [g for g in norm_golds if isinstance(g, float)]:
            return True
    return False


def option_map(extra: Mapping[str, Any]) -> dict[str, str]:
    """Letter -> option text of a prepared multiple-choice row."""
    texts = list(extra.get("options") or [])
    return {LETTERS[i]: (str(texts[i]) if i < len(texts) else "") for i in range(int(extra["n_options"]))}


def verdict(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> Verdict:
    """The official rules' verdict (module docstring)."""
    if extra.get("problem_type") == "multiple choice":
        return choice_verdict(mmmu_choice(answer, option_map(extra)), [ground_truth])
    right = open_correct(answer, list(extra.get("answers") or [ground_truth]))
    return Verdict(right, " | ".join(key_parts(answer)) or None, right)


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    return float(verdict(answer, ground_truth, extra).correct)


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    return category_accuracy(rows, "subject")


BENCHMARK = Benchmark(
    name="mmmu",
    config=None,
    split="validation",
    id_column="id",
    convert=convert,
    verdict=verdict,
    aggregate=aggregate,
    how="accuracy (%) over validation; option letters (no random fallback), open answers by MMMU's normalisation",
)
