"""The whole thinking-reward data build on CPU, subcommand after subcommand, as `make demo-trm-data` chains them but
without vLLM: responses imported against a real prepared parquet of the embedded sample -> ``annotate`` against the
loopback fake judge (scripted scores) -> ``balance`` -> the Thinking-156k converter with 0 rejects."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from sophiavl.data_prep.sophiavl_130k import main as prepare
from sophiavl.data_prep.thinking_156k.cli import main as convert
from sophiavl.data_prep.trm_build.cli import main

# (score the fake judge gives, how many rows): hand-picked so that each bin's selection is known
PLAN = [(0.0, 3), (0.3, 1), (0.7, 3), (1.0, 2)]
MAX_PER_BIN = 2
# with --max 2 per bin: bin [0.0, 0.1) 2 of 3, [0.3, 0.4) 1, [0.7, 0.8) 2 of 3, [0.9, 1.0] 2 of 2 -> 7 rows
SELECTED = 7


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    assert prepare(["--out", str(out), "--val-size", "16", "--no-progress"]) == 0
    return out


def test_import_annotate_balance_convert(prepared, fake_judge, tmp_path):
    table = pq.read_table(sorted(prepared.glob("train-*.parquet"))[0], columns=["images", "extra_info"]).to_pylist()
    with_image = [r["extra_info"]["index"] for r in table if r["images"]][: sum(n for _, n in PLAN)]
    lines, k = [], 0
    for score, n in PLAN:
        for _ in range(n):
            # the marker travels inside the response, so the scripted judge can answer from what it was asked
            response = f"<think>step {k}: marker={score:.1f}</think><answer>1</answer>"
            lines.append({"split": "train", "index": with_image[k], "response": response})
            k += 1
    lines.append({"split": "train", "index": with_image[0], "response": "no thinking at all marker=0.7"})
    (tmp_path / "sampled.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    rollouts, annotations, balanced, trm = (tmp_path / n for n in ("rollouts", "annotations", "balanced", "trm"))

    assert main(["import-responses", "--responses", str(tmp_path / "sampled.jsonl"), "--data", str(prepared),
                 "--out", str(rollouts)]) == 0  # fmt: skip

    def judge(payload):
        text = json.dumps(payload["messages"])
        return ("reply", re.search(r"marker=(\d\.\d)", text).group(1))

    fake_judge.default = ("script", judge)
    assert main(["annotate", "--rollouts", str(rollouts), "--data", str(prepared), "--base-url", fake_judge.base_url,
                 "--model", "fake-thinking-rm", "--out", str(annotations), "--structured-output", "off",
                 "--no-progress"]) == 0  # fmt: skip
    annotated = [json.loads(x) for p in annotations.glob("annotations-*.jsonl") for x in p.read_text().splitlines()]
    assert sorted(a["scores"][0] for a in annotated) == sorted([s for s, n in PLAN for _ in range(n)] + [0.7])
    assert all(a["images"] for a in annotated)  # each row's own image, looked up by split/index

    assert main(["balance", "--annotations", str(annotations), "--out", str(balanced), "--min", "0", "--max",
                 str(MAX_PER_BIN), "--seed", "0"]) == 0  # fmt: skip
    report = json.loads((balanced / "report" / "report.json").read_text())
    assert report["rows"]["rejected"]["bad_format"] == 1  # the response without <think>...</think>
    assert [b["selected"] for b in report["bins"]] == [2, 0, 0, 1, 0, 0, 0, 2, 0, 2]
    assert report["rows"]["selected"] == SELECTED

    assert convert(["--src", str(balanced), "--out", str(trm), "--val-size", "1", "--no-progress"]) == 0
    converted = json.loads((trm / "report.json").read_text())
    assert converted["rows_rejected"]["total"] == 0
    assert converted["rows_written"]["total"] == SELECTED
