"""The fault drill is shared by two test modules, so it is a session fixture: tests/e2e/test_e2e_demo.py checks the
external-judge topology on it (the demo run of that topology would repeat the same start-up and steps), and
tests/e2e/test_e2e_resume.py checks the outage, the stop and the resume.

So is the GRPO baseline run, which also collects its rollouts (reward.collect.dir): tests/e2e/test_e2e_ablations.py
checks the baseline and the collected shards, tests/e2e/test_e2e_trm_data.py builds thinking-reward data from those
shards instead of a GRPO run of its own."""

from __future__ import annotations

import pytest

from sophiavl_testing import e2e_harness as harness

# The drill: recipe sophiavl_gdpo (the paper's recipe with normalize: decoupled, batch whitening), the judge on
# loopback behind tests/e2e/judge_proxy.py, which goes down after step DRILL_K of DRILL_STEPS.
DRILL_RECIPE = "sophiavl_gdpo"
DRILL_K, DRILL_STEPS = 1, 2
DRILL_TIMEOUT_S = 900


@pytest.fixture(scope="session")
def drill(tmp_path_factory):
    args = ["--recipe", DRILL_RECIPE, "--steps", str(DRILL_STEPS), "--fault-after-step", str(DRILL_K)]
    return harness.run_demo(tmp_path_factory, "e2e-resume", args, DRILL_TIMEOUT_S)


@pytest.fixture(scope="session")
def grpo_run(tmp_path_factory):
    """One step of recipe sophiavl_grpo (no judge), collecting every scored response (reward.collect.dir) into the
    session's ``grpo-rollouts`` folder (fixture ``grpo_rollouts``)."""
    rollouts = tmp_path_factory.getbasetemp() / "grpo-rollouts"
    args = ["--recipe", "sophiavl_grpo", "--steps", "1", f"reward.collect.dir={rollouts}"]
    return harness.run_demo(tmp_path_factory, "e2e-grpo", args)


@pytest.fixture(scope="session")
def grpo_rollouts(grpo_run, tmp_path_factory):
    """The rollout shards the GRPO run collected."""
    return tmp_path_factory.getbasetemp() / "grpo-rollouts"
