"""Judge failure, stop, resume (issue 13, section 3): `demo.py --fault-after-step 1 --steps 2`, checked from outside.

The demo runs main_ppo with a checkpoint every step and the judge behind examples/cpu/judge_proxy.py, which answers the
judge calls of step 1 (train_batch_size * rollout.n of them) and goes down when step 2's first call arrives. The run
must stop on the trust sampler's failure-rate error naming the endpoint, before training on step 2. The proxy comes
back (same port), and the same command with trainer.resume_mode=auto must run step 2 from the checkpoint of step 1.
verl's file logger opens its file with "wb" (a resumed run would overwrite the first run's metrics), so each run logs
to its own file (metrics.run1.jsonl, metrics.run2.jsonl), merged by the demo into summary.json's steps.

The drill runs recipe `sophiavl_gdpo` (normalize: decoupled, batch whitening), so the same run also proves a
"beyond the paper" mode end to end: the sampler routes every row's advantage to the trust_grpo estimator through
verl's own V1 advantage path (a row that reached it unrouted would stop the run: in that mode no group uid is recorded
as shaped), on the first run and after the resume; the new trust/adv_* metrics are logged every step.

The drill is a session fixture (tests/e2e/conftest.py): tests/e2e/test_e2e_demo.py checks the external-judge topology
of `make demo` on the same run. Needs the e2e venv (skipped without it, failed under SOPHIAVL_E2E=require as
`make test` sets). About 5 minutes on 2 cores; shares the rows and tiny models of the other e2e runs (demo.py
--assets).
"""

from __future__ import annotations

import json
import math
import re

import pytest

from sophiavl_testing import e2e_harness as harness

K, N = 1, 2  # the judge goes down after step K; the run has N steps (tests/e2e/conftest.py: DRILL_K, DRILL_STEPS)
BATCH, GROUP = 4, 8  # demo.py's defaults: train_batch_size, rollout.n
ALPHA = 0.3  # algorithm.trust_grpo.alpha of recipe sophiavl


def test_first_run_stops_on_the_judge_outage_naming_the_endpoint(drill):
    summary = drill.summary
    fault = summary["fault"]
    assert fault["proxy_exit"] == 3  # the proxy went down at the first judge call of step K + 1
    first_exit, second_exit = summary["training_exits"]
    assert first_exit not in (0, 124, 125)  # it stopped by itself, with an error, neither timed out nor hung
    assert second_exit == 0
    log = (drill.work / "train.run1.log").read_text(errors="replace")
    endpoint = f"http://127.0.0.1:{summary['proxy_port']}/v1"
    # every judged response of step K + 1 failed (the reward manager's retries included)
    match = re.search(
        rf"thinking reward model at {re.escape(endpoint)}: (\d+) of (\d+) judge calls failed in this training step",
        log,
    )
    assert match, f"no failure-rate error naming {endpoint} in train.run1.log"
    assert int(match.group(1)) == int(match.group(2)) == BATCH * GROUP
    # nothing was trained or logged for step K + 1: the first run's metrics end at step K
    assert [s["step"] for s in summary["steps"] if s["run"] == "run1"] == list(range(1, K + 1))


def test_the_checkpoint_of_step_k_is_what_was_resumed(drill):
    before = drill.summary["fault"]["checkpoints_before_resume"]
    # after the first run: checkpoints of steps 1..K only, and verl's tracker points at K
    assert before == {"global_steps": list(range(1, K + 1)), "latest": K}
    # after the second run: K+1..N were added
    assert drill.summary["checkpoints"] == {"global_steps": list(range(1, N + 1)), "latest": N}
    log = (drill.work / "train.run2.log").read_text(errors="replace")
    folder = drill.work / "checkpoints" / f"global_step_{K}"
    assert folder.is_dir()
    # verl's own lines when it loads a checkpoint (trainer_base._load_checkpoint and the FSDP checkpoint manager)
    assert f"Resuming from {folder}, setting global step to {K}" in log
    assert f"Loaded model from {folder / 'actor'}/" in log
    # and it continued with the next step
    assert [s["step"] for s in drill.summary["steps"] if s["run"] == "run2"] == list(range(K + 1, N + 1))


def test_logged_steps_are_one_to_n_without_repeats_or_gaps(drill):
    assert [s["step"] for s in drill.summary["steps"]] == list(range(1, N + 1))
    # the judge server itself served each step's judgements exactly once: step K + 1's calls of the first run never
    # reached it (the proxy was down), and the resumed run asked for steps K + 1..N once each
    assert drill.summary["judge_requests"] == N * BATCH * GROUP


def _prompts(path) -> list[tuple]:
    """The prompt of every judge call the proxy logged, in order: (image digest, judge text up to the response)."""
    from sophiavl.rewards.trm.prompt import load_template

    user = load_template(None).user
    marker = user[user.index("{question}") + len("{question}") : user.index("{response}")]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["n"] for r in records] == list(range(1, len(records) + 1))
    return [(r["image"], r["text"].rsplit(marker, 1)[0]) for r in records]


def test_the_failed_step_is_redone_with_the_same_prompts_and_no_earlier_ones(drill):
    first, second = (_prompts(drill.work / f"judge_requests.run{i}.jsonl") for i in (1, 2))
    per_step = BATCH * GROUP
    # run 1: the calls of steps 1..K, then the first call of step K + 1, which tripped the outage
    assert len(first) == K * per_step + 1
    # run 2: every judgement of steps K + 1..N reached the judge; a call beyond that is the client retrying one (the
    # judge server's own count of served requests, checked above, stays exact)
    assert len(second) >= (N - K) * per_step
    # the resumed steps asked about B distinct prompts each (16 distinct rows, one epoch): in order of first
    # appearance, the first B are step K + 1's
    distinct = list(dict.fromkeys(second))
    assert len(distinct) == (N - K) * BATCH
    redone = set(distinct[:BATCH])
    # nothing lost: the prompt run 1 was asking about when the judge went down is one of the resumed step K + 1's
    # (verl restored the data loader of checkpoint K, which was saved before step K + 1 drew its prompts)
    assert first[-1] in redone
    # nothing repeated: no prompt of steps 1..K comes back after the resume
    assert not set(first[: K * per_step]) & set(second)


def test_the_resumed_run_continues_the_checkpoints_step_and_epoch(drill):
    """What resuming must preserve, on the first step the second run logged: verl's global step K + 1 (not 1), the
    annealing at that step, and the data loader's epoch (16 rows, 4 prompts a step: both steps in epoch 0)."""
    resumed = next(s for s in drill.summary["steps"] if s["run"] == "run2")
    assert resumed["step"] == resumed["training/global_step"] == K + 1
    # alpha_t = 0.3 * exp(-2 / 2) = 0.11036383235143269; a run restarted at step 1 would log 0.3 * exp(-1 / 2)
    # = 0.18195919791379003
    assert resumed["trust/alpha_t"] == pytest.approx(0.11036383235143269, rel=1e-12)
    assert [s["training/epoch"] for s in drill.summary["steps"]] == [0] * N


def test_alpha_t_follows_the_true_global_step(drill):
    for step in drill.summary["steps"]:
        # paper annealing: alpha_t = alpha * exp(-step / T), T = trainer.total_training_steps = N
        expected = ALPHA * math.exp(-step["step"] / N)
        assert step["trust/alpha_t"] == pytest.approx(expected, rel=1e-9), step["step"]


def test_resumed_steps_train_normally(drill):
    for step in drill.summary["steps"]:
        assert step["trust/rm_failed_count"] == 0
        assert step["trust/rm_requested_count"] == BATCH * GROUP
        assert math.isfinite(step["actor/pg_loss"])


def test_the_decoupled_mode_trains_with_routed_advantages(drill):
    steps = drill.summary["steps"]
    for step in steps:
        # rm_scores still carries the combined reward Ro + w Rt (verl's reward mean = the sampler's)
        assert step["critic/rewards/mean"] == pytest.approx(step["trust/reward_mean"], abs=1e-4)
        # the estimator of each process (the resumed one included) filled this step's pad figures: no pad row (32
        # rows fill verl's multiple lcm(1, 4 x 8)), and not NaN (NaN: no trust_grpo estimator ran for the batch)
        assert step["trust/pad_rows"] == 0.0 and step["trust/pad_adv_abs_max"] == 0.0, step["step"]
        # a share of the step's n responses: a whole number of them
        n = BATCH * GROUP
        assert step["trust/zero_adv_share"] * n == pytest.approx(round(step["trust/zero_adv_share"] * n), abs=1e-9)
        # whitened over the step's n responses (mean 0, unbiased std 1): the squares sum to n - 1, so the largest
        # |A| is at least sqrt((n - 1) / n); the joint mode's group z-scores carry no such bound over the batch
        if step["trust/zero_adv_share"] < 1.0:
            n = BATCH * GROUP
            largest = max(step["critic/advantages/max"], -step["critic/advantages/min"])
            assert largest >= math.sqrt((n - 1) / n) - 1e-3, step["step"]
    # some step trained on non-zero advantages
    assert any(s["critic/advantages/max"] > 0 > s["critic/advantages/min"] for s in steps)


def test_no_process_of_either_run_left_behind(drill):
    assert len(set(drill.summary["run_ids"])) == 3  # the judge's, the first and the second training run's
    harness.assert_nothing_left(drill)
