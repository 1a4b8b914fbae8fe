"""The outcome reward ``Ro``: format gate, answer extraction and routing by ``problem_type``.

``compute_score`` has verl's custom-reward-function signature, so the recipe can point
``reward.custom_reward_function.path`` at ``pkg://sophiavl.rewards.outcome`` (verl needs that key set, or it bypasses
the reward manager when it serves the reward model itself); the reward manager calls it for every sample.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from sophiavl.rewards.outcome.bounded import DEFAULT_PROCESSES, DEFAULT_TIMEOUT_S, BoundedScore, shared_pool
from sophiavl.rewards.outcome.scorers import (
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

logger = logging.getLogger(__name__)


def warm_up() -> None:
    """Calls every scorer once, so that math-verify, jiwer and rouge-score are imported (the scorer helper process
    runs this before it accepts work, so the imports never count against a scoring's time bound)."""
    for scorer in SCORERS.values():
        scorer("1", "1")


#: Longest answer quoted in the warning about a failed scoring.
EXAMPLE_CHARS = 200

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


def bounded_outcome_score(
    response: str,
    ground_truth: Any,
    problem_type: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    processes: int = DEFAULT_PROCESSES,
) -> BoundedScore:
    """:func:`outcome_score` with a wall-clock bound of ``timeout_s`` seconds on the scorer, in any thread.

    The format gate, the answer extraction and the checks of ``problem_type`` and ``ground_truth`` run here (a bad
    ``problem_type`` or a missing ground truth raises ``ValueError`` as in :func:`outcome_score`); the scorer runs in
    one of ``processes`` helper processes (:mod:`sophiavl.rewards.outcome.bounded`). A scorer that times out, raises or
    dies gives ``BoundedScore(0.0, failed=True, reason=...)``. A response that fails the format gate scores 0 without a
    scorer call (not a failure).
    """
    kind = normalise_problem_type(problem_type)
    truth = clean_ground_truth(ground_truth)
    answer = extract_answer(response)
    if answer is None:
        return BoundedScore(0.0, False)
    result = shared_pool(int(processes)).score(kind, answer, truth, float(timeout_s))
    return BoundedScore(float(min(1.0, max(0.0, result.score))), result.failed, result.reason)


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    scorer_timeout_s: float = DEFAULT_TIMEOUT_S,
    scorer_processes: int = DEFAULT_PROCESSES,
    **kwargs: Any,
) -> dict[str, float]:
    """verl custom reward function: routes by ``extra_info["problem_type"]``, scorer bounded in wall-clock time.

    Returns ``{"score": Ro, "acc": 1.0 if Ro >= 0.5 else 0.0, "format_ok": 1.0 or 0.0, "scorer_failed": 1.0 or 0.0}``.
    ``scorer_failed`` is 1.0 when the scorer timed out after ``scorer_timeout_s`` seconds, raised, or its helper
    process died; ``score`` is then 0.0 and a warning names the data source, the problem type, the answer (cut to
    :data:`EXAMPLE_CHARS` characters) and the reason. ``scorer_timeout_s`` and ``scorer_processes`` come from the
    recipe's ``reward.custom_reward_function.reward_kwargs`` (verl passes them as keyword arguments). Other extra
    keyword arguments (verl passes ``reward_router_address`` and friends) are ignored. A missing or unknown
    ``problem_type`` or a missing ground truth raises ``ValueError`` (a data error, never a silent zero).
    """
    problem_type = (extra_info or {}).get("problem_type")
    if problem_type is None:
        raise ValueError(f"extra_info has no 'problem_type' (data_source={data_source!r}); cannot pick a scorer")
    result = bounded_outcome_score(solution_str, ground_truth, problem_type, scorer_timeout_s, scorer_processes)
    if result.failed:
        answer = extract_answer(solution_str) or ""
        cut = answer if len(answer) <= EXAMPLE_CHARS else answer[:EXAMPLE_CHARS] + "..."
        logger.warning(
            "outcome scorer failed, scored 0: %s (data_source=%r, problem_type=%r, answer=%r, ground_truth=%r)",
            result.reason,
            data_source,
            problem_type,
            cut,
            str(ground_truth)[:EXAMPLE_CHARS],
        )
    return {
        "score": result.score,
        "acc": 1.0 if result.score >= ACC_THRESHOLD else 0.0,
        "format_ok": 1.0 if format_ok(solution_str) else 0.0,
        "scorer_failed": 1.0 if result.failed else 0.0,
    }
