"""The chat prompt for one problem: a system message with the output format, and a user message with one
``<image>`` placeholder per image, the question, the options (multiple choice) and the expected answer form.

The wording is this project's own; it follows the structure of SophiaVL-R1's prompts (think in ``<think>``,
answer in ``<answer>``, a type-specific hint on the answer's form).
"""

from __future__ import annotations

import re

SYSTEM_PROMPT = (
    "You are a careful assistant that solves problems about images and text. Work the problem out first, "
    "as an inner monologue, then state the result. Write the reasoning between <think> and </think> and the "
    "final answer between <answer> and </answer>, for example: <think> the reasoning </think><answer> the final "
    "answer </answer>. Use LaTeX for formulas."
)

THINK_HINT = (
    "Reason inside <think> </think> as you would on scratch paper: look at the details, try an approach, check "
    "it, and correct yourself when something does not add up. Then give only the final answer inside "
    "<answer> </answer>."
)

# problem_type -> what the final answer should look like
ANSWER_FORMS = {
    "multiple choice": "The answer is the letter of the correct option alone, for example B.",
    "numerical": "The answer is a single number, for example 42 or 3.14, without units.",
    "OCR": "The answer is the requested text, transcribed exactly as it appears.",
    "free-form": "The answer is a short phrase or sentence.",
    "text": "The answer is a short piece of text.",
}

PROBLEM_TYPES = frozenset(ANSWER_FORMS)

# verl's RLHFDataset splits the user content on these literals and expects one media item per occurrence
_MEDIA_TOKENS = re.compile(r"<image>|<video>|<audio>")


def strip_media_tokens(text: str) -> str:
    """Removes literal ``<image>``, ``<video>`` and ``<audio>`` tokens and the blank space they leave at the
    ends. Placeholders are placed by :func:`build_user_content` only, so that their count equals the images'."""
    return _MEDIA_TOKENS.sub("", text).strip()


def format_options(options: list[str]) -> str:
    """One option per line, as given (``A. 20``...). An empty list gives an empty string."""
    return "\n".join(strip_media_tokens(o) for o in options)


def build_user_content(question: str, problem_type: str, options: list[str], n_images: int) -> str:
    """The user message text.

    Layout: ``n_images`` ``<image>`` placeholders (then a newline, if any), the question, ``Options:`` and one
    option per line (only for multiple choice with options), then :data:`THINK_HINT` and the answer form for
    ``problem_type``, separated by blank lines.

    Args:
        question: the problem text; literal media tokens in it are removed.
        problem_type: one of :data:`PROBLEM_TYPES`.
        options: the options (used for ``multiple choice`` only).
        n_images: number of images of the row, >= 0.

    Raises:
        KeyError: for an unknown ``problem_type``.
    """
    form = ANSWER_FORMS[problem_type]
    parts = [strip_media_tokens(question)]
    if problem_type == "multiple choice" and options:
        parts.append("Options:\n" + format_options(options))
    body = "\n".join(parts) + "\n\n" + THINK_HINT + "\n" + form
    return "<image>" * n_images + ("\n" if n_images else "") + body


def build_prompt(question: str, problem_type: str, options: list[str], n_images: int) -> list[dict[str, str]]:
    """The chat list verl's RLHFDataset reads: ``[{"role": "system", ...}, {"role": "user", ...}]``."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": build_user_content(question, problem_type, options, n_images)},
    ]
