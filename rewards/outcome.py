"""The outcome reward ``Ro``: format gate, answer extraction and routing by ``problem_type``.

``compute_score`` has verl's custom-reward-function signature, so the recipe can point
``reward.custom_reward_function.path`` at ``pkg://sophiavl.rewards.outcome`` (verl needs that key set, or it bypasses
the reward manager when it serves the reward model itself); the reward manager calls it for every sample.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sophiavl.rewards.outcome_scorers import (
    multiple_choice_score,
    numerical_score,
    ocr_score,
    rouge_score,
)

#: ``problem_type`` values (after :func:`normalise_problem_type`) and their scorers.
SCORERS: dict[str, Callable[[str, str], float]] = {
    "numerical": numerical_score,
    "multiple choice": multiple_choice_score,
    "ocr": ocr_score,
    "free-form": rouge_score,
    "text": rouge_score,
}

#: An outcome at or above this counts as a correct answer in the ``acc`` metric (the paper's threshold).
ACC_THRESHOLD = 0.5

# whole response: optional leading whitespace, <think>...</think>, anything, <answer>...</answer>, anything
_FORMAT = re.compile(r"\s*<think>.*?</think>.*?<answer>.*?</answer>.*", re.DOTALL)
_FIRST_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_WRAPPED = re.compile(r"^\s*<answer>(.*?)</answer>\s*$", re.DOTALL)


def format_ok(response: str) -> bool:
    """True when ``response`` is ``<think>...</think>`` followed by ``<answer>...</answer>``.

    Leading whitespace is allowed, and so is any text between ``</think>`` and ``<answer>`` and after ``</answer>``;
    text before ``<think>`` (``Sure <think>...``) or a missing closing tag fails.
    """
    return _FORMAT.fullmatch(response) is not None


def extract_answer(response: str) -> str | None:
    """The content of the first ``<answer>...</answer>`` with ``$`` removed, or ``None`` when the format gate fails."""
    if not format_ok(response):
        return None
    m = _FIRST_ANSWER.search(response)
    return m.group(1).replace("$", "") if m else None


def clean_ground_truth(ground_truth: Any) -> str:
    """The ground truth as text: ``<answer>...</answer>`` unwrapped, ``$`` removed. ``None`` raises ``ValueError``."""
    if ground_truth is None:
        raise ValueError("ground truth is missing (reward_model.ground_truth is None)")
    text = str(ground_truth)
    m = _WRAPPED.match(text)
    if m:
        text = m.group(1)
    return text.replace("$", "")


def normalise_problem_type(problem_type: Any) -> str:
    """Lower case, ``_`` as space, surrounding space removed: ``"Multiple_Choice"`` -> ``"multiple choice"``.

    Raises ``ValueError`` naming the value when it is not one of :data:`SCORERS` (no silent fallback).
    """
    key = str(problem_type).strip().lower().replace("_", " ")
    if key == "free form":
        key = "free-form"
    if key not in SCORERS:
        raise ValueError(
            f"unknown problem_type {problem_type!r}: expected one of "
            "'numerical', 'multiple choice', 'OCR', 'free-form', 'text'"
        )
    return key


def outcome_score(response: str, ground_truth: str, problem_type: str) -> float:
    """The outcome reward ``Ro`` in [0, 1] of one response.

    0.0 when the format gate fails; otherwise the ``problem_type`` scorer applied to the first ``<answer>`` content and
    the cleaned ground truth. Unknown ``problem_type``: ``ValueError``.
    """
    scorer = SCORERS[normalise_problem_type(problem_type)]
    answer = extract_answer(response)
    if answer is None:
        return 0.0
    return float(min(1.0, max(0.0, scorer(answer, clean_ground_truth(ground_truth)))))


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl custom reward function: routes by ``extra_info["problem_type"]``.

    Returns ``{"score": Ro, "acc": 1.0 if Ro >= 0.5 else 0.0, "format_ok": 1.0 or 0.0}``. ``data_source`` and extra
    keyword arguments (verl passes ``reward_router_address`` and friends) are ignored. A missing ``problem_type``
    raises ``ValueError``.
    """
    problem_type = (extra_info or {}).get("problem_type")
    if problem_type is None:
        raise ValueError(f"extra_info has no 'problem_type' (data_source={data_source!r}); cannot pick a scorer")
    score = outcome_score(solution_str, ground_truth, problem_type)
    return {
        "score": score,
        "acc": 1.0 if score >= ACC_THRESHOLD else 0.0,
        "format_ok": 1.0 if format_ok(solution_str) else 0.0,
    }
