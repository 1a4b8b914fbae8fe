"""Each benchmark's aggregation on hand-built scored rows, and the report's shape and table."""

from __future__ import annotations

import pytest

from sophiavl.eval.benchmarks import ScoredRow, chartqa, mathverse, mathvista, mmbench, mme, mmmu, mmstar
from sophiavl.eval.results import build_report, markdown_table


def row(bench, i, correct, **kw) -> ScoredRow:
    return ScoredRow(benchmark=bench, id=str(i), correct=float(correct), **kw)


def test_mmbench_circular():
    rows = [
        row("mmbench", 1, 1, group="1", category="a"),
        row("mmbench", 1_000_001, 1, group="1", category="a"),  # group 1: both copies right -> counts
        row("mmbench", 2, 1, group="2", category="b"),
        row("mmbench", 1_000_002, 0, group="2", category="b"),  # group 2: one copy wrong -> does not count
        row("mmbench", 3, 0, group="3", category="b"),  # group 3: wrong
    ]
    agg = mmbench.aggregate(rows)
    assert agg.score == pytest.approx(100 / 3)  # 1 of 3 questions
    assert agg.sub_scores["row_accuracy"] == pytest.approx(60.0)  # 3 of 5 rows
    assert agg.sub_scores["category/a"] == 100.0 and agg.sub_scores["category/b"] == 0.0
    assert agg.sub_scores["questions"] == 3.0


def test_mme_acc_plus_and_sums():
    rows = [
        row("mme", 0, 1, group="artwork/1.jpg", category="artwork"),
        row("mme", 1, 0, group="artwork/1.jpg", category="artwork"),  # image 1: one of two right
        row("mme", 2, 1, group="artwork/2.jpg", category="artwork"),
        row("mme", 3, 1, group="artwork/2.jpg", category="artwork"),  # image 2: both right
        row("mme", 4, 1, group="code/1.png", category="code_reasoning"),
        row("mme", 5, 1, group="code/1.png", category="code_reasoning"),
        row("mme", 6, 1, group="ocr/1.png", category="OCR"),
        row("mme", 7, 0, group="ocr/1.png", category="OCR"),
    ]
    agg = mme.aggregate(rows)
    # artwork: acc 3/4 = 75, acc+ 1/2 = 50 -> 125; OCR: acc 50, acc+ 0 -> 50; code: 100 + 100 = 200
    assert agg.sub_scores["subtask/artwork"] == pytest.approx(125.0)
    assert agg.sub_scores["subtask/OCR"] == pytest.approx(50.0)
    assert agg.sub_scores["subtask/code_reasoning"] == pytest.approx(200.0)
    assert agg.sub_scores["perception"] == pytest.approx(175.0)
    assert agg.sub_scores["cognition"] == pytest.approx(200.0)
    assert agg.score == pytest.approx(375.0) and agg.unit == "points"
    assert set(mme.PERCEPTION) & set(mme.COGNITION) == set() and len(mme.PERCEPTION) == 10 and len(mme.COGNITION) == 4


def test_mathverse_versions_kept():
    rows = [
        row("mathverse", 1, 1, version="Text Dominant"),
        row("mathverse", 2, 1, version="Text Dominant"),  # 100
        row("mathverse", 3, 0, version="Vision Only"),  # 0
        row("mathverse", 4, 1, version="Text Lite"),
        row("mathverse", 5, 0, version="Text Lite"),  # 50
    ]
    agg = mathverse.aggregate(rows)
    assert agg.score == pytest.approx(60.0)  # 3 of 5 rows (the official Acc)
    assert agg.sub_scores["mean_of_versions"] == pytest.approx(50.0)  # (100 + 0 + 50) / 3
    assert agg.sub_scores["version/Text Lite"] == pytest.approx(50.0)


def test_accuracy_benchmarks_and_their_parts():
    skills = "arithmetic reasoning|logical reasoning"
    mv = mathvista.aggregate([
        row("mathvista", 1, 1, category="textbook question answering", subcategory=skills),
        row("mathvista", 2, 0, category="math word problem", subcategory="arithmetic reasoning"),
    ])  # fmt: skip
    assert mv.score == 50.0
    assert mv.sub_scores["task/textbook question answering"] == 100.0
    assert mv.sub_scores["skill/arithmetic reasoning"] == 50.0 and mv.sub_scores["skill/logical reasoning"] == 100.0
    cq = chartqa.aggregate([row("chartqa", 0, 1, category="human"), row("chartqa", 1, 0, category="augmented"),
                            row("chartqa", 2, 1, category="augmented")])  # fmt: skip
    assert cq.score == pytest.approx(200 / 3) and cq.sub_scores["part/augmented"] == 50.0
    mm = mmmu.aggregate([row("mmmu", "a", 1, category="Math"), row("mmmu", "b", 0, category="Art")])
    assert mm.score == 50.0 and mm.sub_scores == {"subject/Art": 0.0, "subject/Math": 100.0}
    ms = mmstar.aggregate([row("mmstar", 0, 0, category="math")])
    assert ms.score == 0.0 and ms.sub_scores == {"category/math": 0.0}


def test_report_shape_missing_rows_and_table():
    rows = [
        row("mmstar", 0, 1, answer_format=True),
        row("mmstar", 1, 0, answer_format=False),
        ScoredRow("mmstar", "2", 0.0, missing=True),
        row("mathvista", 1, 1, answer_format=True),
    ]
    report = build_report(rows, {"kind": "test"})
    assert list(report["benchmarks"]) == ["mathvista", "mmstar"]  # the paper's order
    star = report["benchmarks"]["mmstar"]
    assert star["score"] == pytest.approx(100 / 3)  # the missing row counts as wrong
    assert (star["n"], star["missing"]) == (3, 1)
    assert star["answer_format_share"] == 0.5  # over the answered rows
    assert star["paper"]["SophiaVL-R1-7B"] == 66.7 and star["paper"]["Qwen2.5-VL-7B-Instruct"] == 64.3
    table = markdown_table(report)
    assert table.splitlines()[0].startswith("| benchmark | this model |")
    assert "| mmstar | 33.3 | 66.7 | 64.3 | 50 % | 3 | 1 |" in table
