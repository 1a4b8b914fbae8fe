"""The filter rules of ``balance``: their names, the order they apply in, and the checks on one row.

A *row* is one collected response (one ``rid``), with every annotation line that labels it (one per judge, or per
annotation folder). Rules apply in :data:`RULES` order and the first that fails is the one counted; a row that passes
them all is *eligible* for sampling. Lines that do not parse are counted before rows are formed
(:data:`LINE_REASONS`, see :mod:`~sophiavl.data_prep.trm_build.staging`).

The label of a row is the mean of all its scored samples (every line, every sample), snapped to the grid with halves
rounded up: 0.6 and 0.7 give 0.7 (0.65 rounds up), 0.2, 0.3 and 0.3 give 0.3 (0.2667 rounds to 0.3).
"""

from __future__ import annotations

from sophiavl.rewards.outcome.score import format_ok
from sophiavl.rewards.trm.prompt import strip_placeholders

#: Why an annotation line is skipped before grouping, in the order the checks run.
LINE_REASONS = ("torn_line", "bad_json", "score_off_grid", "bad_annotation")

#: The row rules, in the order they apply (the first failing one is counted).
RULES = (
    "conflicting_rollout",  # the lines of one rid carry different rollout records
    "failed_annotation",  # every line has a row_error, or no sample of any line was scored
    "disagreement",  # two or more scores, max - min > --agree-tol
    "bad_format",  # the project's format gate (<think>...</think>...<answer>...</answer>) fails
    "empty_thinking",  # the <think> block is blank
    "empty_question",  # the question is blank once media placeholders are removed
    "too_long",  # the response has more than --max-response-chars characters
    "too_many_images",  # more than one image (the Thinking-156k layout holds at most one per row)
    "image_missing",  # an image named by the line is not in the annotation folder's images/
    "duplicate",  # the same question, images and response as an earlier eligible row (rid order)
)

#: The rules that depend only on the rollout and its images (checked per line, see :func:`rollout_problem`).
ROLLOUT_RULES = RULES[3:9]


def thinking_text(response: str) -> str:
    """The text inside the first ``<think>...</think>`` of a response that passes the format gate (stripped)."""
    start = response.index("<think>") + len("<think>")
    return response[start : response.index("</think>", start)].strip()


def rollout_problem(
    question: str, response: str, n_images: int, missing_images: list[str], max_chars: int
) -> tuple[str, str] | None:
    """The first of :data:`ROLLOUT_RULES` the rollout fails, as ``(rule, detail)``, or ``None``.

    Args:
        question, response: the rollout's texts.
        n_images: how many images the line names.
        missing_images: the named images that are not in the annotation folder.
        max_chars: the longest response kept, in characters (Python ``len``); 0 means no limit.
    """
    if not format_ok(response):
        return "bad_format", f"response starts {response[:80]!r}"
    if not thinking_text(response):
        return "empty_thinking", f"response starts {response[:80]!r}"
    if not strip_placeholders(question):
        return "empty_question", f"question {question[:80]!r}"
    if max_chars and len(response) > max_chars:
        return "too_long", f"{len(response)} characters > {max_chars}"
    if n_images > 1:
        return "too_many_images", f"{n_images} images"
    if missing_images:
        return "image_missing", f"images/{missing_images[0]} not found"
    return None


def snapped_mean(tenths: list[int]) -> int:
    """The mean of scores given in tenths (0..10), snapped to the nearest tenth, halves up; exact integer
    arithmetic. ``[6, 7]`` -> 7, ``[2, 3, 3]`` -> 3, ``[0, 1]`` -> 1. Raises ``ValueError`` on an empty list."""
    if not tenths:
        raise ValueError("no scores")
    n = len(tenths)
    return (2 * sum(tenths) + n) // (2 * n)


def disagrees(tenths: list[int], tol: float) -> bool:
    """True when two or more scores (in tenths) spread by more than ``tol`` (in score units, e.g. 0.2):
    ``max - min > tol``, compared in tenths with a 1e-9 margin so 0.2 = 0.3 - 0.1 is within 0.2."""
    return len(tenths) > 1 and (max(tenths) - min(tenths)) / 10 > tol + 1e-9
