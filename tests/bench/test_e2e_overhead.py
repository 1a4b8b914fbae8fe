"""The overhead figures of `make bench-e2e` (tests/bench/e2e_overhead.py) on hand-made per-step metrics."""

import pytest

import e2e_overhead


def test_figures_use_steps_two_and_later():
    fig = e2e_overhead.figures
    thinking = [
        {"step": 1, "timing_s/step": 50.0, "timing_s/gen": 40.0, "trust/reward_tail_s": 9.0},  # warm-up: ignored
        {
            "step": 2,
            "timing_s/step": 6.0,
            "timing_s/gen": 4.0,
            "trust/reward_tail_s": 1.2,
            "trust/rm_latency_mean_s": 1,
        },
        {
            "step": 3,
            "timing_s/step": 4.0,
            "timing_s/gen": 2.0,
            "trust/reward_tail_s": 0.4,
            "trust/rm_latency_mean_s": 3,
        },
    ]
    grpo = [
        {"step": 1, "timing_s/step": 30.0, "timing_s/gen": 20.0},
        {"step": 2, "timing_s/step": 2.5, "timing_s/gen": 1.0},
        {"step": 3, "timing_s/step": 1.5, "timing_s/gen": 1.0},
    ]
    out = fig(thinking, grpo)
    assert out["steady_steps"] == 2
    assert out["step_s_sophiavl"] == pytest.approx(5.0)  # (6 + 4) / 2
    assert out["step_s_sophiavl_grpo"] == pytest.approx(2.0)  # (2.5 + 1.5) / 2
    assert out["step_ratio"] == pytest.approx(2.5)
    assert out["reward_wait_share"] == pytest.approx(0.15)  # (1.2/6 + 0.4/4) / 2 = (0.2 + 0.1) / 2
    assert out["reward_tail_s_sophiavl"] == pytest.approx(0.8)
    assert out["gen_share_difference"] == pytest.approx(0.4)  # ((4 + 2)/2 - 1) / 5
    assert out["judge_latency_mean_s"] == pytest.approx(2.0)
    assert out["phases_s"]["timing_s/gen"] == {"sophiavl": pytest.approx(3.0), "sophiavl_grpo": pytest.approx(1.0)}


def test_second_run_reuses_the_first_runs_inputs(tmp_path):
    shared = e2e_overhead.shared_inputs
    assert shared(tmp_path / "sophiavl", True) == (["--assets", str(tmp_path / "assets")], [])
    options, overrides = shared(tmp_path / "sophiavl", False)
    assert options == []
    assert overrides == [
        f"actor_rollout_ref.model.path={tmp_path / 'sophiavl' / 'models' / 'policy'}",
        f"data.train_files={tmp_path / 'sophiavl' / 'rows' / 'train.parquet'}",
        f"data.val_files={tmp_path / 'sophiavl' / 'rows' / 'val.parquet'}",
    ]


def test_one_step_is_not_enough():
    with pytest.raises(SystemExit, match="steps 2"):
        e2e_overhead.figures([{"step": 1, "timing_s/step": 5.0}], [{"step": 1, "timing_s/step": 5.0}])
