"""TRM evaluation arithmetic (``sophiavl.eval.trm.metrics``, ``sophiavl.eval.trm.pairwise``) against hand-computed
values."""

from __future__ import annotations

import math

import pytest

from sophiavl.eval.trm.metrics import (
    agreement,
    agreement_summary,
    average_ranks,
    confusion,
    grid_index,
    mae,
    on_grid,
    pearson,
    rmse,
    spearman,
)
from sophiavl.eval.trm.pairwise import PairScore, credit, id_prefix, pairwise_summary, source_of, table3

# six labelled rows; in tenths: labels 0 3 5 7 10 7, predictions 1 3 8 8 6 7
LABELS = [0.0, 0.3, 0.5, 0.7, 1.0, 0.7]
PREDS = [0.1, 0.3, 0.8, 0.8, 0.6, 0.7]


def test_grid_index_on_tenths_not_float_differences():
    assert [grid_index(v) for v in LABELS] == [0, 3, 5, 7, 10, 7]
    assert grid_index(0.35) == 4  # 0.35 * 10 is 3.4999999999999996 in floating point
    assert grid_index(0.75) == 8 and grid_index(0.74) == 7 and grid_index(0.05) == 1
    assert abs(0.8 - 0.7) > 0.1  # the float trap the grid indices avoid
    assert agreement([0.7], [0.8], 1) == 100.0 and agreement([0.7], [0.8], 0) == 0.0
    assert on_grid(0.3) and on_grid(1.0) and not on_grid(0.75) and not on_grid(1.1)
    with pytest.raises(ValueError, match="outside"):
        grid_index(1.2)


def test_errors_and_agreement_by_hand():
    # absolute errors 0.1 0 0.3 0.1 0.4 0 -> sum 0.9; squared 0.01 0 0.09 0.01 0.16 0 -> sum 0.27
    assert mae(LABELS, PREDS) == pytest.approx(0.9 / 6)
    assert rmse(LABELS, PREDS) == pytest.approx(math.sqrt(0.27 / 6))
    # index differences 1 0 3 1 4 0: exact 2 of 6, within one step 4 of 6
    assert agreement(LABELS, PREDS, 0) == pytest.approx(100 * 2 / 6)
    assert agreement(LABELS, PREDS, 1) == pytest.approx(100 * 4 / 6)


def test_pearson_by_hand():
    # in tenths: sum x 32, sum y 33, sum xy 214, sum x^2 232, sum y^2 223 (n = 6)
    sxy, sxx, syy = 214 - 32 * 33 / 6, 232 - 32**2 / 6, 223 - 33**2 / 6
    assert (sxy, syy) == (38.0, 41.5) and sxx == pytest.approx(184 / 3)
    assert pearson(LABELS, PREDS) == pytest.approx(38 / math.sqrt(184 / 3 * 41.5))
    assert pearson([1.0, 2.0], [2.0, 4.0]) == pytest.approx(1.0)
    assert pearson([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]) is None  # constant series: undefined, not 0
    # a TRM that answers 0.7 to everything: the mean of three 0.7 is 0.6999999999999998, yet the series is constant
    assert pearson([0.1, 0.5, 0.9], [0.7, 0.7, 0.7]) is None and spearman([0.1, 0.5, 0.9], [0.7, 0.7, 0.7]) is None
    assert pearson([0.5], [0.5]) is None


def test_spearman_with_ties_uses_average_ranks():
    assert average_ranks([5, 1, 5]) == [2.5, 1.0, 2.5]
    # label ranks 1 2 3 4.5 6 4.5 (two 0.7); prediction ranks 1 2 5.5 5.5 3 4 (two 0.8); both means 3.5
    assert average_ranks(LABELS) == [1, 2, 3, 4.5, 6, 4.5]
    assert average_ranks(PREDS) == [1, 2, 5.5, 5.5, 3, 4]
    # sum of rank products 82.25 - 6 * 3.5^2 = 8.75; each sum of squares 90.5 - 73.5 = 17
    assert spearman(LABELS, PREDS) == pytest.approx(8.75 / 17)


def test_confusion_table():
    table = confusion(LABELS, PREDS)
    assert len(table) == 11 and all(len(row) == 11 for row in table)
    expected = {(0, 1): 1, (3, 3): 1, (5, 8): 1, (7, 8): 1, (10, 6): 1, (7, 7): 1}
    assert {(i, j): c for i, row in enumerate(table) for j, c in enumerate(row) if c} == expected


def test_summary_of_nothing_is_undefined_not_zero():
    summary = agreement_summary([], [])
    assert summary["n"] == 0 and summary["off_grid"] == 0
    assert all(summary[k] is None for k in ("mae", "rmse", "exact", "within_0_1", "pearson", "spearman"))
    assert agreement_summary([0.5, 0.6], [0.75, 0.6])["off_grid"] == 1


@pytest.mark.parametrize(
    "item_id, prefix, source",
    [
        ("RLAIF-V_12", "RLAIF", "rlaif-v"),
        ("RLHF-V-Dataset_3", "RLHF", "rlhf-v"),
        ("mathverse_1_2", "mathverse", "mathverse"),
        ("mmmu-pro_5", "mmmu", "mmmu"),
        ("wildvision-battle_7", "wildvision", "wildvision-battle"),
        ("hallucination_pair_9", "hallucination", "povid"),
        ("POVID-17", "POVID", "povid"),
        ("vlfeedback_123", "vlfeedback", "vlfeedback"),
        ("f1e2d3", "f1e2d3", "vlfeedback"),
        ("rlaif_5", "rlaif", "vlfeedback"),  # prefixes are case-sensitive, as in the benchmark's script
    ],
)
def test_source_from_id(item_id, prefix, source):
    assert id_prefix(item_id) == prefix and source_of(item_id) == source


def _pairs() -> list[PairScore]:
    """general: right, right, wrong, tie; hallucination: right, tie, tie; reasoning: wrong, right."""
    return [
        PairScore("vlfeedback_1", 0, (0.8, 0.3)),
        PairScore("wildvision-battle_1", 1, (0.2, 0.9)),
        PairScore("vlfeedback_2", 0, (0.4, 0.5)),
        PairScore("wildvision-battle_2", 1, (0.6, 0.6)),
        PairScore("RLAIF-V_1", 1, (0.1, 0.2)),
        PairScore("RLHF-V_1", 0, (0.7, 0.7)),
        PairScore("hallucination_1", 0, (1.0, 1.0)),
        PairScore("mathverse_1", 0, (0.3, 0.9)),
        PairScore("mmmu-pro_1", 1, (0.5, 0.6)),
    ]


# (general, hallucination, reasoning, overall, macro) in % for each tie rule, by hand:
# half:    (2 + .5)/4, (1 + .5 + .5)/3, 1/2, (2.5 + 2 + 1)/9, mean of the three
# wrong:   2/4, 1/3, 1/2, 4/9
# exclude: 2/3, 1/1, 1/2, 4/6
EXPECTED = {
    "half": (62.5, 200 / 3, 50.0, 550 / 9, (62.5 + 200 / 3 + 50) / 3),
    "wrong": (50.0, 100 / 3, 50.0, 400 / 9, (50 + 100 / 3 + 50) / 3),
    "exclude": (200 / 3, 100.0, 50.0, 400 / 6, (200 / 3 + 100 + 50) / 3),
}


@pytest.mark.parametrize("tie", sorted(EXPECTED))
def test_pairwise_accuracy_under_each_tie_rule(tie):
    summary = pairwise_summary(_pairs(), tie)
    general, hallucination, reasoning, overall, macro = EXPECTED[tie]
    groups = summary["groups"]
    assert groups["general"]["accuracy"] == pytest.approx(general)
    assert groups["hallucination"]["accuracy"] == pytest.approx(hallucination)
    assert groups["reasoning"]["accuracy"] == pytest.approx(reasoning)
    assert summary["overall"] == pytest.approx(overall) and summary["macro"] == pytest.approx(macro)
    assert summary["n"] == 9 and summary["ties"] == 3 and summary["tie_rate"] == pytest.approx(100 / 3)
    assert summary["counted"] == (6 if tie == "exclude" else 9)
    assert [groups[g]["n"] for g in ("general", "hallucination", "reasoning")] == [4, 3, 2]
    assert summary["sources"]["povid"]["ties"] == 1 and summary["sources"]["mmmu"]["accuracy"] == 100.0


def test_tie_credit_and_missing_group():
    tie = PairScore("x", 0, (0.5, 0.5 + 1e-12))
    assert tie.tie and [credit(tie, r) for r in ("half", "wrong", "exclude")] == [0.5, 0.0, None]
    with pytest.raises(ValueError, match="tie rule"):
        credit(tie, "coin")
    only_general = pairwise_summary([PairScore("vlfeedback_1", 0, (0.9, 0.1))], "half")
    assert only_general["overall"] == 100.0 and only_general["macro"] is None
    assert only_general["groups"]["reasoning"]["accuracy"] is None and only_general["groups"]["reasoning"]["n"] == 0
    text = table3(only_general, "ours")
    assert (
        "SophiaVL-R1 TRM (3B)" in text
        and "48.9" in text
        and text.splitlines()[-1].split()[1:]
        == [
            "100.0",
            "-",
            "-",
            "100.0",
            "-",
        ]
    )
