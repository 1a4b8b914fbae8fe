"""sophiavl.eval.score (any engine's predictions) and sophiavl.eval.report (verl's validation dump, written here by
verl's own dump writer) on the prepared fixture benchmarks, with hand-chosen responses and hand-computed numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tiny_benchmarks as fx  # examples/cpu (on pytest's path)
from sophiavl.eval import report as report_cli
from sophiavl.eval import score as score_cli
from sophiavl.eval.prepare import Options, prepare
from sophiavl_testing.verl_dump import write_verl_dump


def tagged(answer: str) -> str:
    return f"<think>looking at the image</think><answer>{answer}</answer>"


# (benchmark, id) -> response; a row left out is missing. Right (1) or wrong (0) by hand, with the rule that decides:
RESPONSES = {
    ("mathvista", "1"): tagged("B"),  # 1: the gold letter
    ("mathvista", "2"): "The count is 12.",  # 1: no tags, the last number of the response
    # ("mathvista", "3") missing: 0                   -> 2/3 = 66.67
    ("mathverse", "1"): tagged("B"),  # Text Dominant 1
    ("mathverse", "2"): tagged("C"),  # Vision Only 0
    ("mathverse", "3"): tagged("0.5"),  # Text Lite 1 (= \frac{1}{2} by math-verify)
    ("mathverse", "4"): "so \\boxed{6}",  # Vision Intensive 0 -> mean (100 + 0 + 100 + 0) / 4 = 50
    ("mmmu", "validation_Art_Theory_1"): tagged("A"),  # 1
    ("mmmu", "validation_Math_2"): tagged("3.50"),  # 1 (numbers at 2 decimals)
    ("mmmu", "validation_Math_3"): tagged("red"),  # 0 -> 66.67
    ("mme", "0"): tagged("Yes"),  # artwork q1 right
    ("mme", "1"): tagged("Yes"),  # artwork q2 wrong: acc 50 + acc+ 0 = 50
    ("mme", "2"): tagged("yes"),  # code_reasoning q1 right
    ("mme", "3"): tagged("No"),  # code q2 right: 100 + 100 = 200 -> perception 50, cognition 200, total 250
    ("chartqa", "0"): tagged("46"),  # 1: 1/45 = 2.2 % off
    ("chartqa", "1"): tagged("2018"),  # 1: 1/2019 off
    ("chartqa", "2"): tagged("No"),  # 0 -> 66.67
    ("mmbench", "1"): tagged("A"),  # group 1 right ...
    ("mmbench", "1000001"): tagged("cat"),  # ... its copy: "cat" is option D = gold
    ("mmbench", "2"): tagged("B"),  # group 2 right ...
    ("mmbench", "1000002"): tagged("B"),  # ... but its copy wrong (gold A) -> circular 1/2 = 50, rows 3/4
    ("mmstar", "0"): tagged("A"),  # 1
    ("mmstar", "1"): tagged("5"),  # 1: "5" is the text of option C (VLMEvalKit's can_infer), the gold
    ("mmstar", "2"): tagged("B"),  # 1 -> 100
}
WANT = {"mathvista": 200 / 3, "mathverse": 50.0, "mmmu": 200 / 3, "mme": 250.0, "chartqa": 200 / 3,
        "mmbench": 50.0, "mmstar": 100.0}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    hub = fx.build_all(tmp_path_factory.mktemp("hub"))
    out = tmp_path_factory.mktemp("eval")
    for name, folder in hub.items():
        prepare(Options(benchmark=name, src=str(folder), out=str(out)))
    return out


def check(report: dict) -> None:
    b = report["benchmarks"]
    assert list(b) == ["mathvista", "mathverse", "mmmu", "mme", "chartqa", "mmbench", "mmstar"]
    for name, want in WANT.items():
        assert b[name]["score"] == pytest.approx(want), name
    assert (b["mathvista"]["n"], b["mathvista"]["missing"]) == (3, 1)
    assert b["mathvista"]["answer_format_share"] == 0.5  # 1 of the 2 answered used <answer>
    assert b["mathverse"]["answer_format_share"] == 0.75
    assert b["mme"]["sub_scores"]["perception"] == pytest.approx(50.0)
    assert b["mme"]["sub_scores"]["cognition"] == pytest.approx(200.0)
    assert b["mme"]["unit"] == "points" and b["mme"]["paper"]["SophiaVL-R1-7B"] == 2403.8
    assert b["mmbench"]["sub_scores"]["row_accuracy"] == pytest.approx(75.0)
    assert b["mathverse"]["sub_scores"]["version/Vision Only"] == 0.0
    assert all(b[n]["missing"] == 0 for n in WANT if n != "mathvista")


def test_score_cli(data, tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"benchmark": k[0], "id": k[1], "response": v}) + "\n"
                             for k, v in RESPONSES.items()))  # fmt: skip
    out = tmp_path / "report.json"
    assert score_cli.main(["--data", str(data), "--predictions", str(preds), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    check(report)
    printed = capsys.readouterr().out
    assert "| mme | 250.0 points | 2403.8 | 2306.0 | 100 % | 4 | 0 |" in printed


def test_score_cli_rejects_bad_predictions(data, tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"benchmark": "mme", "id": "99", "response": "Yes"}) + "\n")
    assert score_cli.main(["--data", str(data), "--predictions", str(preds), "--out", str(tmp_path / "r.json")]) == 2
    assert "not in the prepared data" in capsys.readouterr().err
    line = json.dumps({"benchmark": "mme", "id": "0", "response": "Yes"}) + "\n"
    preds.write_text(line + line)
    assert score_cli.main(["--data", str(data), "--predictions", str(preds), "--out", str(tmp_path / "r.json")]) == 2
    assert "a second prediction" in capsys.readouterr().err


def test_report_from_verl_dump(data, tmp_path, capsys):
    dump = tmp_path / "dump"
    path = write_verl_dump(dump, data, RESPONSES)
    first = json.loads(path.read_text().splitlines()[0])
    assert {"input", "output", "gts", "score", "step", "uid", "benchmark", "id", "acc", "answer_format"} <= set(first)
    out = tmp_path / "report.json"
    assert report_cli.main(["--dump", str(dump), "--data", str(data), "--out", str(out)]) == 0
    check(json.loads(out.read_text()))
    assert "| mmbench | 50.0 |" in capsys.readouterr().out
    # without --data the missing MathVista row is not known: 2 of 2 answered
    alone, _ = report_cli.report_from_dump(dump)
    assert alone["benchmarks"]["mathvista"]["score"] == 100.0 and alone["benchmarks"]["mathvista"]["n"] == 2


def test_report_rejects_foreign_or_repeated_dumps(data, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "0.jsonl").write_text(json.dumps({"input": "q", "output": "a", "score": 1.0, "acc": 1.0}) + "\n")
    with pytest.raises(ValueError, match="not scored by sophiavl.eval.compute_score"):
        report_cli.report_from_dump(dump)
    twice = write_verl_dump(tmp_path / "d2", data, {("mme", "0"): "Yes"})
    twice.write_text(twice.read_text() * 2)
    with pytest.raises(ValueError, match="second generation"):
        report_cli.report_from_dump(twice)
    with pytest.raises(FileNotFoundError, match="validation_data_dir"):
        report_cli.dump_file(tmp_path / "empty")
