"""The prepared row: verl's RLHF parquet layout with one schema for every benchmark.

verl's ``RLHFDataset`` joins all ``data.val_files`` with ``datasets.concatenate_datasets``, which needs identical
columns and identical ``extra_info`` struct fields, so every benchmark writes this same schema and leaves the fields
it does not use null (lists empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from sophiavl.data_prep.prompts import ANSWER_FORMS, SYSTEM_PROMPT, THINK_HINT, strip_media_tokens

#: The paper's evaluation image range (VLMEvalKit ``Qwen2VLChat(min_pixels=1280*28*28, max_pixels=16384*28*28)``).
PAPER_MIN_PIXELS = 1280 * 28 * 28
PAPER_MAX_PIXELS = 16384 * 28 * 28

#: ``extra_info.problem_type`` -> the answer form the prompt asks for.
EVAL_ANSWER_FORMS = {
    "multiple choice": ANSWER_FORMS["multiple choice"],
    "numerical": ANSWER_FORMS["numerical"],
    "expression": "The answer is a single number or mathematical expression, in LaTeX if needed.",
    "short answer": "The answer is a single word, number or short phrase.",
    "yes/no": "The answer is Yes or No.",
}

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
_IMAGE = pa.struct([("bytes", pa.binary()), ("min_pixels", pa.int64()), ("max_pixels", pa.int64())])
_REWARD = pa.struct([("style", pa.string()), ("ground_truth", pa.string())])
EXTRA_FIELDS = [
    ("benchmark", pa.string()),  # the benchmark's name (also data_source)
    ("id", pa.string()),  # the benchmark's own id, or the row's position in the split
    ("index", pa.int64()),  # position of the row in the prepared file
    ("split", pa.string()),
    ("problem_type", pa.string()),  # a key of EVAL_ANSWER_FORMS
    ("answer_type", pa.string()),  # MathVista integer/float/text/list; MMMU open text/number/list
    ("precision", pa.float64()),  # MathVista: decimals a float answer is rounded to
    ("unit", pa.string()),
    ("options", pa.list_(pa.string())),  # option texts in letter order (empty where they sit in the question)
    ("n_options", pa.int64()),
    ("answers", pa.list_(pa.string())),  # every accepted gold answer (ChartQA labels, MMMU open lists)
    ("group", pa.string()),  # MMBench circular group, MME image, MathVerse problem
    ("version", pa.string()),  # MathVerse problem_version
    ("category", pa.string()),  # for sub-scores: MME/MMBench/MMStar category, MMMU subject, MathVista task
    ("subcategory", pa.string()),  # MMBench/MMStar l2 category, MMMU subfield, MathVista skills joined by "|"
    ("question", pa.string()),
    ("judge_question", pa.string()),  # the question an extraction model sees (MathVerse: question_for_eval)
]
_EXTRA = pa.struct(EXTRA_FIELDS)

SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(_MESSAGE)),
        ("images", pa.list_(_IMAGE)),
        ("ability", pa.string()),
        ("reward_model", _REWARD),
        ("extra_info", _EXTRA),
    ]
)


@dataclass
class EvalItem:
    """One converted benchmark row, before it becomes a parquet row.

    ``question`` may hold ``<image>`` placeholders where images are referenced inline (MMMU); otherwise all images
    are placed before it. The number of placeholders must then equal ``len(images)``. ``options`` are shown under
    ``Options:`` when ``show_options`` is true.
    """

    id: str
    question: str
    ground_truth: str
    problem_type: str
    images: list[bytes]
    options: list[str] = field(default_factory=list)
    show_options: bool = True
    n_options: int | None = None
    answer_type: str | None = None
    precision: float | None = None
    unit: str | None = None
    answers: list[str] = field(default_factory=list)
    group: str | None = None
    version: str | None = None
    category: str | None = None
    subcategory: str | None = None
    judge_question: str | None = None


def user_content(item: EvalItem) -> str:
    """The user message: the images (one ``<image>`` each) then the question, unless the question or the shown
    options place them inline (MMMU's ``<image k>`` references); then ``Options:`` with ``A. text`` lines (multiple
    choice with ``show_options``), the training prompt's think hint and the answer form for ``item.problem_type``.

    Raises ``ValueError`` when inline placeholders do not number exactly ``len(item.images)``.
    """
    form = EVAL_ANSWER_FORMS[item.problem_type]
    shown = item.options if item.problem_type == "multiple choice" and item.show_options else []
    inline = item.question.count("<image>") + sum(o.count("<image>") for o in shown)
    if inline:
        if inline != len(item.images):
            raise ValueError(f"row {item.id}: {inline} <image> placeholders for {len(item.images)} images")
        text = item.question.strip()
        options = [o.strip() for o in shown]
    else:
        text = "<image>" * len(item.images) + ("\n" if item.images else "") + strip_media_tokens(item.question)
        options = [strip_media_tokens(o) for o in shown]
    if options:
        text += "\nOptions:\n" + "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(options))
    return text + "\n\n" + THINK_HINT + "\n" + form


def make_row(item: EvalItem, benchmark: str, split: str, index: int, min_pixels: int, max_pixels: int) -> dict:
    """The parquet row of ``item``: ``data_source`` = ``benchmark``, the training system prompt, images as
    original bytes with the per-image pixel range (honoured by verl through ``qwen_vl_utils.fetch_image``)."""
    n_options = item.n_options if item.n_options is not None else len(item.options)
    return {
        "data_source": benchmark,
        "prompt": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_content(item)},
        ],
        "images": [{"bytes": b, "min_pixels": min_pixels, "max_pixels": max_pixels} for b in item.images],
        "ability": item.problem_type,
        "reward_model": {"style": "rule", "ground_truth": item.ground_truth},
        "extra_info": {
            "benchmark": benchmark,
            "id": item.id,
            "index": index,
            "split": split,
            "problem_type": item.problem_type,
            "answer_type": item.answer_type,
            "precision": item.precision,
            "unit": item.unit,
            "options": list(item.options),
            "n_options": n_options,
            "answers": list(item.answers) or [item.ground_truth],
            "group": item.group,
            "version": item.version,
            "category": item.category,
            "subcategory": item.subcategory,
            "question": item.question,
            "judge_question": item.judge_question,
        },
    }
