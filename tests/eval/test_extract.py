"""Model-based answer extraction (``--extract-url``) against a scripted OpenAI-compatible server on loopback (a real
HTTP server, ``sophiavl_testing.fake_judge_server``), through both CLIs, and the per-row audit ``rows.jsonl``. Every
expected number is worked out by hand in the comments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tiny_benchmarks as fx  # examples/cpu (on pytest's path)
from sophiavl.eval import report as report_cli
from sophiavl.eval import score as score_cli
from sophiavl.eval.extract.prompts import read_judgement
from sophiavl_testing.verl_dump import write_verl_dump


def tagged(answer: str) -> str:
    return f"<think>looking</think><answer>{answer}</answer>"


# (benchmark, id) -> response; "rule" rows are decided by the rules, "model" rows go to the server
RESPONSES = {
    ("mathvista", "1"): tagged("the middle one"),  # model: "B" -> gold B (text "4") right; rules: no option
    ("mathvista", "2"): "The count is twelve.",  # model: "12" right; rules: no number
    ("mathvista", "3"): tagged("1.5 cm"),  # rule right            -> 100 (rules 33.3)
    ("mathverse", "1"): tagged("B"),  # rule right
    ("mathverse", "2"): tagged("C"),  # rule wrong (gold B)
    ("mathverse", "3"): tagged("one half"),  # model judges 1: right
    ("mathverse", "4"): "so \\boxed{6}",  # model judges 0: wrong -> 2/4 = 50 (rules 1/4 = 25)
    ("mmmu", "validation_Art_Theory_1"): tagged("I cannot tell"),  # model replies unreadably 3 times: failed, wrong
    ("mmmu", "validation_Math_2"): tagged("3.50"),  # rule right
    ("mmmu", "validation_Math_3"): tagged("red"),  # model: B ("Other Answers"): wrong -> 33.3 (rules 33.3)
    ("mme", "0"): tagged("Maybe"),  # model: Yes, right
    ("mme", "1"): tagged("No"),  # rule right: artwork acc 100 + acc+ 100 = 200 (rules: 50 + 0)
    ("mme", "2"): tagged("It is hard to say"),  # the server fails (HTTP 500): failed, wrong
    ("mme", "3"): tagged("no"),  # rule right: code acc 50 + acc+ 0 = 50 -> 250 (rules 50 + 50 = 100)
    ("chartqa", "0"): tagged("forty-five"),  # rule wrong, never sent (ChartQA is rule-only)
    ("chartqa", "1"): tagged("2019"),  # right
    ("chartqa", "2"): tagged("Yes"),  # right -> 66.7 both
    ("mmbench", "1"): tagged("the first one"),  # model: A right
    ("mmbench", "1000001"): tagged("D"),  # rule right -> group 1 right with the model, wrong by rules
    ("mmbench", "2"): tagged("B"),
    ("mmbench", "1000002"): tagged("A"),  # group 2 right -> 100 (rules 50)
    ("mmstar", "0"): tagged("A"),  # rule right
    ("mmstar", "1"): tagged("5"),  # rule right (option C's text)
    ("mmstar", "2"): tagged("four sides"),  # model: B right -> 100 (rules 66.7)
}
SCORES = {"mathvista": 100.0, "mathverse": 50.0, "mmmu": 100 / 3, "mme": 250.0, "chartqa": 200 / 3,
          "mmbench": 100.0, "mmstar": 100.0}  # fmt: skip
RULE_SCORES = {"mathvista": 100 / 3, "mathverse": 25.0, "mmmu": 100 / 3, "mme": 100.0, "chartqa": 200 / 3,
               "mmbench": 50.0, "mmstar": 200 / 3}  # fmt: skip
# rows the model decided, rows it failed on
MODEL = {"mathvista": (2, 0), "mathverse": (2, 0), "mmmu": (1, 1), "mme": (1, 1), "chartqa": (0, 0),
         "mmbench": (1, 0), "mmstar": (1, 0)}  # fmt: skip

# the end of each case's prompt -> the server's behaviour
SCRIPT = {
    "Model response: the middle one\nExtracted answer:": ("reply", "B"),
    "Model response: The count is twelve.\nExtracted answer:": ("reply", " 12 "),
    "Model answer: one half\nJudgement:": ("reply", "1"),
    "Model answer: 6\nJudgement:": ("reply", "Judgement: 0"),
    "Answer: I cannot tell\nYour reply:": ("reply", "I do not know"),
    "Answer: red\nYour reply:": ("reply", "B"),
    "Answer: Maybe\nYour reply:": ("reply", "Yes"),
    "Answer: It is hard to say\nYour reply:": ("status", 500),
    "Answer: the first one\nYour reply:": ("reply", "A"),
    "Answer: four sides\nYour reply:": ("reply", "B."),
}


def script(payload: dict) -> tuple:
    prompt = payload["messages"][0]["content"]
    for end, behaviour in SCRIPT.items():
        if prompt.endswith(end):
            return behaviour
    return ("reply", f"UNEXPECTED PROMPT: {prompt[-80:]}")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The fixture benchmarks (examples/cpu/tiny_benchmarks.py) prepared by sophiavl.eval.prepare."""
    from sophiavl.eval.prepare import Options, prepare

    hub = fx.build_all(tmp_path_factory.mktemp("hub"))
    out = tmp_path_factory.mktemp("eval")
    for name, folder in hub.items():
        prepare(Options(benchmark=name, src=str(folder), out=str(out)))
    return out


def check_report(report: dict, protocol: str) -> None:
    assert report["protocol"] == protocol
    for name, b in report["benchmarks"].items():
        assert b["score"] == pytest.approx(SCORES[name]), name
        assert b["rule_score"] == pytest.approx(RULE_SCORES[name]), name
        assert (b["model_extracted"], b["model_failed"]) == MODEL[name], name
        assert b["protocol"] == protocol


def check_requests(fake_judge, model: str) -> None:
    prompts = [r["messages"][0]["content"] for r in fake_judge.requests]
    assert not any("UNEXPECTED" in p for p in prompts)
    # one request per sent row, plus 2 more asks of the unreadable one and 1 retry of the HTTP 500
    assert len(prompts) == 10 + 2 + 1
    assert sum(p.endswith("Answer: I cannot tell\nYour reply:") for p in prompts) == 3
    temps = [r["temperature"] for r in fake_judge.requests if r["messages"][0]["content"].endswith("cannot tell"
             "\nYour reply:")]  # fmt: skip
    assert sorted(temps) == [0.0, 0.5, 1.0]  # asked again at a higher temperature, as VLMEvalKit does
    assert {r["model"] for r in fake_judge.requests} == {model}
    # the MMMU open question goes as two options: the gold and "Other Answers"
    red = next(p for p in prompts if p.endswith("Answer: red\nYour reply:"))
    assert "A. blue B. Other Answers" in red
    # the MathVerse judge sees the question for evaluation and the standard answer
    half = next(p for p in prompts if p.endswith("Model answer: one half\nJudgement:"))
    assert "Question: Find the ratio of the two areas.\nStandard answer: \\frac{1}{2}\n" in half


def read_rows(path: Path) -> dict:
    return {(r["benchmark"], r["id"]): r for r in map(json.loads, path.read_text().splitlines())}


def check_rows(rows: dict) -> None:
    assert len(rows) == 24  # every prepared row once (MathVista's 3 included)
    mv = rows[("mathvista", "1")]
    assert mv["decided_by"] == "model" and mv["correct"] is True and mv["rule_correct"] is False
    assert (mv["extracted"], mv["gold"], mv["model_answer"], mv["model_reply"]) == ("the middle one", "B", "B", "B")
    assert rows[("mathvista", "3")]["decided_by"] == "rule" and rows[("mathvista", "3")]["answer"] == "1.5"
    failed = rows[("mme", "2")]
    assert failed["decided_by"] == "none" and failed["correct"] is False and "HTTP 500" in failed["model_error"]
    unread = rows[("mmmu", "validation_Art_Theory_1")]
    assert unread["decided_by"] == "none" and "no readable decision in 3 replies" in unread["model_error"]
    assert rows[("chartqa", "0")]["decided_by"] == "rule" and "model_reply" not in rows[("chartqa", "0")]
    assert rows[("mmstar", "1")]["answer"] == "C" and rows[("mmstar", "1")]["gold_all"] == ["C"]


def test_score_cli_with_model_extraction(data, tmp_path, fake_judge, capsys, monkeypatch):
    fake_judge.default = ("script", script)
    monkeypatch.setenv("EVAL_TEST_KEY", "sekret")  # the environment the CLI reads, not the code under test
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"benchmark": b, "id": i, "response": r}) + "\n"
                             for (b, i), r in RESPONSES.items()))  # fmt: skip
    out = tmp_path / "out" / "report.json"
    argv = ["--data", str(data), "--predictions", str(preds), "--out", str(out), "--extract-url",
            fake_judge.base_url, "--extract-model", "judge-x", "--extract-api-key-env", "EVAL_TEST_KEY",
            "--extract-retries", "1"]  # fmt: skip
    assert score_cli.main(argv) == 0
    check_report(json.loads(out.read_text()), "rules+model:judge-x")
    check_requests(fake_judge, "judge-x")
    assert {h.get("Authorization") for h in fake_judge.headers} == {"Bearer sekret"}
    check_rows(read_rows(out.with_name("rows.jsonl")))
    table = capsys.readouterr().out
    assert "| benchmark | this model | rules only | model decided |" in table
    assert "| mme | 250.0 points | 100.0 points | 1 of 2 | 2403.8 | 2306.0 | 100 % | 4 | 0 |" in table


def test_report_cli_with_model_extraction_from_a_verl_dump(data, tmp_path, fake_judge, capsys):
    fake_judge.default = ("script", script)
    dump = tmp_path / "dump"
    write_verl_dump(dump, data, RESPONSES)
    out = tmp_path / "report.json"
    argv = ["--dump", str(dump), "--data", str(data), "--out", str(out), "--extract-url", fake_judge.base_url,
            "--extract-retries", "1"]  # fmt: skip
    assert report_cli.main(argv) == 0
    check_report(json.loads(out.read_text()), "rules+model:fake-thinking-rm")  # the server's first /v1/models
    check_requests(fake_judge, "fake-thinking-rm")
    check_rows(read_rows(tmp_path / "rows.jsonl"))


def test_rules_only_rows_and_refusals(data, tmp_path, capsys, refused_url):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"benchmark": b, "id": i, "response": r}) + "\n"
                             for (b, i), r in RESPONSES.items() if b == "mme"))  # fmt: skip
    out = tmp_path / "report.json"
    assert score_cli.main(["--data", str(data), "--predictions", str(preds), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["protocol"] == "rules" and report["benchmarks"]["mme"]["score"] == pytest.approx(100.0)
    assert report["benchmarks"]["mme"]["undecided"] == 2  # "Maybe" and "It is hard to say"
    rows = read_rows(tmp_path / "rows.jsonl")
    assert [r["decided_by"] for r in rows.values()] == ["none", "rule", "none", "rule"]
    assert "rules only" not in capsys.readouterr().out  # no model: the plain table
    # a server that cannot be reached for the model name: a clear error, exit status 2
    argv = ["--data", str(data), "--predictions", str(preds), "--out", str(out), "--extract-url", refused_url]
    assert score_cli.main(argv) == 2
    assert "pass --extract-model" in capsys.readouterr().err
    # the report needs the prepared rows to ask a model
    dump = tmp_path / "dump.jsonl"
    dump.write_text(json.dumps({"benchmark": "mme", "id": "0", "acc": 1.0, "answer_format": 1.0}) + "\n")
    assert report_cli.main(["--dump", str(dump), "--out", str(out), "--extract-url", refused_url]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_read_judgement():
    assert read_judgement(" 1 ") is True and read_judgement("Judgement: 0.") is False
    assert read_judgement("yes") is None and read_judgement("10") is None


def test_client_retries_rate_limits_and_dropped_connections(fake_judge):
    import asyncio

    from sophiavl.eval.extract.client import ExtractClient

    fake_judge.push(("status", 429, {"Retry-After": "0.05"}), ("drop",), ("reply", "C"), ("status", 400))

    async def run():
        async with ExtractClient(fake_judge.base_url, "m", max_retries=2, backoff_s=0.01) as client:
            first = await client.complete("which option?")
            second = await client.complete("which option?")  # 400: not retried
            return first, second, client.stats

    first, second, stats = asyncio.run(run())
    assert (first.text, first.attempts) == ("C", 3)  # 429, dropped connection, then the reply
    assert second.text is None and second.attempts == 1 and second.error.startswith("HTTP 400")
    assert (stats.requests, stats.attempts, stats.retries, stats.failures) == (2, 4, 2, 1)


def test_report_on_a_dump_from_before_decided_by(data, tmp_path, fake_judge):
    """A dump written before compute_score returned ``decided_by``/``answer``: with the prepared rows the rules are
    rerun on each response, so the same rows reach the model and the same numbers come out."""
    fake_judge.default = ("script", script)
    path = write_verl_dump(tmp_path / "dump", data, RESPONSES)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in o.items() if k not in ("decided_by", "answer")}) + "\n"
                            for o in lines))  # fmt: skip
    out = tmp_path / "report.json"
    argv = ["--dump", str(path), "--data", str(data), "--out", str(out), "--extract-url", fake_judge.base_url,
            "--extract-model", "judge-x", "--extract-retries", "1"]  # fmt: skip
    assert report_cli.main(argv) == 0
    check_report(json.loads(out.read_text()), "rules+model:judge-x")
    rows = read_rows(tmp_path / "rows.jsonl")
    assert rows[("mmstar", "1")]["answer"] == "C" and rows[("mathvista", "3")]["decided_by"] == "rule"


def test_replies_are_read_like_vlmevalkit_reads_them():
    from sophiavl.eval.extract.model import Case, prompt_and_reader

    mc = {"problem_type": "multiple choice", "n_options": 3, "options": ["dog", "cat", "bird"], "question": "Which?"}
    prompt, read = prompt_and_reader(Case("mmbench", "a feline", "B", mc))
    assert prompt.endswith("Question: Which?\nOptions: A. dog B. cat C. bird\nAnswer: a feline\nYour reply:")
    assert read("B") == (True, "B") and read("The answer is (C).") == (False, "C")
    assert read("Z") == (False, "Z")  # the model says: no option (decided, wrong)
    assert read("B or C") is None  # two letters: unreadable, asked again
    _, read_mme = prompt_and_reader(Case("mme", "hmm", "No", {"question": "Is it red?"}))
    assert read_mme("No.") == (True, "no") and read_mme("Unknown") == (False, "unknown") and read_mme("?") is None
    _, read_mv = prompt_and_reader(Case("mathvista", "twelve", "12", {"answer_type": "integer", "question": "q"}))
    assert read_mv("12") == (True, "12") and read_mv("  ") is None
    with pytest.raises(ValueError, match="no model decides chartqa"):
        prompt_and_reader(Case("chartqa", "x", "1", {}))
