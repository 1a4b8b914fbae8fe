"""The evaluation's scoring rules on hand-written cases: answer extraction, option letters, numbers, and each
benchmark's rule. Expected values are worked out by hand in the comments."""

from __future__ import annotations

import pytest

from sophiavl.eval.benchmarks import chartqa, mathverse, mathvista, mme, mmmu
from sophiavl.eval.choices import pick_option
from sophiavl.eval.compute_score import ECHO_KEYS, compute_score
from sophiavl.eval.extract.answer import extract_answer, last_boxed, uses_answer_format
from sophiavl.eval.numbers import answer_number, numbers_in, to_float


@pytest.mark.parametrize(
    ("response", "text", "source"),
    [
        ("<think>so it is B</think><answer> B </answer>", "B", "answer"),
        ("<answer>A</answer> wait <answer>C</answer>", "C", "answer"),  # the last tagged answer
        ("<think>x</think> so \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"),
        ("\\boxed{1} then \\boxed{2}", "2", "boxed"),
        ("<think>long reasoning</think> The answer is 5", "The answer is 5", "response"),
        ("<think>cut off in the middle", "", "response"),
        ("plain text", "plain text", "response"),
        ("", "", "response"),
    ],
)
def test_extract_answer(response, text, source):
    got = extract_answer(response)
    assert (got.text, got.source) == (text, source)


def test_answer_format_and_unclosed_boxed():
    assert uses_answer_format("<think>a</think><answer>b</answer>")
    assert uses_answer_format("<answer>b</answer>")  # the share counts the tags, not the think part
    assert not uses_answer_format("<answer>b")
    assert not uses_answer_format("\\boxed{b}")
    assert last_boxed("\\boxed{1 + {2}") is None  # never closed


@pytest.mark.parametrize(
    ("answer", "n", "options", "want"),
    [
        ("B", 4, None, "B"),
        ("(c)", 4, None, "C"),
        ("\\text{D}", 4, None, "D"),
        ("E", 4, None, None),  # not an option of a 4-option question
        ("A, C", 4, None, None),  # several options at once
        ("The answer is B.", 4, None, "B"),
        ("I first thought (A), but it is (C)", 4, None, "C"),  # the last one mentioned
        ("an oil painting", 3, ["[image 2]", "An oil painting", "a fresco"], "B"),  # the option's text
        ("It is a fresco", 3, ["[image 2]", "an oil painting", "a fresco"], "C"),  # text inside the answer
        ("cat", 4, None, None),  # no letter and no option texts given
        ("", 4, None, None),
        ("nothing here", 4, ["one", "two"], None),
    ],
)
def test_pick_option(answer, n, options, want):
    assert pick_option(answer, n, options) == want


def test_numbers():
    assert to_float("1,234.5") == 1234.5
    assert to_float(" -3 ") == -3.0
    assert to_float("12%") is None and to_float("3 cm") is None and to_float("nan") is None
    assert numbers_in("x = 3, y = 1,500") == [3.0, 1500.0]
    assert answer_number("x = 12 cm") == 12.0
    assert answer_number("45%") == 45.0
    assert answer_number("60^\\circ") == 60.0
    assert answer_number("no number") is None


MV_MC = {"problem_type": "multiple choice", "n_options": 3, "options": ["3", "4", "5"], "answer_type": "text"}
MV_INT = {"problem_type": "numerical", "answer_type": "integer", "precision": None}
MV_FLOAT = {"problem_type": "numerical", "answer_type": "float", "precision": 1.0}


@pytest.mark.parametrize(
    ("answer", "gold", "extra", "want"),
    [
        ("B", "B", MV_MC, 1.0),
        ("4", "B", MV_MC, 1.0),  # the option's text names option B
        ("A", "B", MV_MC, 0.0),
        ("12", "12", MV_INT, 1.0),
        ("12.0", "12", MV_INT, 1.0),
        ("12.5", "12", MV_INT, 0.0),
        ("twelve", "12", MV_INT, 0.0),
        ("1.50", "1.5", MV_FLOAT, 1.0),
        ("1.54", "1.5", MV_FLOAT, 1.0),  # "1.5" at 1 decimal
        ("1.56", "1.5", MV_FLOAT, 0.0),  # "1.6"
        ("1.5 cm", "1.5", MV_FLOAT, 1.0),
        ("Red.", "red", {"problem_type": "short answer", "answer_type": "text"}, 1.0),
        ("[1, 2]", "1,2", {"problem_type": "short answer", "answer_type": "list"}, 1.0),
        ("[2, 1]", "1,2", {"problem_type": "short answer", "answer_type": "list"}, 0.0),
    ],
)
def test_mathvista_rule(answer, gold, extra, want):
    assert mathvista.score(answer, gold, extra) == want


def test_mathverse_rule():
    mc = {"problem_type": "multiple choice", "n_options": 4}
    assert mathverse.score("B", "B", mc) == 1.0
    assert mathverse.score("B:60", "B", mc) == 1.0
    assert mathverse.score("C", "B", mc) == 0.0
    free = {"problem_type": "expression"}
    assert mathverse.score("0.5", "\\frac{1}{2}", free) == 1.0  # math-verify equivalence
    assert mathverse.score("\\frac{1}{3}", "\\frac{1}{2}", free) == 0.0
    assert mathverse.score("5.0", "5", free) == 1.0
    assert mathverse.n_options("find x\nChoices:\nA:1\nB:2\nC:3", "A") == 3
    assert mathverse.n_options("the choices are in the image", "B") == 4  # none listed: at least A-D


def test_mmmu_rule():
    mc = {"problem_type": "multiple choice", "n_options": 3, "options": ["[image 2]", "oil", "fresco"]}
    assert mmmu.score("A", "A", mc) == 1.0
    assert mmmu.score("D", "A", mc) == 0.0  # not an option
    assert mmmu.score("", "A", mc) == 0.0  # no option named: wrong, never a random pick
    assert mmmu.score("I cannot tell", "A", mc) == 0.0
    number = {"problem_type": "short answer", "answers": ["3.5"]}
    assert mmmu.score("x = 3.50", "3.5", number) == 1.0
    assert mmmu.score("3.499", "3.5", number) == 1.0  # round(3.499, 2) = 3.5
    assert mmmu.score("3.6", "3.5", number) == 0.0
    words = {"problem_type": "short answer", "answers": ["blue", "navy"]}
    assert mmmu.score("Navy blue", "blue", words) == 1.0  # the gold's text is contained
    assert mmmu.score("green", "blue", words) == 0.0
    assert mmmu.subject_of("validation_Art_Theory_12") == "Art_Theory"


def test_compute_score_reports_the_rule_reading_and_who_decided():
    extra = {"benchmark": "mmstar", "id": "1", "problem_type": "multiple choice", "n_options": 4,
             "options": ["4", "6", "5", "7"]}  # fmt: skip
    got = compute_score("mmstar", "<answer>5</answer>", "C", extra)
    assert (got["acc"], got["answer"], got["decided_by"]) == (1.0, "C", "rule")  # "5" is option C's text
    none = compute_score("mmstar", "<answer>no idea</answer>", "C", extra)
    assert (none["acc"], none["answer"], none["decided_by"]) == (0.0, "", "none")


@pytest.mark.parametrize(
    ("pred", "target", "want"),
    [
        ("47", "45", True),  # |47 - 45| / 45 = 0.044 <= 0.05
        ("48", "45", False),  # 0.067
        ("2018", "2019", True),  # 0.0005: years are numbers too (the official metric's quirk)
        ("45%", "0.45", True),  # a % suffix divides by 100
        ("12%", "12", False),  # 0.12 against 12
        ("yes", "Yes", True),
        ("0", "0", True),  # a zero gold falls back to text
        ("0.0", "0", False),
        ("1,000", "1000", False),  # thousands separators are text
    ],
)
def test_chartqa_relaxed(pred, target, want):
    assert chartqa.relaxed_correct(pred, target) is want


def test_chartqa_best_over_labels():
    extra = {"answers": ["10", "ten"]}
    assert chartqa.score("ten", "10", extra) == 1.0
    assert chartqa.score("11", "10", extra) == 0.0  # 10 % off


@pytest.mark.parametrize(
    ("answer", "want"),
    [("Yes, it is.", "yes"), ("No.", "no"), ("yes and no", None), ("Yesterday", None), ("", None)],
)
def test_mme_yes_no(answer, want):
    assert mme.yes_no(answer) == want


def test_mme_rule():
    assert mme.score("yes", "Yes", {}) == 1.0
    assert mme.score("No", "Yes", {}) == 0.0
    assert mme.score("maybe", "No", {}) == 0.0


def test_compute_score_echoes_the_row_and_routes_by_benchmark():
    extra = {"benchmark": "mme", "id": "7", "group": "artwork/1.jpg", "category": "artwork", "version": None}
    got = compute_score("mme", "<think>it is</think><answer>Yes</answer>", "Yes", extra, reward_router_address=None)
    assert got["score"] == got["acc"] == 1.0
    assert got["answer_format"] == 1.0 and got["pred"] == "Yes" and got["pred_source"] == "answer"
    assert {k: got[k] for k in ECHO_KEYS} == {"benchmark": "mme", "id": "7", "group": "artwork/1.jpg",
                                              "version": "", "category": "artwork", "subcategory": ""}  # fmt: skip
    plain = compute_score("mme", "No", "Yes", extra)
    assert plain["score"] == 0.0 and plain["answer_format"] == 0.0 and plain["pred_source"] == "response"
    assert set(plain) == set(got)  # the same keys for every row (verl dumps only keys every row has)
    with pytest.raises(ValueError, match="no 'benchmark'"):
        compute_score("x", "A", "A", {})
    with pytest.raises(ValueError, match="unknown benchmark"):
        compute_score("x", "A", "A", {"benchmark": "nope"})


def test_mathverse_runaway_answer_from_a_worker_thread_returns_wrong():
    """An answer that keeps sympy busy for minutes (tests/rewards/outcome/test_bounded_scorer.py) is cut off after the
    5 s bound even from a worker thread, as in verl's validation, and is then compared as text: wrong."""
    import threading
    import time

    free = {"problem_type": "expression"}
    result = {}

    def run():
        start = time.monotonic()
        result["score"] = mathverse.score("\\int_0^{1} x^{100} e^{x} \\sin(x) dx", "0.2", free)
        result["seconds"] = time.monotonic() - start

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=120)  # generous for a loaded 2-core machine: the bound is 5 s plus a helper start
    assert not worker.is_alive() and result["score"] == 0.0
    assert mathverse.score("\\frac{1}{2}", "0.5", free) == 1.0  # a normal answer still goes through math-verify
