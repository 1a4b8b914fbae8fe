"""The rules that follow the benchmarks' own scoring code, on hand-written cases worked out from what each official
script does (the expected verdicts are reasoned in the comments, step by step through the official code):

* MMMU ``mmmu/utils/eval_utils.py`` (``parse_multi_choice_response``, ``parse_open_response``, ``eval_open``);
* VLMEvalKit ``can_infer`` (``vlmeval/utils/matching_util.py`` at c0e00db) for MMBench and MMStar;
* MathVista: a multiple-choice gold is an option text that several options can share;
* MathVerse: the headline is right / total (the official "Acc").
"""

from __future__ import annotations

import pytest

from sophiavl.eval.benchmarks import mathverse, mathvista, mmbench, mmmu, mmstar
from sophiavl.eval.benchmarks.base import ScoredRow
from sophiavl.eval.option_rules import mmmu_choice, options_from_question, vlmeval_choice

ANIMALS = {"A": "a dog", "B": "a cat", "C": "a bird", "D": "a fish"}


@pytest.mark.parametrize(
    ("answer", "want"),
    [
        ("B", "B"),  # " B " stands between spaces
        ("B.", "B"),  # the end "." is stripped first
        ("(A) a dog, but looking again (C)", "C"),  # both bracketed: the last one mentioned
        ("A. a dog is wrong; the answer is C", "C"),  # "A." is no candidate (no space after A); " C " is
        ("A and C", "C"),  # both between spaces: the last one mentioned
        ("B) a cat", None),  # no "(B)", no " B ", 3 words: the official code picks at random
        ("I think it shows a cat on the mat", "B"),  # > 5 words, no letter: the option text "a cat"
        ("It is a cat, not a dog at all really", "A"),  # both texts: the one mentioned last, "a dog"
        ("a cat", None),  # an option's text, but only 2 words: random officially
        ("E", None),  # not an option
        ("", None),
    ],
)
def test_mmmu_choice_follows_the_official_precedence(answer, want):
    assert mmmu_choice(answer, ANIMALS) == want


def test_mmmu_multiple_choice_verdicts():
    extra = {"problem_type": "multiple choice", "n_options": 4, "options": list(ANIMALS.values())}
    right = mmmu.verdict("A. a dog is wrong; the answer is C", "C", extra)
    assert (right.correct, right.answer, right.decided) == (True, "C", True)
    random_officially = mmmu.verdict("B) a cat", "B", extra)
    assert (random_officially.correct, random_officially.answer, random_officially.decided) == (False, None, False)


@pytest.mark.parametrize(
    ("answer", "golds", "want"),
    [
        ("x = 3.50", ["3.5"], True),  # last sentence: "=" is an indicator -> "3.50" -> 3.5
        ("3.499", ["3.5"], True),  # rounded to 2 decimals: 3.5
        ("3.6", ["3.5"], False),
        ("Navy blue", ["blue"], True),  # no indicator: the whole answer; "blue" is contained
        # lower-cased before splitting, so ". S" no longer splits: one sentence, shortest tail "red"
        ("It is blue. So the answer is red", ["blue"], False),
        ("It is blue. So the answer is red", ["red"], True),
        ("It is blue.\nSo the answer is red", ["blue"], True),  # a newline splits: tails "blue." and "red"
        ("b", ["B"], True),  # one-letter texts are padded: " b" is in " b"
        ("abc", ["B"], False),  # neither " b" nor "b " occurs in "abc"
        ("the total is 1,000 dollars", ["1000"], True),  # "1,000" -> 1000.0
        ("the total is 1,000 dollars", ["0"], True),  # the plain pattern also reads "000" -> 0.0 (official quirk)
    ],
)
def test_mmmu_open_follows_parse_open_response_and_eval_open(answer, golds, want):
    assert mmmu.open_correct(answer, golds) is want


def test_mmmu_open_parts():
    assert mmmu.key_parts("It is blue. So the answer is red") == ["red"]
    assert mmmu.key_parts("It is blue.\nSo the answer is red") == ["blue.", "red"]
    assert mmmu.key_parts("42") == ["42"]
    # the three official patterns in turn: with commas, scientific, plain; the plain one also reads "000" of
    # "1,000" and "2" and "3" of "2.5e3" (the official quirk, kept)
    assert mmmu.numbers_of("1,000 and 2.5e3 or 7") == ["1,000", "2.5e3", "000", "2", "3", "7"]
    assert mmmu.normalise(" 1,234.567 ") == [1234.57] and mmmu.normalise("B") == [" b", "b "]
    wrong = mmmu.verdict("green", "blue", {"problem_type": "short answer", "answers": ["blue"]})
    assert (wrong.correct, wrong.decided) == (False, False)  # a non-match is left to a model


STAR = {"A": "4", "B": "6", "C": "5", "D": "7"}


@pytest.mark.parametrize(
    ("answer", "options", "want"),
    [
        ("C", STAR, "C"),
        ("The answer is C.", STAR, "C"),  # "." replaced by a space: one letter word
        ("(C) 5", STAR, "C"),
        ("5", STAR, "C"),  # no letter: the only option text inside the answer
        ("A or C", STAR, None),  # two letters; no option text inside
        ("A cat", {"A": "a dog", "B": "a cat"}, "A"),  # the article counts as option A (VLMEvalKit's quirk)
        ("black cat", {"A": "cat", "B": "black cat"}, None),  # two texts inside
        ("Z", STAR, "Z"),  # no option
        ("Cannot determine the answer", STAR, "Z"),  # a refusal
        ("after counting carefully I get five", STAR, None),  # longer than twice the option texts: no text step
        ("6", {"A": "", "B": ""}, None),  # texts unknown: letters only
    ],
)
def test_vlmeval_choice_follows_can_infer(answer, options, want):
    assert vlmeval_choice(answer, options) == want


def test_mmstar_reads_its_inline_options_and_scores_option_text():
    q = "What is 2 + 3?\nOptions: A: 4, B: 6, C: 5, D: 7"
    assert options_from_question(q, 4) == ["4", "6", "5", "7"]
    assert options_from_question("Pick one.\nOptions: A: red, green, B: blue", 2) == ["red, green", "blue"]
    assert options_from_question("no list here", 4) == [] and options_from_question("Options: A: x", 2) == []
    assert mmstar.n_options(q, "C") == 4
    extra = {"n_options": 4, "options": ["4", "6", "5", "7"]}
    assert mmstar.score("5", "C", extra) == 1.0  # option C's text
    assert mmstar.score("C", "C", extra) == 1.0
    assert mmstar.score("Z", "C", extra) == 0.0
    z = mmstar.verdict("Z", "C", extra)
    assert (z.answer, z.decided) == ("Z", True)  # "no option" is a verdict, not a missing answer


def test_mmbench_option_text_counts():
    extra = {"n_options": 4, "options": ["dog", "bird", "fish", "cat"]}
    assert mmbench.score("D", "D", extra) == 1.0
    assert mmbench.score("It is a cat.", "D", extra) == 1.0  # no letter word; "cat" is the only text inside
    assert mmbench.score("A", "D", extra) == 0.0
    undecided = mmbench.verdict("no idea", "D", extra)
    assert (undecided.correct, undecided.decided) == (False, False)


def _mathvista_row(choices, answer):
    return {
        "pid": "9", "question": "q", "query": "q", "decoded_image": _png(), "choices": choices, "answer": answer,
        "question_type": "multi_choice", "answer_type": "integer", "metadata": {"task": "t", "skills": []},
    }  # fmt: skip


def test_mathvista_gold_text_shared_by_several_options():
    # the gold "2" is the text of options A and C: both letters are right, and so is the text itself
    item = mathvista.convert(_mathvista_row(["2", "3", "2"], "2"))
    assert (item.ground_truth, item.answers) == ("A", ["A", "C"])
    extra = {"problem_type": "multiple choice", "n_options": 3, "options": ["2", "3", "2"], "answers": ["A", "C"]}
    assert mathvista.score("C", "A", extra) == 1.0
    assert mathvista.score("A", "A", extra) == 1.0
    assert mathvista.score("2", "A", extra) == 1.0
    assert mathvista.score("B", "A", extra) == 0.0
    assert mathvista.score("3", "A", extra) == 0.0


def _png() -> dict:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (28, 28), "red").save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def test_mathvista_decided_only_when_an_answer_is_found():
    integer = {"problem_type": "numerical", "answer_type": "integer", "precision": None}
    found = mathvista.verdict("The count is 13.", "12", integer)
    assert (found.correct, found.answer, found.decided) == (False, "13", True)
    words = mathvista.verdict("twelve", "12", integer)
    assert (words.correct, words.answer, words.decided) == (False, None, False)


def test_mathverse_headline_is_right_over_total():
    rows = [
        ScoredRow("mathverse", "1", 1.0, version="Text Dominant"),
        ScoredRow("mathverse", "2", 1.0, version="Text Dominant"),
        ScoredRow("mathverse", "3", 0.0, version="Vision Only"),
    ]
    agg = mathverse.aggregate(rows)
    assert agg.score == pytest.approx(200 / 3)  # 2 of 3 rows, not the mean of versions (100 + 0) / 2
    assert agg.sub_scores["mean_of_versions"] == pytest.approx(50.0)
    assert agg.sub_scores["version/Vision Only"] == 0.0
    free = {"problem_type": "expression"}
    assert mathverse.verdict("\\frac{1}{3}", "\\frac{1}{2}", free).decided is False  # left to a model
    assert mathverse.verdict("0.5", "\\frac{1}{2}", free).decided is True
