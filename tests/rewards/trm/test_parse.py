"""parse_score, the prompt template and the image encoding of the judge."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from sophiavl.rewards.trm.client import chat_completions_url, parse_retry_after
from sophiavl.rewards.trm.parse import parse_score
from sophiavl.rewards.trm.prompt import SCORE_REGEX, build_messages, load_template, sniff_image_mime


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>0.7</answer>", 0.7),
        ("<answer> 1.0 </answer>", 1.0),
        ("<ANSWER>0</ANSWER>", 0.0),
        ("first <answer>0.2</answer> then <answer>0.9</answer>", 0.9),  # last tag wins
        ("<answer>0.75</answer>", 0.75),  # two decimals kept
        ("<answer>75%</answer>", 0.75),  # percent
        ("\\boxed{0.3}", 0.3),
        ("steps 1 and 2 ... \\boxed{0.4}", 0.4),
        ("0.6", 0.6),
        ("Score: 0.8.", 0.8),
        ("</think> 0.65", 0.65),
        ("7", 1.0),  # clamped
        ("<answer>-0.2</answer>", 0.0),  # clamped
        ("<answer>1.5</answer>", 1.0),
        ("<answer>none</answer> 0.4", 0.4),  # unreadable tag: fall back to the lone number
    ],
)
def test_parse_score(text, expected):
    assert parse_score(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [None, "", "no score here", "0.5 or 0.9", "<answer>0.5 or 0.9</answer>", "1.2.3", "step 1: 0.5, step 2: 0.9"],
)
def test_parse_score_none(text):
    assert parse_score(text) is None


def test_parse_score_reads_the_tail_of_huge_replies():
    assert parse_score("word " * 200_000 + "<answer>0.3</answer>") == pytest.approx(0.3)
    assert parse_score("0.1 " + "x" * 100_000) is None  # the early number is beyond the parsed tail


def test_score_regex_accepts_the_grid_only():
    import re

    grid = [f"<answer>{v}</answer>" for v in ("0", "0.0", "0.1", "0.5", "0.9", "1", "1.0")]
    assert all(re.fullmatch(SCORE_REGEX, g) for g in grid)
    assert not any(re.fullmatch(SCORE_REGEX, g) for g in ("<answer>1.5</answer>", "<answer>0.75</answer>", "0.5"))


@pytest.mark.parametrize(
    "base, url",
    [
        ("http://h:8000/v1", "http://h:8000/v1/chat/completions"),
        ("http://h:8000/v1/", "http://h:8000/v1/chat/completions"),
        ("http://h:8000", "http://h:8000/v1/chat/completions"),
        ("http://h:8000/v1/chat/completions", "http://h:8000/v1/chat/completions"),
        ("10.0.0.1:30000", "http://10.0.0.1:30000/v1/chat/completions"),
    ],
)
def test_chat_completions_url(base, url):
    assert chat_completions_url(base) == url


def test_retry_after():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait


def _png(color=(255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def test_mime_sniffing():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="JPEG")
    assert sniff_image_mime(buf.getvalue()) == "image/jpeg"
    assert sniff_image_mime(_png()) == "image/png"
    with pytest.raises(ValueError, match="not a recognised image"):
        sniff_image_mime(b"garbage")


def test_messages_layout():
    template = load_template()
    png = _png()
    messages = build_messages(template, "What is 2+2?", "<think>2+2=4</think><answer>4</answer>", png)
    assert [m["role"] for m in messages] == ["system", "user"]
    text, image = messages[1]["content"]
    assert text["type"] == "text" and "What is 2+2?" in text["text"] and "2+2=4" in text["text"]
    assert text["text"].index("What is 2+2?") < text["text"].index("2+2=4")
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert len(build_messages(template, "q", "r", None)[1]["content"]) == 1


def test_template_placeholders_are_filled_once(tmp_path):
    template = load_template()
    text = template.render("about {response}", "uses {question}")
    assert "about {response}" in text and "uses {question}" in text
    custom = tmp_path / "t.txt"
    custom.write_text("Be brief.\n---\nQ={question} R={response}\n")
    t = load_template(str(custom))
    assert t.system == "Be brief." and t.render("a", "b") == "Q=a R=b\n"
    bad = tmp_path / "bad.txt"
    bad.write_text("no placeholders")
    with pytest.raises(ValueError, match="question"):
        load_template(str(bad))
