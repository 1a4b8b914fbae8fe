"""The ablation recipes through verl's main_ppo on CPU, and a run whose rollout sessions fail (issue 17, sections 1
and 5). Two demo runs, sharing the session's rows and tiny models (tests/support/sophiavl_testing/e2e_harness.py):

* ``sophiavl_variance`` (K = 3 judge samples, gamma_i = exp(-variance)) with ``--failed-sessions``: verl's own
  single-turn agent loop raises on purpose for every session of some groups and for session 0 of the others
  (examples/cpu/agent_loops); verl pads each step's batch, and the run must train through both steps with the pad rows
  counted (``trust/pad_rows``) and kept out of the advantages;
* ``sophiavl_grpo``: the outcome-only baseline on verl's own ``grpo`` estimator and replay buffer, no judge at all;
  it also collects its rollouts (``reward.collect.dir``; the run is the session fixture ``grpo_run`` of
  tests/e2e/conftest.py, whose shards tests/e2e/test_e2e_trm_data.py reuses).

Needs the e2e venv (skipped without it, failed under SOPHIAVL_E2E=require as `make test` sets).
"""

from __future__ import annotations

import math

import pytest

from sophiavl_testing import e2e_harness as harness

BATCH, GROUP = 4, 4  # prompts per step (demo.py's default), rollout.n (4 instead of 8: half the rollouts and judging)
# verl's batch multiple in the demo: lcm(dp 1, ppo_mini_batch_size 4 x rollout.n 4) = 16 rows
MULTIPLE = 16


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    args = ["--recipe", "sophiavl_variance", "--failed-sessions", "--steps", "2", "--group-size", str(GROUP)]
    return harness.run_demo(tmp_path_factory, "e2e-failed-variance", args)


def test_failed_sessions_train_through_every_step(failed_run):
    summary = failed_run.summary
    assert summary["exit_status"] == 0 and summary["training_exits"] == [0]
    assert [s["step"] for s in summary["steps"]] == [1, 2]
    log = (failed_run.work / "train.log").read_text(errors="replace")
    assert "failing agent loop (on purpose)" in log  # verl logged the sessions' errors and went on
    for step in summary["steps"]:
        # every group lost a session (session 0, or all of them): all BATCH sampled groups are failed groups
        assert step["trust/session_failed_groups"] == BATCH
        lost = int(step["trust/session_lost_groups"])
        assert 0 <= lost < BATCH
        rows = (BATCH - lost) * (GROUP - 1)  # the survivors: n - 1 rows per group that was not lost
        assert step["trust/rm_requested_count"] == rows  # each surviving response judged once (K samples per call)
        assert step["trust/pad_rows"] == (-rows) % MULTIPLE  # verl padded up to its multiple of 16
    assert any(s["trust/pad_rows"] > 0 for s in summary["steps"])


def test_pad_rows_stay_out_of_what_verl_trained_on(failed_run):
    steps = failed_run.summary["steps"]
    assert any(s["trust/pad_rows"] > 0 for s in steps)  # the run did pad
    for step in steps:
        # verl's reward metrics leave pad rows out (is_padding); they equal the sampler's mean shaped reward R over
        # the real rows: the pad rows' zero rewards entered neither side
        assert step["critic/rewards/mean"] == pytest.approx(step["trust/reward_mean"], abs=1e-4)
        # the largest |advantage| the trust_grpo estimator handed verl on the pad rows (their per-row value and every
        # position of their rows), read by verl after this step's advantages: exactly 0, and not NaN (the estimator
        # ran on this step's padded batch); verl's critic/* metrics could not show it (they skip pad rows)
        assert step["trust/pad_adv_abs_max"] == 0.0, step["step"]
        for key in ("critic/advantages/mean", "actor/pg_loss", "actor/grad_norm"):
            assert math.isfinite(step[key]), key


def test_variance_trust_runs_with_three_judge_samples(failed_run):
    for step in failed_run.summary["steps"]:
        assert step["trust/rm_failed_count"] == 0
        # gamma_i = exp(-variance); scores lie in [0, 1], so a variance lies in [0, 0.25] and gamma in [exp(-0.25), 1]
        assert 0.0 <= step["trust/thinking_variance_mean"] <= 0.25
        assert math.exp(-0.25) <= step["trust/gamma_response_mean"] <= 1.0
        assert step["trust/rm_sample_failed_share"] == 0.0
    assert failed_run.summary["judge_requests"] >= sum(
        s["trust/rm_requested_count"] for s in failed_run.summary["steps"]
    )


def test_grpo_baseline_runs_on_verl_grpo_without_a_judge(grpo_run):
    summary = grpo_run.summary
    assert summary["exit_status"] == 0 and [s["step"] for s in summary["steps"]] == [1]
    assert summary["judge_port"] is None and summary["judge_requests"] is None  # no judge started
    command = (grpo_run.work / "command.txt").read_text().split()
    assert "+recipe=sophiavl_grpo" in command
    (step,) = summary["steps"]
    assert not [k for k in step if k.startswith("trust/")]  # verl's replay buffer: none of our sampler's metrics
    # R = Ro: verl's reward equals its score (the outcome reward), advantages from verl's grpo
    assert step["critic/rewards/mean"] == pytest.approx(step["critic/score/mean"], abs=1e-6)
    assert 0.0 <= step["critic/score/mean"] <= 1.0
    assert math.isfinite(step["actor/pg_loss"]) and math.isfinite(step["critic/advantages/mean"])


def test_grpo_run_collects_one_record_per_scored_response(grpo_run, grpo_rollouts):
    """Issue 27, section 1: every scored training response of the run is in the shards, with its step, its group
    (verl's uid) and the identity of a row of the run's prepared parquet."""
    import pyarrow.parquet as pq

    from sophiavl.rewards.collect import ShardReadStats, iter_shard_records

    stats = ShardReadStats()
    records = list(iter_shard_records(grpo_rollouts, stats))
    assert stats.shards == 1 and stats.rejected == {}  # reward.num_workers=1: one reward worker, one shard
    assert len(records) == 1 * BATCH * 8  # 1 step x 4 prompts x rollout.n 8 (demo.py's default group size)
    assert {r.step for r in records} == {1} and {r.source for r in records} == {"grpo"}
    groups: dict[str, int] = {}
    for r in records:
        groups[r.group] = groups.get(r.group, 0) + 1
    assert sorted(groups.values()) == [8] * BATCH
    assert len({r.rid for r in records}) == len(records)
    rows = pq.read_table(grpo_run.assets / "rows" / "train.parquet", columns=["data_source", "extra_info"]).to_pylist()
    by_id = {(row["extra_info"]["split"], row["extra_info"]["index"]): row for row in rows}
    for r in records:
        row = by_id[(r.split, r.index)]
        info = row["extra_info"]
        assert (r.problem_id, r.problem_type, r.question, r.data_source) == (
            info["problem_id"], info["problem_type"], info["question"], row["data_source"])  # fmt: skip
    assert len({(r.split, r.index) for r in records}) == BATCH  # one row per group
    # the recorded Ro are the scores verl trained on: their mean is verl's critic/score/mean of the step
    (step,) = grpo_run.summary["steps"]
    assert sum(r.outcome for r in records) / len(records) == pytest.approx(step["critic/score/mean"], abs=1e-6)
    log = (grpo_run.work / "train.log").read_text(errors="replace")
    assert f"[sophiavl collect] writing scored responses to {grpo_rollouts}/rollouts-" in log


def test_no_process_left_behind(failed_run, grpo_run):
    harness.assert_nothing_left(failed_run)
    harness.assert_nothing_left(grpo_run)
