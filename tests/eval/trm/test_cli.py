"""``python -m sophiavl.eval.trm`` against the real loopback judge server (``fake_judge``), whose replies are scripted
from each request: a response text carries the score (``[score=0.7]``), the K sample scores (``[samples=...]``) or
the fault (``[fail=500|timeout|garbage]``) it should get, so every metric is checked against hand-computed values
whatever order the concurrent requests arrive in.

Held-out rows are built with the converter's own ``sft_messages`` in its output schema; the VL-RewardBench fixture is
written offline by ``datasets`` with the benchmark's features (image column as ``{bytes, path}``).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sophiavl.eval.trm.cli import main
from sophiavl.rewards.trm.client import ThinkingJudge
from sophiavl.rewards.trm.prompt import load_template, sft_messages
from sophiavl_testing.data_prep_helpers import lay_out_hub_cache

FAST = ["--timeout-s", "0.3", "--max-retries", "1", "--backoff-s", "0.01", "--backoff-max-s", "0.02"]
MARK = re.compile(r"\[(score|samples|fail)=([^\]]*)\]")


def png(colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 5), colour).save(buf, "PNG")
    return buf.getvalue()


def script(payload: dict) -> tuple:
    """The loopback judge's behaviour for one request, read from the marker in the request's user text."""
    text = payload["messages"][-1]["content"][0]["text"]
    found = MARK.findall(text)
    assert len(found) == 1, f"expected one marker in the request, got {found}"
    kind, value = found[0]
    if kind == "score":
        return ("reply", f"<answer>{value}</answer>")
    if kind == "samples":
        values = value.split(",")
        assert int(payload.get("n", 1)) == len(values), "the judge asked for a different number of samples"
        return ("choices", [f"<answer>{v}</answer>" if v != "garbage" else "no score here" for v in values])
    return {
        "500": ("status", 500),
        "timeout": ("delay", 2.0, "<answer>0.5</answer>"),
        "garbage": ("reply", "I would rather not grade this."),
    }[value]


@pytest.fixture
def judge_server(fake_judge):
    fake_judge.default = ("script", script)
    return fake_judge


def run_cli(*argv: str) -> tuple[int, dict | None]:
    out = None
    for i, arg in enumerate(argv):
        if arg == "--out":
            out = Path(argv[i + 1])
    code = main(list(argv))
    return code, (json.loads(out.read_text()) if out is not None and out.exists() else None)


# ---------------------------------------------------------------------------------------------------- pointwise

QUESTION = "<image>\nHow many red squares are there? Options: A 1, B 2"


def val_row(index: int, source: str, label: float, response: str, image: dict | None) -> dict:
    """One row as the Thinking-156k converter writes it (its messages from ``sft_messages``)."""
    question = QUESTION if image is not None else "What is 6 * 7?"
    return {
        "messages": sft_messages(question, response, image is not None, label),
        "images": [image] if image is not None else [],
        "extra_info": {"split": "val", "index": index, "id": f"row-{index}", "data_source": source, "score": label},
    }


def write_val(path: Path, tmp_path: Path) -> list[dict]:
    picture = tmp_path / "pic.png"
    picture.write_bytes(png((0, 0, 255)))
    img = {"bytes": png(), "image": None}
    by_path = {"bytes": None, "image": str(picture)}
    rows = [
        # source A: labels 0.0 0.3 0.5, predictions 0.1 0.3 0.8
        val_row(0, "A", 0.0, "<think>one</think><answer>A</answer> [score=0.1]", img),
        val_row(1, "A", 0.3, "<think>6*7=42</think><answer>42</answer> [score=0.3]", None),
        val_row(2, "A", 0.5, "<think>two</think><answer>B</answer> [score=0.8]", by_path),
        # source B: labels 0.7 1.0 0.7, predictions 0.8 0.6 0.7
        val_row(3, "B", 0.7, "<think>x</think><answer>B</answer> [score=0.8]", img),
        val_row(4, "B", 1.0, "<think>42</think><answer>42</answer> [score=0.6]", None),
        val_row(5, "B", 0.7, "<think>y</think><answer>A</answer> [score=0.7]", img),
        # failures, each excluded from every metric
        val_row(6, "A", 0.4, "<think>z</think> [fail=500]", img),
        val_row(7, "B", 0.4, "<think>z</think> [fail=timeout]", None),
        val_row(8, "B", 0.2, "<think>z</think> [fail=garbage]", img),
        val_row(9, "A", 0.9, "<think>z</think> [score=0.9]", None),  # made unreadable below
        val_row(10, "B", 0.6, "<think>z</think> [score=0.6]", {"bytes": b"not an image", "image": None}),
    ]
    rows[9]["messages"][1]["content"] = "Rate this answer: " + rows[9]["messages"][1]["content"]  # another prompt
    pq.write_table(pa.Table.from_pylist(rows), path)
    return rows


def test_pointwise_metrics_failures_and_request(judge_server, tmp_path, monkeypatch, capsys):
    data = tmp_path / "val-00000.parquet"
    rows = write_val(data, tmp_path)
    monkeypatch.setenv("EVAL_RM_KEY", "sk-eval")
    out = tmp_path / "pointwise.json"
    preds = tmp_path / "pred.jsonl"
    code, report = run_cli(
        "pointwise", "--data", str(data), "--base-url", judge_server.base_url, "--api-key-env", "EVAL_RM_KEY",
        "--constrain-output", "--max-concurrency", "4", "--out", str(out), "--predictions", str(preds), *FAST,
    )  # fmt: skip
    assert code == 0
    # the same six pairs as the hand-computed arithmetic test: MAE 0.9/6, RMSE sqrt(0.27/6), exact 2/6, within 4/6
    assert report["rows"] == 11 and report["n"] == 6 and report["failures"] == 5
    assert report["failure_kinds"] == {"bad_input": 1, "bad_row": 1, "http_500": 1, "timeout": 1, "unparseable": 1}
    assert report["mae"] == pytest.approx(0.15) and report["rmse"] == pytest.approx((0.27 / 6) ** 0.5)
    assert report["exact"] == pytest.approx(100 / 3) and report["within_0_1"] == pytest.approx(200 / 3)
    assert report["pearson"] == pytest.approx(38 / (184 / 3 * 41.5) ** 0.5)
    assert report["spearman"] == pytest.approx(8.75 / 17)
    cells = {(i, j): c for i, row in enumerate(report["confusion"]) for j, c in enumerate(row) if c}
    assert cells == {(0, 1): 1, (3, 3): 1, (5, 8): 1, (7, 8): 1, (10, 6): 1, (7, 7): 1}
    # per source: A errors 0.1 0 0.3 (index gaps 1 0 3); B errors 0.1 0.4 0 (gaps 1 4 0)
    a, b = report["sources"]["A"], report["sources"]["B"]
    assert (a["rows"], a["n"], a["failures"], b["rows"], b["n"], b["failures"]) == (5, 3, 2, 6, 3, 3)
    assert a["mae"] == pytest.approx(0.4 / 3) and b["mae"] == pytest.approx(0.5 / 3)
    assert a["exact"] == pytest.approx(100 / 3) and a["within_0_1"] == pytest.approx(200 / 3)
    assert b["exact"] == pytest.approx(100 / 3) and b["within_0_1"] == pytest.approx(200 / 3)
    assert a["failure_kinds"] == {"bad_row": 1, "http_500": 1}
    assert b["failure_kinds"] == {"bad_input": 1, "timeout": 1, "unparseable": 1}
    bad = {e["index"]: e for e in report["failure_examples"]}
    assert "differ" in bad[9]["detail"] or "not a rendering" in bad[9]["detail"]
    # a failed row is never a 0: it has no score in the predictions, and is in no metric
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    assert sorted(r["index"] for r in lines) == list(range(11))
    assert all(r["score"] is None for r in lines if r["kind"]) and sum(1 for r in lines if r["kind"]) == 5
    # what the server saw: the key from the environment, structured output, the discovered model
    assert all(h.get("Authorization") == "Bearer sk-eval" for h in judge_server.headers)
    assert all(
        p["structured_outputs"] == {"regex": r"<answer>(0(\.[0-9])?|1(\.0)?)</answer>"} for p in judge_server.requests
    )
    assert report["judge"]["model"] == "fake-thinking-rm" and all(
        p["model"] == "fake-thinking-rm" for p in judge_server.requests
    )
    # 9 rows asked (the bad row and the corrupt image never reach the server), 500 and timeout retried once
    assert len(judge_server.requests) == 9 + 2
    captured = capsys.readouterr()
    assert "pointwise: 11/11 done, 5 failed" in captured.err
    assert "TRM pointwise: 11 rows, 6 scored, 5 failed" in captured.out and "MAE 0.1500" in captured.out
    # the row's prompt is what the judge sends: system turn, user text (image token -> the image part at the end)
    row0 = [p for p in judge_server.requests if "[score=0.1]" in p["messages"][-1]["content"][0]["text"]]
    assert len(row0) == 1
    system, user = row0[0]["messages"]
    assert system == {"role": "system", "content": rows[0]["messages"][0]["content"]}
    assert user["content"][0] == {"type": "text", "text": rows[0]["messages"][1]["content"][: -len("<image>")]}
    assert user["content"][1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png()).decode()
    row2 = [p for p in judge_server.requests if "[score=0.8]" in p["messages"][-1]["content"][0]["text"]]
    from_path = "data:image/png;base64," + base64.b64encode(png((0, 0, 255))).decode()  # row 2's image file
    assert any(p["messages"][1]["content"][-1]["image_url"]["url"] == from_path for p in row2)


def test_pointwise_request_equals_the_rl_request(judge_server, tmp_path):
    """For the (question, response, image) a row was made from, the evaluation sends exactly the request Trust-GRPO's
    ThinkingJudge sends (same client, same prompt, same image part)."""
    import asyncio

    question, response = QUESTION, "<think>I count <image> two.</think><answer>B</answer> [score=0.4]"
    image = png()
    data = tmp_path / "val.parquet"
    row = {
        "messages": sft_messages(question, response, True, 0.4),
        "images": [{"bytes": image}],
        "extra_info": {"split": "val", "index": 0, "id": "r0", "data_source": "S", "score": 0.4},
    }
    pq.write_table(pa.Table.from_pylist([row]), data)
    code, report = run_cli(
        "pointwise", "--data", str(data), "--base-url", judge_server.base_url, "--model", "m", "--out",
        str(tmp_path / "o.json"), *FAST,
    )  # fmt: skip
    assert code == 0 and report["n"] == 1 and report["mae"] == 0.0

    async def rl_request():
        async with ThinkingJudge(judge_server.base_url, "m") as judge:
            return await judge.judge(question, response, image)

    assert asyncio.run(rl_request()).score == pytest.approx(0.4)
    evaluated, rl = judge_server.requests
    assert evaluated == rl


def test_pointwise_reads_the_template_it_is_given(judge_server, tmp_path):
    custom = tmp_path / "judge.txt"
    custom.write_text("Be a judge.\n---\nQ: {question}\nA: {response}\nScore it.\n")
    template = load_template(str(custom))
    row = {
        "messages": sft_messages("q?", "r [score=1.0]", False, 0.9, template),
        "images": [],
        "extra_info": {"id": "x", "data_source": "S"},
    }
    data = tmp_path / "val.parquet"
    pq.write_table(pa.Table.from_pylist([row]), data)
    common = ["pointwise", "--data", str(data), "--base-url", judge_server.base_url, *FAST]
    code, report = run_cli(*common, "--prompt-template", str(custom), "--out", str(tmp_path / "a.json"))
    assert code == 0 and report["n"] == 1 and report["mae"] == pytest.approx(0.1)
    assert judge_server.requests[-1]["messages"][0]["content"] == "Be a judge."
    # with the packaged template the row is not what the judge would send: counted, nothing scored, exit 1
    code, report = run_cli(*common, "--out", str(tmp_path / "b.json"))
    assert code == 1 and report["n"] == 0 and report["failure_kinds"] == {"bad_row": 1}
    assert report["mae"] is None and report["pearson"] is None


# ---------------------------------------------------------------------------------------------------- pairwise

VLRB_FEATURES = {
    "id": "string", "query": "string", "response": ["string"], "image": "image", "human_ranking": ["int64"],
    "models": ["string"], "judge": "string", "rationale": "string", "query_source": "string",
    "ground_truth": "string",
}  # fmt: skip


def write_vlrb(path: Path, pairs: list[tuple[str, list[str], list[int]]]) -> None:
    """A VL-RewardBench test parquet with the benchmark's features, written offline by ``datasets``."""
    from datasets import Dataset, Features, Image, Sequence, Value

    def feature(kind):
        if kind == "image":
            return Image()
        return Sequence(Value(kind[0])) if isinstance(kind, list) else Value(kind)

    features = Features({name: feature(kind) for name, kind in VLRB_FEATURES.items()})
    records = [
        {
            "id": item_id,
            "query": f"<image>\nDescribe item {i}.",
            "response": responses,
            "image": {"bytes": png((i * 20 % 256, 40, 90)), "path": f"{item_id}.png"},
            "human_ranking": ranking,
            "models": ["model-a", "model-b"],
            "judge": "human",
            "rationale": "",
            "query_source": item_id.split("_")[0],
            "ground_truth": "",
        }
        for i, (item_id, responses, ranking) in enumerate(pairs)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(records, features=features).to_parquet(str(path))


def _pair(item_id: str, better: int, first: str, second: str) -> tuple[str, list[str], list[int]]:
    return item_id, [f"first answer {first}", f"second answer {second}"], [0, 1] if better == 0 else [1, 0]


# general: right, right, wrong, tie; hallucination: right, tie, tie; reasoning: wrong, right; then 4 failures
PAIRS = [
    _pair("vlfeedback_1", 0, "[score=0.8]", "[score=0.3]"),
    _pair("wildvision-battle_1", 1, "[score=0.2]", "[score=0.9]"),
    _pair("vlfeedback_2", 0, "[score=0.4]", "[score=0.5]"),
    _pair("wildvision-battle_2", 1, "[score=0.6]", "[score=0.6]"),
    _pair("RLAIF-V_1", 1, "[score=0.1]", "[score=0.2]"),
    _pair("RLHF-V_1", 0, "[score=0.7]", "[score=0.7]"),
    _pair("hallucination_1", 0, "[score=1.0]", "[score=1.0]"),
    _pair("mathverse_1", 0, "[score=0.3]", "[score=0.9]"),
    _pair("mmmu-pro_1", 1, "[score=0.5]", "[score=0.6]"),
    _pair("vlfeedback_3", 0, "[score=0.9]", "[fail=500]"),
    _pair("RLAIF-V_2", 1, "[fail=timeout]", "[score=0.1]"),
    _pair("mathverse_2", 0, "[fail=garbage]", "[score=0.2]"),
    ("mmmu-pro_2", ["first answer [score=0.1]", "second answer [score=0.2]"], [0, 0]),  # no preferred response
]
# (general, hallucination, reasoning, overall, macro) in %, by hand (the failed pairs are in no denominator):
# half: 2.5/4, 2/3, 1/2, 5.5/9;  wrong: 2/4, 1/3, 1/2, 4/9;  exclude: 2/3, 1/1, 1/2, 4/6
EXPECTED = {
    "half": (62.5, 200 / 3, 50.0, 550 / 9, (62.5 + 200 / 3 + 50) / 3),
    "wrong": (50.0, 100 / 3, 50.0, 400 / 9, (50 + 100 / 3 + 50) / 3),
    "exclude": (200 / 3, 100.0, 50.0, 400 / 6, (200 / 3 + 100 + 50) / 3),
}


@pytest.fixture(scope="module")
def vlrb_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("VL-RewardBench")
    write_vlrb(folder / "data" / "test-00000-of-00001.parquet", PAIRS)
    return folder


def test_fixture_has_the_benchmark_schema(vlrb_folder):
    schema = pq.read_schema(vlrb_folder / "data" / "test-00000-of-00001.parquet")
    assert schema.names == list(VLRB_FEATURES)
    assert schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert schema.field("human_ranking").type == pa.list_(pa.int64())
    assert schema.field("response").type == pa.list_(pa.string())
    assert b"huggingface" in (schema.metadata or {})  # datasets' own features record, as on the hub


@pytest.mark.parametrize("tie", ["half", "wrong", "exclude"])
def test_pairwise_accuracies_under_each_tie_rule(judge_server, vlrb_folder, tmp_path, tie, capsys):
    out = tmp_path / f"pairwise-{tie}.json"
    code, report = run_cli(
        "pairwise", "--src", str(vlrb_folder), "--base-url", judge_server.base_url, "--tie", tie, "--out", str(out),
        *FAST,
    )  # fmt: skip
    assert code == 0
    general, hallucination, reasoning, overall, macro = EXPECTED[tie]
    groups = report["groups"]
    assert groups["general"]["accuracy"] == pytest.approx(general)
    assert groups["hallucination"]["accuracy"] == pytest.approx(hallucination)
    assert groups["reasoning"]["accuracy"] == pytest.approx(reasoning)
    assert report["overall"] == pytest.approx(overall) and report["macro"] == pytest.approx(macro)
    assert report["pairs"] == 13 and report["n"] == 9 and report["ties"] == 3
    assert report["tie_rate"] == pytest.approx(100 / 3) and report["tie_rule"] == tie
    assert report["failures"] == 4
    assert report["failure_kinds"] == {"bad_row": 1, "http_500": 1, "timeout": 1, "unparseable": 1}
    assert {e["id"] for e in report["failure_examples"]} == {"vlfeedback_3", "RLAIF-V_2", "mathverse_2", "mmmu-pro_2"}
    # every judged response was asked alone with the query (placeholder removed) and the pair's image
    texts = [p["messages"][-1]["content"][0]["text"] for p in judge_server.requests]
    assert all("Describe item" in t and "<image>" not in t for t in texts)
    assert len(texts) == 2 * 12 + 2  # 12 usable pairs asked twice; 500 and timeout retried once
    assert all(("first answer" in t) != ("second answer" in t) for t in texts)
    captured = capsys.readouterr()
    assert "pairwise: 13/13 done, 4 failed" in captured.err
    assert "SophiaVL-R1 TRM (3B)" in captured.out and f"overall {overall:.1f}%" in captured.out


def test_pairwise_k_samples_compare_means(judge_server, tmp_path):
    folder = tmp_path / "vlrb"
    write_vlrb(
        folder / "data" / "test-00000-of-00001.parquet",
        [
            # means 0.7 vs (0.6 + 0.7 + 0.9) / 3: a tie under greedy scoring, right with K = 3
            _pair("vlfeedback_1", 1, "[samples=0.7,0.7,0.7]", "[samples=0.6,0.7,0.9]"),
            # one unreadable sample is left out of its mean: (0.5 + 0.9) / 2 = 0.7, a tie with 0.7
            _pair("vlfeedback_2", 0, "[samples=0.5,garbage,0.9]", "[samples=0.7,0.7,0.7]"),
        ],
    )
    code, report = run_cli(
        "pairwise", "--src", str(folder / "data" / "test-00000-of-00001.parquet"), "--base-url",
        judge_server.base_url, "--samples", "3", "--temperature", "0.5", "--seed", "7", "--out",
        str(tmp_path / "k.json"), *FAST,
    )  # fmt: skip
    assert code == 0
    assert report["n"] == 2 and report["ties"] == 1 and report["samples_failed"] == 1 and report["failures"] == 0
    assert report["groups"]["general"]["accuracy"] == pytest.approx(75.0)  # (1 + 0.5) / 2
    assert report["judge"]["samples"] == 3 and report["judge"]["temperature"] == 0.5
    assert len(judge_server.requests) == 4
    assert all(p["n"] == 3 and p["temperature"] == 0.5 and p["seed"] == 7 for p in judge_server.requests)


def test_pairwise_argument_errors(judge_server, vlrb_folder, tmp_path, capsys):
    common = ["pairwise", "--base-url", judge_server.base_url, "--out", str(tmp_path / "x.json")]
    assert main([*common, "--src", str(vlrb_folder), "--samples", "3"]) == 2
    assert "needs --temperature > 0" in capsys.readouterr().err
    assert main([*common, "--src", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*common, "--src", str(tmp_path)]) == 2
    assert "no test-*.parquet" in capsys.readouterr().err
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"id": ["a"], "query": ["q"]}), wrong)
    assert main([*common, "--src", str(wrong)]) == 2
    assert "missing column" in capsys.readouterr().err
    not_parquet = tmp_path / "text.parquet"
    not_parquet.write_text("id,query\n")
    assert main([*common, "--src", str(not_parquet)]) == 2
    assert "error:" in capsys.readouterr().err
    point = ["pointwise", "--base-url", judge_server.base_url, "--out", str(tmp_path / "x.json")]
    assert main([*point, "--data", str(tmp_path / "none.parquet")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main([*point, "--data", str(wrong)]) == 2
    assert "missing column(s) ['messages', 'images']" in capsys.readouterr().err
    assert not judge_server.requests and not (tmp_path / "x.json").exists()


def test_pairwise_from_the_hub_cache_offline(judge_server, vlrb_folder, tmp_path):
    """``--src hf://MMInstruction/VL-RewardBench`` through the real CLI entry point, from a hub cache laid out here,
    with ``HF_HUB_OFFLINE=1`` (nothing is downloaded)."""
    cache = tmp_path / "hub"
    parquet = (vlrb_folder / "data" / "test-00000-of-00001.parquet").read_bytes()
    files = {"data/test-00000-of-00001.parquet": parquet, "README.md": b"card"}
    lay_out_hub_cache(cache, "MMInstruction/VL-RewardBench", files, "c" * 40)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "hf_home"))
    out = tmp_path / "hub.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sophiavl.eval.trm", "pairwise", "--src", "hf://MMInstruction/VL-RewardBench",
         "--base-url", judge_server.base_url, "--tie", "exclude", "--out", str(out), *FAST],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["data"].endswith("snapshots/" + "c" * 40 + "/data/test-00000-of-00001.parquet")
    assert report["overall"] == pytest.approx(400 / 6) and report["failures"] == 4
    assert "pairwise: 13/13 done, 4 failed" in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "sophiavl.eval.trm", "pairwise", "--src", "hf://MMInstruction/Other",
         "--base-url", judge_server.base_url, "--out", str(tmp_path / "none.json")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2 and "HF_HUB_OFFLINE=1" in missing.stderr


def test_rows_whose_prompt_the_judge_would_not_send_are_rejected():
    """A row is used only when the judge's request for the recovered question and response is the row's prompt."""
    from sophiavl.eval.trm.data import pointwise_item

    template = load_template()
    good = val_row(0, "S", 0.5, "<think>ok</think> [score=0.5]", None)
    item = pointwise_item(0, good, template)
    assert not item.error and item.label == 0.5 and item.question == "What is 6 * 7?"
    assert item.response == "<think>ok</think> [score=0.5]" and item.image is None and item.source == "S"

    def variant(change) -> str:
        row = json.loads(json.dumps(good))
        change(row["messages"])
        return pointwise_item(0, row, template).error

    # rendered without the judge's stripping of spaces and placeholders: the judge would send other text
    unstripped = template.render("  <video>What is 6 * 7?", "<think>ok</think>")
    assert "would differ" in variant(lambda m: m[1].update(content=unstripped))
    assert "would differ" in variant(lambda m: m[0].update(content="You are a strict judge."))
    assert "would differ" in variant(lambda m: m.pop(0))  # no system turn, but the template has one
    assert "no grid score" in variant(lambda m: m[2].update(content="<answer>0.75</answer>"))
    assert "no grid score" in variant(lambda m: m[2].update(content="good"))
    assert "image(s)" in variant(lambda m: m[1].update(content=m[1]["content"] + "<image>"))  # no image in the row
    assert "expected turns" in variant(lambda m: m.append({"role": "user", "content": "more"}))


def test_pointwise_on_the_converters_own_validation_rows(judge_server, tmp_path):
    """The Thinking-156k converter's real output (its embedded sample, images embedded): every validation row is
    usable, its label is the row's score, and each request carries exactly the row's prompt and image bytes."""
    from sophiavl.data_prep.thinking_156k.cli import main as convert

    assert convert(["--out", str(tmp_path / "trm"), "--val-size", "16", "--no-progress"]) == 0
    data = tmp_path / "trm" / "val-00000.parquet"
    rows = pq.read_table(data).to_pylist()
    judge_server.default = ("reply", "<answer>0.5</answer>")
    code, report = run_cli(
        "pointwise", "--data", str(data), "--base-url", judge_server.base_url, "--max-concurrency", "1",
        "--out", str(tmp_path / "p.json"), *FAST,
    )  # fmt: skip
    assert code == 0 and report["rows"] == len(rows) == report["n"] > 0 and report["failures"] == 0
    labels = [r["extra_info"]["score"] for r in rows]
    assert report["mae"] == pytest.approx(sum(abs(0.5 - y) for y in labels) / len(labels))
    assert report["pearson"] is None  # a constant judge has no correlation
    assert sum(block["rows"] for block in report["sources"].values()) == len(rows)
    assert {r["extra_info"]["data_source"] for r in rows} == set(report["sources"])
    assert any(r["images"] for r in rows) and any(not r["images"] for r in rows)
    requests = judge_server.requests  # one at a time, in row order
    assert len(requests) == len(rows)
    for row, payload in zip(rows, requests, strict=True):
        system, user = row["messages"][0], row["messages"][1]
        assert payload["messages"][0] == {"role": "system", "content": system["content"]}
        parts = payload["messages"][1]["content"]
        if row["images"]:
            assert parts[0]["text"] + "<image>" == user["content"]
            assert parts[1]["image_url"]["url"].endswith(base64.b64encode(row["images"][0]["bytes"]).decode())
        else:
            assert len(parts) == 1 and parts[0]["text"] == user["content"]


def test_pointwise_k_samples_score_the_mean(judge_server, tmp_path):
    data = tmp_path / "val.parquet"
    pq.write_table(pa.Table.from_pylist([val_row(0, "S", 0.7, "<think>a</think> [samples=0.6,0.9]", None)]), data)
    code, report = run_cli(
        "pointwise", "--data", str(data), "--base-url", judge_server.base_url, "--samples", "2", "--temperature",
        "0.7", "--out", str(tmp_path / "k.json"), *FAST,
    )  # fmt: skip
    # mean 0.75: 0.05 from the label, off the grid, compared at its nearest grid point 0.8 (one step from 0.7)
    assert code == 0 and report["n"] == 1 and report["mae"] == pytest.approx(0.05) and report["off_grid"] == 1
    assert report["exact"] == 0.0 and report["within_0_1"] == 100.0 and report["confusion"][7][8] == 1
    assert judge_server.requests[0]["n"] == 2 and judge_server.requests[0]["temperature"] == 0.7


def test_limit_reads_only_the_first_items(judge_server, vlrb_folder, tmp_path, capsys):
    out = tmp_path / "lim.json"
    code, report = run_cli(
        "pairwise", "--src", str(vlrb_folder), "--base-url", judge_server.base_url, "--limit", "3",
        "--out", str(out), "--predictions", str(tmp_path / "p.jsonl"), *FAST,
    )  # fmt: skip
    # the first three pairs: right, right, wrong (all general)
    assert code == 0 and report["pairs"] == 3 and report["n"] == 3 and len(judge_server.requests) == 6
    assert report["groups"]["general"]["accuracy"] == pytest.approx(200 / 3) and report["macro"] is None
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == ["vlfeedback_1", "vlfeedback_2", "wildvision-battle_1"]
    assert "pairwise: 3/3 done, 0 failed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["pairwise", "--src", str(vlrb_folder), "--base-url", judge_server.base_url, "--limit", "0",
              "--out", str(out)])  # fmt: skip


# ------------------------------------------------------------------------------------- re-summarising saved judgements


def _saved_pair(index: int, item_id: str, better: int, means, kind: str = "") -> dict:
    return {
        "index": index, "id": item_id, "source": "as saved", "better": better, "means": means,
        "samples_failed": 0, "kind": kind, "detail": "read timed out" if kind else "",
    }  # fmt: skip


# Saved in completion order (not index order), as a live run writes them. general: right, tie; hallucination: right;
# reasoning: wrong, tie; one failed pair.
SAVED_PAIRS = [
    _saved_pair(3, "mathverse_1", 0, [0.2, 0.5]),
    _saved_pair(0, "vlfeedback_1", 0, [0.8, 0.3]),
    _saved_pair(5, "RLHF-V_2", 1, None, kind="timeout"),
    _saved_pair(1, "wildvision-battle_1", 1, [0.6, 0.6]),
    _saved_pair(4, "mmmu-pro_1", 0, [0.5, 0.5]),
    _saved_pair(2, "RLAIF-V_1", 1, [0.1, 0.4]),
]
# (general, hallucination, reasoning, overall, macro) in %, by hand over the 5 judged pairs:
# half: 1.5/2, 1/1, 0.5/2, 3/5;  wrong: 1/2, 1/1, 0/2, 2/5;  exclude: 1/1, 1/1, 0/1, 2/3
SAVED_EXPECTED = {
    "half": (75.0, 100.0, 25.0, 60.0, 200 / 3),
    "wrong": (50.0, 100.0, 0.0, 40.0, 50.0),
    "exclude": (100.0, 100.0, 0.0, 200 / 3, 200 / 3),
}


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("tie", ["half", "wrong", "exclude"])
def test_pairwise_resummarises_saved_judgements_without_a_judge(tmp_path, refused_url, tie, capsys):
    """``--from-predictions``: the accuracies of a saved file under each tie rule, with a base URL on which nothing
    listens (a request would fail as ``connection``) or no base URL at all."""
    saved = _jsonl(tmp_path / "saved.jsonl", SAVED_PAIRS)
    url = ["--base-url", refused_url] if tie == "half" else []
    out = tmp_path / f"{tie}.json"
    code, report = run_cli("pairwise", "--from-predictions", str(saved), "--tie", tie, *url, "--out", str(out))
    assert code == 0
    general, hallucination, reasoning, overall, macro = SAVED_EXPECTED[tie]
    groups = report["groups"]
    assert groups["general"]["accuracy"] == pytest.approx(general)
    assert groups["hallucination"]["accuracy"] == pytest.approx(hallucination)
    assert groups["reasoning"]["accuracy"] == pytest.approx(reasoning)
    assert report["overall"] == pytest.approx(overall) and report["macro"] == pytest.approx(macro)
    assert report["pairs"] == 6 and report["n"] == 5 and report["ties"] == 2 and report["tie_rule"] == tie
    assert report["failures"] == 1 and report["failure_kinds"] == {"timeout": 1}  # as saved: no new request
    assert report["from_predictions"] == str(saved) and report["judge"] is None
    # the per-source table: sources from the ids (the saved "source" is not trusted), one tie in wildvision-battle
    sources = report["sources"]
    assert sorted(sources) == ["mathverse", "mmmu", "rlaif-v", "vlfeedback", "wildvision-battle"]
    assert sources["wildvision-battle"]["ties"] == 1 and sources["vlfeedback"]["accuracy"] == 100.0
    printed = capsys.readouterr().out
    assert "per source:" in printed and re.search(r"wildvision-battle\s+accuracy", printed)
    assert f"this TRM (from saved.jsonl, tie={tie})" in printed and "no judge asked" in printed


def test_a_live_runs_predictions_resummarise_to_its_numbers(judge_server, vlrb_folder, tmp_path):
    """A live run saves its judgements; re-read under another tie rule they give that rule's live numbers (the
    hand-computed ``EXPECTED``), and the judge is not asked again."""
    preds = tmp_path / "live.jsonl"
    code, _ = run_cli(
        "pairwise", "--src", str(vlrb_folder), "--base-url", judge_server.base_url, "--out",
        str(tmp_path / "live.json"), "--predictions", str(preds), *FAST,
    )  # fmt: skip
    assert code == 0
    asked = len(judge_server.requests)
    for tie in ("wrong", "exclude"):
        code, report = run_cli(
            "pairwise", "--from-predictions", str(preds), "--tie", tie, "--base-url", judge_server.base_url,
            "--out", str(tmp_path / f"{tie}.json"),
        )  # fmt: skip
        assert code == 0 and report["pairs"] == 13 and report["n"] == 9 and report["failures"] == 4
        general, hallucination, reasoning, overall, macro = EXPECTED[tie]
        assert report["groups"]["general"]["accuracy"] == pytest.approx(general)
        assert report["groups"]["hallucination"]["accuracy"] == pytest.approx(hallucination)
        assert report["overall"] == pytest.approx(overall) and report["macro"] == pytest.approx(macro)
    assert len(judge_server.requests) == asked


def test_pointwise_resummarises_saved_judgements(tmp_path, capsys):
    saved = _jsonl(
        tmp_path / "rows.jsonl",
        [
            {"index": 2, "id": "r2", "source": "B", "label": 0.2, "score": 0.6, "kind": "", "detail": ""},
            {"index": 0, "id": "r0", "source": "A", "label": 0.5, "score": 0.5, "kind": "", "detail": ""},
            {"index": 3, "id": "r3", "source": "B", "label": 0.9, "score": None, "kind": "http_500", "detail": "x"},
            {"index": 1, "id": "r1", "source": "A", "label": 0.7, "score": 0.8, "kind": "", "detail": ""},
        ],
    )
    code, report = run_cli("pointwise", "--from-predictions", str(saved), "--out", str(tmp_path / "p.json"))
    # errors 0, 0.1, 0.4: MAE 0.5/3; grid gaps 0, 1, 4: exact 1/3, within 0.1 2/3
    assert code == 0 and report["rows"] == 4 and report["n"] == 3 and report["failure_kinds"] == {"http_500": 1}
    assert report["mae"] == pytest.approx(0.5 / 3)
    assert report["exact"] == pytest.approx(100 / 3) and report["within_0_1"] == pytest.approx(200 / 3)
    assert report["sources"]["A"]["mae"] == pytest.approx(0.05) and report["sources"]["B"]["failures"] == 1
    assert "TRM pointwise: 4 rows, 3 scored, 1 failed" in capsys.readouterr().out


def test_saved_judgements_that_cannot_be_read_are_errors(tmp_path, capsys):
    out = tmp_path / "x.json"
    good = json.dumps(SAVED_PAIRS[0])
    cases = {
        "torn.jsonl": (good + "\n" + good[:30] + "\n", "torn.jsonl:2: not JSON"),
        "pointwise.jsonl": (json.dumps({"index": 0, "label": 0.5}) + "\n", "not a pairwise record"),
        "twice.jsonl": (good + "\n" + good + "\n", "twice.jsonl:2: a second record of index 3"),
        "means.jsonl": (json.dumps({**SAVED_PAIRS[0], "means": [0.2]}) + "\n", "needs means [a, b]"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert main(["pairwise", "--from-predictions", str(tmp_path / name), "--out", str(out)]) == 2, name
        assert message in capsys.readouterr().err, name
    assert main(["pairwise", "--from-predictions", str(tmp_path / "none.jsonl"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not out.exists()
    saved = _jsonl(tmp_path / "saved.jsonl", SAVED_PAIRS)
    for argv in (
        ["pairwise", "--out", str(out)],  # neither --src nor --from-predictions
        ["pairwise", "--src", "x", "--from-predictions", str(saved), "--out", str(out)],  # both
        ["pairwise", "--src", "x", "--out", str(out)],  # a live run needs --base-url
        ["pairwise", "--from-predictions", str(saved), "--predictions", str(saved), "--out", str(out)],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2, argv
    assert "--base-url" in capsys.readouterr().err
