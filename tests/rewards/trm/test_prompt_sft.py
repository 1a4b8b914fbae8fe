"""One prompt for the TRM: the judge's request (``build_messages``) and the SFT rows (``sft_messages``) carry the
same system turn and the same user text for the same question, response and image; the SFT target is what the
judge's structured output allows and its parser reads."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from sophiavl.rewards.trm.inputs import question_text
from sophiavl.rewards.trm.parse import parse_score
from sophiavl.rewards.trm.prompt import (
    SCORE_REGEX,
    build_messages,
    format_score,
    load_template,
    score_answer,
    sft_messages,
    strip_placeholders,
)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 128, 255)).save(buf, "PNG")
    return buf.getvalue()


CASES = [
    ("What is 2+2?", "<think>2+2=4</think><answer>4</answer>"),
    ("<image>\nHow many circles are in the picture?", "<think>I see <image> three.</think><answer>3</answer>"),
    ("  <video><audio>Name the {response} colour. <image>", "  {question} <think>red</think>\n"),
]


@pytest.mark.parametrize("question,response", CASES)
@pytest.mark.parametrize("with_image", [True, False])
def test_sft_turns_equal_the_judge_request(question, response, with_image):
    template = load_template()
    judge = build_messages(template, question, response, _png() if with_image else None)
    sft = sft_messages(question, response, with_image, 0.7)
    assert [m["role"] for m in sft] == ["system", "user", "assistant"]
    assert sft[0] == judge[0] == {"role": "system", "content": "You are a helpful assistant."}
    parts = judge[1]["content"]
    assert [p["type"] for p in parts] == (["text", "image_url"] if with_image else ["text"])
    # the image token goes exactly where the judge's image part goes: right after the text, nothing in between
    assert sft[1]["content"] == parts[0]["text"] + ("<image>" if with_image else "")
    assert sft[1]["content"].count("<image>") == int(with_image)
    assert "<video>" not in sft[1]["content"] and "<audio>" not in sft[1]["content"]
    assert sft[2] == {"role": "assistant", "content": "<answer>0.7</answer>"}


def test_user_text_is_the_template_with_stripped_inputs():
    # hand-written expectation from rewards/trm/prompts/thinking_judge.txt's last lines
    sft = sft_messages("<image>Count the dots.", " <think>two <image>dots</think><answer>2</answer> ", True, 0.3)
    assert sft[1]["content"].endswith(
        "Question: Count the dots.\n\nResponse to grade: <think>two dots</think><answer>2</answer>\n<image>"
    )


def test_question_stripping_matches_the_reward_managers_question_text():
    """The RL path reads the question from a verl prompt with ``question_text``; the SFT path strips a raw
    question: for the same text both give the same string."""
    for raw in ("<image>\nWhat is shown?", "a<video>b<audio>c", "  <image><image>Two pictures: which is larger?  "):
        prompt = [{"role": "system", "content": "Think."}, {"role": "user", "content": raw}]
        assert question_text(prompt) == strip_placeholders(raw)
    assert strip_placeholders("<im<image>age>x") == "x"  # no placeholder can survive the removal


@pytest.mark.parametrize(
    "score,text",
    [(0, "0.0"), (0.0, "0.0"), (0.1, "0.1"), (0.7, "0.7"), (1, "1.0"), (0.1 + 0.2, "0.3"), (0.5000004, "0.5")],
)
def test_score_answer_matches_the_judges_regex_and_parser(score, text):
    answer = score_answer(score)
    assert answer == f"<answer>{text}</answer>" and format_score(score) == text
    assert re.fullmatch(SCORE_REGEX, answer)
    assert parse_score(answer) == float(text)


@pytest.mark.parametrize("score", [-0.1, 1.1, 0.25, 0.71, float("nan"), "0.7", None, True])
def test_off_grid_scores_are_refused(score):
    with pytest.raises(ValueError):
        format_score(score)
    with pytest.raises(ValueError):
        sft_messages("q", "r", False, score)
