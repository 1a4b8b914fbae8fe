"""Outcome reward: format gate, the five scorers, routing. Numbers computed by hand."""

from __future__ import annotations

import math
import threading

import pytest

from sophiavl.rewards.outcome.score import clean_ground_truth, compute_score, extract_answer, format_ok, outcome_score
from sophiavl.rewards.outcome.scorers import option_letters


def wrap(answer: str, think: str = "reasoning") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


# ------------------------------------------------------------------ format gate


@pytest.mark.parametrize(
    "response, ok",
    [
        ("<think>a</think><answer>b</answer>", True),
        ("  \n<think>a</think><answer>b</answer>", True),
        ("<think>a</think> so: <answer>b</answer> done", True),
        ("<think>multi\nline</think>\n<answer>\nb\n</answer>\n", True),
        ("Sure <think>a</think><answer>b</answer>", False),
        ("<think>a</think>", False),
        ("<answer>b</answer>", False),
        ("<think>a<answer>b</answer>", False),
        ("<answer>b</answer><think>a</think>", False),
        ("<think>a</think><answer>truncated", False),
    ],
)
def test_format_gate(response, ok):
    assert format_ok(response) is ok


def test_first_answer_and_dollar_removal():
    assert extract_answer("<think>x</think><answer>$42$</answer><answer>7</answer>") == "42"
    assert extract_answer("Sure <think>x</think><answer>42</answer>") is None
    assert clean_ground_truth("<answer> $3$ </answer>") == " 3 "
    assert clean_ground_truth("B") == "B"
    with pytest.raises(ValueError, match="missing"):
        clean_ground_truth(None)


def test_broken_format_scores_zero_even_when_right():
    assert outcome_score("The answer is <answer>42</answer>", "42", "numerical") == 0.0


# ------------------------------------------------------------------ numerical


@pytest.mark.parametrize(
    "answer, gt, expected",
    [
        ("42", "42", 1.0),
        ("42.0", "42", 1.0),
        ("\\frac{1}{2}", "0.5", 1.0),
        ("0.5", "\\frac{1}{2}", 1.0),
        ("$x=5$", "5", 1.0),
        ("3.14159", "3.14", 0.0),
        ("2", "3", 0.0),
        ("", "3", 0.0),
        ("no idea", "3", 0.0),
        ("\\sqrt{2}", "\\sqrt{2}", 1.0),
    ],
)
def test_numerical(answer, gt, expected):
    assert outcome_score(wrap(answer), gt, "numerical") == expected


def test_numerical_in_worker_thread():
    # verl scores in executor threads, where math-verify's SIGALRM timeout cannot be used
    out = []
    t = threading.Thread(target=lambda: out.append(outcome_score(wrap("0.5"), "\\frac{1}{2}", "numerical")))
    t.start()
    t.join()
    assert out == [1.0]


# ------------------------------------------------------------------ multiple choice


@pytest.mark.parametrize("answer", ["B", "(B)", "B.", "B) 40", "B. 40", "b", " B ", "(b) 40", "B. 40, 50"])
def test_multiple_choice_single_forms(answer):
    assert outcome_score(wrap(answer), "B", "multiple choice") == 1.0


@pytest.mark.parametrize("answer", ["C", "A, B", "the answer is B", "", "BB", "ab"])
def test_multiple_choice_wrong_or_unreadable(answer):
    assert outcome_score(wrap(answer), "B", "multiple choice") == 0.0


@pytest.mark.parametrize(
    "answer", ["A, C", "C, A", "AC", "CA", "a, c", "A and C", "(A) (C)".replace(" ", ", "), "A. 1; C. 3"]
)
@pytest.mark.parametrize("gt", ["A, C", "AC", "A,C", "<answer>C, A</answer>"])
def test_multiple_choice_multi_answer(answer, gt):
    assert outcome_score(wrap(answer), gt, "multiple choice") == 1.0


def test_multiple_choice_subset_is_wrong():
    assert outcome_score(wrap("A"), "A, C", "multiple choice") == 0.0
    assert outcome_score(wrap("A, B, C"), "AC", "multiple choice") == 0.0


def test_option_letters():
    assert option_letters("B) 40") == frozenset("B")
    assert option_letters("ABD") == frozenset("ABD")
    assert option_letters("Yes it is") is None
    assert option_letters("") is None


# ------------------------------------------------------------------ OCR


def test_ocr_exp_minus_wer():
    assert outcome_score(wrap("hello world"), "hello world", "OCR") == 1.0
    # one of two words substituted: WER 1/2 -> exp(-0.5) = 0.60653
    assert outcome_score(wrap("hello word"), "hello world", "OCR") == pytest.approx(0.606531, abs=1e-6)
    # one of four words deleted: WER 1/4 -> exp(-0.25) = 0.77880
    assert outcome_score(wrap("a b c"), "a b c d", "ocr") == pytest.approx(math.exp(-0.25))
    # nothing transcribed: every reference word deleted, WER 1 -> exp(-1) = 0.36788
    assert outcome_score(wrap(" "), "two words", "OCR") == pytest.approx(0.367879, abs=1e-6)


# ------------------------------------------------------------------ free-form / text


def test_rouge_mean_of_three_f_measures():
    # ref "the cat sat on the mat" (6 tokens), hyp "the cat sat" (3 tokens)
    # R1: overlap 3 -> P 1, R 1/2 -> F 2/3; R2: bigrams 2 of 2 and 2 of 5 -> F 2*(1*0.4)/1.4 = 4/7
    # RL: LCS 3 -> F 2/3; mean = (2/3 + 4/7 + 2/3) / 3 = 0.634921
    expected = (2 / 3 + 4 / 7 + 2 / 3) / 3
    for problem_type in ("free-form", "text"):
        assert outcome_score(wrap("the cat sat"), "the cat sat on the mat", problem_type) == pytest.approx(expected)
    assert outcome_score(wrap("the cat\nsat"), "the cat sat", "text") == pytest.approx(1.0)
    assert outcome_score(wrap("dog"), "the cat sat", "text") == 0.0


# ------------------------------------------------------------------ routing


def test_unknown_problem_type_names_the_value():
    with pytest.raises(ValueError, match="'essay'"):
        outcome_score(wrap("x"), "x", "essay")
    with pytest.raises(ValueError, match="problem_type"):
        compute_score("src", wrap("x"), "x", {})


def test_compute_score_dict():
    good = compute_score("geo", wrap("B"), "B", {"problem_type": "multiple choice"})
    assert good == {"score": 1.0, "acc": 1.0, "format_ok": 1.0, "scorer_failed": 0.0}
    partial = compute_score(
        "ocr", wrap("hello word"), "hello world", {"problem_type": "OCR"}, reward_router_address="x"
    )
    assert partial["score"] == pytest.approx(0.606531, abs=1e-6) and partial["acc"] == 1.0
    bad = compute_score("geo", "B", "B", {"problem_type": "Multiple_Choice"})
    assert bad == {"score": 0.0, "acc": 0.0, "format_ok": 0.0, "scorer_failed": 0.0}
