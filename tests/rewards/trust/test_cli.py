"""``python -m sophiavl.rewards.trust``: one group explained as JSON, both semantics (hand-computed numbers)."""

import json
import math
import subprocess
import sys

import pytest

from sophiavl.rewards.trust.cli import main

ISSUE_ARGS = ["--outcome", "1,1,1,0,0,0,0,0", "--thinking", "0.6,0.5,0.7,0.8,0.9,0.2,0.7,0.6", "--step", "100"]


def run_cli(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_issue_command_as_subprocess():
    # the exact command of the issue, through `python -m`
    proc = subprocess.run(
        [sys.executable, "-m", "sophiavl.rewards.trust", *ISSUE_ARGS, "--semantics", "paper", "--total-steps", "1500"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out["gamma"] == pytest.approx(0.9607894391523232)  # exp(0.6 - 0.64)
    assert out["alpha_t"] == pytest.approx(0.28065209550948534)  # 0.3 * exp(-100/1500)


def test_paper(capsys):
    out = run_cli(capsys, ISSUE_ARGS)
    assert out["mu_correct"] == pytest.approx(0.6)
    assert out["mu_wrong"] == pytest.approx(0.64)
    assert out["down_weighted"] is True
    w = 0.9607894391523232 * 0.28065209550948534
    rewards = [1 + 0.6 * w, 1 + 0.5 * w, 1 + 0.7 * w, 0.8 * w, 0.9 * w, 0.2 * w, 0.7 * w, 0.6 * w]
    assert out["rewards"] == pytest.approx(rewards)
    mean = sum(rewards) / 8
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / 7)
    assert out["advantages"] == pytest.approx([(r - mean) / (std + 1e-6) for r in rewards])


def test_official_default_T_is_12000(capsys):
    out = run_cli(capsys, [*ISSUE_ARGS, "--semantics", "official"])
    # wrong answers (Ro = 0 < 0.2) get Rt = 0: mu_w = 0 -> gamma = 1 ; alpha_t = 0.3 * exp(-100/12000)
    a = 0.2975103877916628
    assert out["anneal_T"] == 12000
    assert out["gamma"] == 1.0
    assert out["mu_wrong"] == 0.0
    assert out["alpha_t"] == pytest.approx(a)
    assert out["rewards"] == pytest.approx([1 + 0.6 * a, 1 + 0.5 * a, 1 + 0.7 * a, 0, 0, 0, 0, 0])
    # correct ones: mean of the 3 is 1 + 0.6a, wrong ones 0 -> 8-sample mean m = 3(1 + 0.6a)/8
    rewards = out["rewards"]
    m = 3 * (1 + 0.6 * a) / 8
    assert sum(rewards) / 8 == pytest.approx(m)


def test_nan_anneal_and_alpha(capsys):
    out = run_cli(
        capsys,
        ["--outcome", "1,0", "--thinking", "nan,0.5", "--step", "300", "--anneal", "linear", "--alpha", "0.5"],
    )
    # alpha_t = 0.5 * (1 - 300/1500) = 0.4 ; correct side has no usable score -> mu_c null, gamma 1
    assert out["alpha_t"] == pytest.approx(0.4)
    assert out["mu_correct"] is None
    assert out["gamma"] == 1.0
    assert out["rewards"] == pytest.approx([1.0, 0.2])  # missing -> no bonus ; 0 + 0.4*0.5


def test_no_norm_by_std(capsys):
    out = run_cli(
        capsys, ["--outcome", "1,0", "--thinking", "0.5,0.5", "--step", "0", "--anneal", "none", "--no-norm-by-std"]
    )
    # R = [1.15, 0.15], mean 0.65 -> advantages +-0.5
    assert out["advantages"] == pytest.approx([0.5, -0.5])


def test_length_mismatch_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--outcome", "1,0", "--thinking", "0.5", "--step", "0"])
    assert exc.value.code == 2
    assert "--thinking has 1" in capsys.readouterr().err


GROUP_KEYS = {
    "semantics",
    "step",
    "anneal_T",
    "gamma",
    "alpha_t",
    "mu_correct",
    "mu_wrong",
    "down_weighted",
    "thinking_off",
    "rewards",
    "advantages",
}


def test_group_output_keys_unchanged(capsys):
    assert set(run_cli(capsys, ISSUE_ARGS)) == GROUP_KEYS
    assert set(run_cli(capsys, [*ISSUE_ARGS, "--trust", "group"])) == GROUP_KEYS


def test_trust_off(capsys):
    out = run_cli(capsys, [*ISSUE_ARGS, "--trust", "off"])
    a = 0.28065209550948534  # 0.3 * exp(-100/1500); gamma = 1 although mu_c = 0.6 < mu_w = 0.64
    assert out["trust"] == "off" and out["gamma"] == 1.0 and out["down_weighted"] is False
    assert out["gamma_per_response"] == [1.0] * 8
    thinking = [0.6, 0.5, 0.7, 0.8, 0.9, 0.2, 0.7, 0.6]
    assert out["thinking_mean"] == pytest.approx(thinking)
    assert out["rewards"] == pytest.approx([o + a * t for o, t in zip([1, 1, 1, 0, 0, 0, 0, 0], thinking, strict=True)])


def test_trust_variance_issue_example_as_subprocess():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sophiavl.rewards.trust",
            "--outcome",
            "1,0,1",
            "--thinking",
            "0.6/0.7/0.8,0.5/0.5/0.9,nan/0.4/0.4",
            "--step",
            "0",
            "--trust",
            "variance",
            "--anneal",
            "none",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    # var = 1/150, 8/225, 0 (population variance of the usable samples; the nan sample is left out)
    g0, g1 = math.exp(-1 / 150), math.exp(-8 / 225)
    assert out["thinking_mean"] == pytest.approx([0.7, 1.9 / 3, 0.4])
    assert out["variance"] == pytest.approx([1 / 150, 8 / 225, 0.0])
    assert out["gamma_per_response"] == pytest.approx([g0, g1, 1.0])
    assert out["rewards"] == pytest.approx([1 + g0 * 0.3 * 0.7, g1 * 0.3 * 1.9 / 3, 1 + 0.3 * 0.4])


def test_variance_single_scores_and_missing(capsys):
    out = run_cli(
        capsys,
        ["--outcome", "1,0", "--thinking", "0.5,nan/nan", "--step", "0", "--trust", "variance", "--anneal", "none"],
    )
    assert out["thinking_mean"] == [pytest.approx(0.5), None]
    assert out["variance"] == [0.0, None]
    assert out["gamma_per_response"] == [1.0, 1.0]
    assert out["rewards"] == pytest.approx([1.15, 0.0])  # 1 + 0.3 * 0.5 ; missing Rt -> R = Ro


def test_bad_sample_list_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--outcome", "1", "--thinking", "0.5/x", "--step", "0"])
    assert exc.value.code == 2
    assert "joined by '/'" in capsys.readouterr().err


# ------------------------------------------------------------------------- advantage modes (issue 19)
MODE_ARGS = ["--outcome", "1,1,0,0", "--thinking", "0.8,0.4,0.6,nan", "--step", "0", "--trust", "off"]
MODE_ARGS += ["--anneal", "none", "--alpha", "1"]
Z_RO = 0.5 / (math.sqrt(1 / 3) + 1e-6)  # Ro 1, 1, 0, 0: mean 0.5, unbiased var 1/3


def test_papo_as_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "sophiavl.rewards.trust", *MODE_ARGS, "--normalize", "papo"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    # correct responses' Rt 0.8, 0.4: +-0.2 / (sqrt(0.08) + E); wrong and failed ones: no thinking advantage
    zc = 0.2 / (math.sqrt(0.08) + 1e-6)
    assert (out["normalize"], out["gate"], out["whiten_batch"]) == ("papo", "none", False)
    assert out["advantage_outcome"] == pytest.approx([Z_RO, Z_RO, -Z_RO, -Z_RO])
    assert out["advantage_thinking"] == pytest.approx([zc, -zc, 0, 0], abs=1e-12)
    assert out["advantages"] == pytest.approx([Z_RO + zc, Z_RO - zc, -Z_RO, -Z_RO])
    assert out["rewards"] == pytest.approx([1.8, 1.4, 0.6, 0.0])


def test_decoupled_whitens_only_with_the_flag(capsys):
    zt = 0.2 / (0.2 + 1e-6)  # Rt 0.8, 0.4, 0.6: mean 0.6, std 0.2
    raw = [Z_RO + zt, Z_RO - zt, -Z_RO, -Z_RO]
    out = run_cli(capsys, [*MODE_ARGS, "--normalize", "decoupled"])
    assert out["whiten_batch"] is False
    assert out["advantages"] == pytest.approx(raw)
    out = run_cli(capsys, [*MODE_ARGS, "--normalize", "decoupled", "--whiten-batch"])
    std = math.sqrt(sum(a * a for a in raw) / 3)  # the raw advantages have mean 0
    assert out["advantages"] == pytest.approx([a / (std + 1e-6) for a in raw])


def test_gate_correct(capsys):
    out = run_cli(capsys, ["--outcome", "1,0", "--thinking", "0.8,0.6", "--step", "0", "--gate", "correct"])
    # alpha_t = 0.3 exp(0) = 0.3, gamma 1 (mu_c 0.8 >= mu_w 0.6): R' = 1.24 and 0 (gated)
    assert out["rewards"] == pytest.approx([1.24, 0.0])
    s = 1.24 / math.sqrt(2) + 1e-6  # std of two values 1.24 apart
    assert out["advantages"] == pytest.approx([0.62 / s, -0.62 / s])


def test_official_with_a_mode_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([*ISSUE_ARGS, "--semantics", "official", "--normalize", "decoupled"])
    assert exc.value.code == 2
    assert "semantics=official reproduces the released code" in capsys.readouterr().err
