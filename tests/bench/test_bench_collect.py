"""The collection benchmark (tests/bench/bench_collect.py) runs in its smoke size and writes its figures."""

import json

import pytest

import bench_collect


def test_smoke_run_writes_every_figure(tmp_path):
    assert bench_collect.main(["--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "collect.json").read_text())
    assert result["smoke"] is True and result["rounds"] == 2
    for key in ("per_record_us", "reward_off_ms", "reward_on_ms", "hook_share_of_reward", "step_share"):
        assert result[key] > 0, key
    # the figure is the arithmetic of its parts: 32 records of per_record_us against the 4.61 s step
    assert result["step_share"] == pytest.approx(32 * result["per_record_us"] * 1e-6 / 4.61)
    assert result["record_bytes"] > result["response_chars"]  # a record holds the whole response
