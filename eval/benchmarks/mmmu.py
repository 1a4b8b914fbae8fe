"""MMMU validation (``lmms-lab/MMMU``, all 30 subjects merged): 900 rows, about 94 % multiple choice.

Conversion: ``options`` is a string holding a Python list (parsed with ``ast.literal_eval``); ``<image k>``
references in the question and the options become ``<image>`` placeholders in order of first reference, with
``image_k`` as the image (a later reference to the same image reads ``[image k]``; images present but never
referenced go before the question). The subject is the middle of the id (``validation_Art_Theory_3`` ->
``Art_Theory``). Scoring, following the official MMMU rules:

* multiple choice: the option letter the answer names equals the gold letter; an answer that names no option is
  **wrong** (the official parser's random fallback is not used);
* open: :func:`open_correct`, the official number/string normalisation: numbers compare rounded to 2 decimals; a
  text gold counts when its lower-cased form is contained in a candidate answer.

Aggregation: accuracy (%); per subject as ``subject/<name>``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from sophiavl.eval.benchmarks.base import Aggregate, Benchmark, Rejected, ScoredRow, category_accuracy, image_bytes
from sophiavl.eval.benchmarks.base import text as cell
from sophiavl.eval.choices import LETTERS, pick_option
from sophiavl.eval.numbers import numbers_in, to_float
from sophiavl.eval.schema import EvalItem

N_IMAGE_COLUMNS = 7
_REF = re.compile(r"<image (\d+)>")
# words after which an open answer usually states its result (the official parser's indicators)
_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")


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
    """The parts of a longer answer that state its result: per sentence (split at ``.`` before a capital letter and at
    newlines), the text after the last indicator word (``so``, ``is``, ``therefore``, ``answer`` ...; for the last
    sentence also ``=``); the whole answer when no sentence has one."""
    sentences = [s.strip() for s in re.split(r"\.\s(?=[A-Z])|\n", response.strip().strip(".")) if s.strip()]
    parts = []
    for i, sentence in enumerate(sentences):
        indicators = _INDICATORS + (("=",) if i == len(sentences) - 1 else ())
        best = None
        for word in indicators:
            pos = sentence.lower().rfind(word)
            if pos != -1 and (best is None or pos + len(word) > best):
                best = pos + len(word)
        if best is not None and sentence[best:].strip(" :.,"):
            parts.append(sentence[best:].strip(" :.,"))
    return parts or [response.strip()]


def open_correct(answer: str, golds: list[str]) -> bool:
    """MMMU's open-question rule: candidates are the key parts of ``answer`` (:func:`key_parts`) and every number in
    them; a numeric gold is right when a candidate number equals it after rounding both to 2 decimals, a text gold
    when its lower-cased, stripped form is contained in a lower-cased text candidate."""
    parts = key_parts(answer)
    numbers = {round(x, 2) for p in parts for x in numbers_in(p)}
    texts = [p.lower() for p in parts]
    for gold in golds:
        value = to_float(gold)
        if value is not None:
            if round(value, 2) in numbers:
                return True
        elif gold.strip().lower() and any(gold.strip().lower() in t for t in texts):
            return True
    return False


def score(answer: str, ground_truth: str, extra: Mapping[str, Any]) -> float:
    if extra.get("problem_type") == "multiple choice":
        return float(pick_option(answer, int(extra["n_options"]), list(extra.get("options") or [])) == ground_truth)
    return float(open_correct(answer, list(extra.get("answers") or [ground_truth])))


def aggregate(rows: list[ScoredRow]) -> Aggregate:
    return category_accuracy(rows, "subject")


BENCHMARK = Benchmark(
    name="mmmu",
    hub_id="lmms-lab/MMMU",
    config=None,
    split="validation",
    id_column="id",
    convert=convert,
    score=score,
    aggregate=aggregate,
    how="accuracy (%) over validation; option letters (no random fallback), open answers by MMMU's normalisation",
)
