"""The fault drill is shared by two test modules, so it is a session fixture: tests/e2e/test_e2e_demo.py checks the
external-judge topology on it (the demo run of that topology would repeat the same start-up and steps), and
tests/e2e/test_e2e_resume.py checks the outage, the stop and the resume."""

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
