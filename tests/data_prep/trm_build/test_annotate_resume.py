"""Resume: a run of the real CLI (a subprocess) killed midway with SIGKILL, then started again, ends with the same
lines as a run that was never interrupted: the same rids, each once, the same scores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sophiavl.data_prep.trm_build.annotation import Annotation
from sophiavl_testing.annotate_helpers import grid_reply_for, read_prepared, rollout, synthetic_prepared, write_rollouts

pytestmark = pytest.mark.slow  # two CLI runs in subprocesses, one killed

N_ROWS = 40
REPEATS = 5  # rollouts per prepared row, adjacent as a GRPO group's are: 200 rollouts


def scripted(payload: dict) -> tuple:
    text = next(p["text"] for p in payload["messages"][-1]["content"] if p["type"] == "text")
    rid = text.split("step of ", 1)[1].split("</think>", 1)[0]
    return ("reply", grid_reply_for(rid))


def command(out: Path, roll: Path, prepared: Path, base_url: str) -> list[str]:
    return [
        sys.executable, "-m", "sophiavl.data_prep.trm_build", "annotate", "--rollouts", str(roll),
        "--data", str(prepared), "--base-url", base_url, "--model", "judge", "--out", str(out),
        "--concurrency", "4", "--no-progress",
    ]  # fmt: skip


def lines_of(out: Path) -> tuple[list[Annotation], int]:
    """The good lines of the folder's annotation files and the number of lines that do not parse."""
    good, bad = [], 0
    for path in out.glob("annotations-*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                good.append(Annotation.from_line(line))
            except ValueError:
                bad += 1
    return good, bad


def count_lines(out: Path) -> int:
    path = out / "annotations-judge.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_killed_run_resumes_to_the_same_result_as_an_uninterrupted_one(tmp_path, fake_judge):
    prepared = synthetic_prepared(tmp_path / "prep", N_ROWS, group_rows=8)
    extra = [row["extra_info"] for _, row in sorted(read_prepared(prepared).items())]
    records = [rollout(f"r{i}-{k}", e) for i, e in enumerate(extra) for k in range(REPEATS)]
    write_rollouts(tmp_path / "roll", records)
    fake_judge.default = ("script", scripted)
    fake_judge.latency_s = 0.02  # 200 rows / 4 in flight * 20 ms: about a second of calls

    whole = tmp_path / "whole"
    done = subprocess.run(command(whole, tmp_path / "roll", prepared, fake_judge.base_url), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(command(resumed, tmp_path / "roll", prepared, fake_judge.base_url), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while count_lines(resumed) < 50 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    killed_at = count_lines(resumed)
    assert 50 <= killed_at < len(records), f"the run was not killed midway ({killed_at} lines)"
    with (resumed / "annotations-judge.jsonl").open("ab") as fh:
        fh.write(b'{"v": 1, "rollout": {"rid": "r3')  # a line torn by the kill (whole lines may all have landed)
    asked_before = len(fake_judge.requests)

    again = subprocess.run(command(resumed, tmp_path / "roll", prepared, fake_judge.base_url), capture_output=True)
    assert again.returncode == 0, again.stderr.decode()
    report = json.loads((resumed / "annotate_report.json").read_text())
    assert report["resume"]["lines_before"] == killed_at
    assert report["resume"]["rejected"] == {"torn_line": 1}
    assert report["rows"]["skipped_done"] == killed_at
    assert report["rows"]["written"] == len(records) - killed_at
    # the rerun asked only for the rows that were missing
    assert len(fake_judge.requests) - asked_before == len(records) - killed_at

    expected, bad_whole = lines_of(whole)
    got, bad_resumed = lines_of(resumed)
    assert bad_whole == 0 and bad_resumed == 1  # the torn line stays one unreadable line
    assert sorted(a.rollout.rid for a in got) == sorted(r.rid for r in records)  # every rid, each once
    assert {a.rollout.rid: a.scores for a in got} == {a.rollout.rid: a.scores for a in expected}
    assert {a.rollout.rid: a.images for a in got} == {a.rollout.rid: a.images for a in expected}
    assert all(a.scores == [float(grid_reply_for(a.rollout.rid))] for a in got)
