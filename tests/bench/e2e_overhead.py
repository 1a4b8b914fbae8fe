"""`make bench-e2e`: the step-time overhead of the thinking reward, measured on the CPU demo.

Runs the CPU end-to-end demo (examples/cpu/demo.py, verl's main_ppo with tiny models and a vLLM-CPU judge on loopback)
twice with the same seed, steps and sizes: recipe ``sophiavl`` (outcome + thinking reward, Trust-GRPO) and recipe
``sophiavl_grpo`` (outcome reward only, plain GRPO, no judge). From verl's per-step metrics it reports:

* ``step_ratio``: mean ``timing_s/step`` of ``sophiavl`` over mean ``timing_s/step`` of ``sophiavl_grpo``, steps 2
  and later (step 1 carries the warm-up);
* ``reward_wait_share``: the share of a ``sophiavl`` step spent waiting for rewards after the last rollout finished,
  mean over steps 2+ of ``trust/reward_tail_s / timing_s/step``. verl 0.9.1's V1 trainer logs ``timing_s/gen``
  (the replay buffer's sampling: rollouts, streamed rewards and our trust shaping together), ``old_log_prob``,
  ``ref``, ``adv``, ``update_actor``, ``update_weights`` and ``step``; no key separates the reward tail (its
  ``timing_s/reward`` exists only with a colocated reward model, which this method cannot use), so the reward
  manager stamps each sample and the trust sampler logs ``trust/reward_tail_s``;
* ``gen_share_difference``: ``(timing_s/gen of sophiavl - timing_s/gen of sophiavl_grpo) / timing_s/step of
  sophiavl``, steps 2+ (a cross-check from verl's own keys; the two runs' policies differ after step 1).

Both runs train the same tiny policy on the same rows: the first run builds them (the demo's policy warm-up is
timed, so two builds differ), the second reuses them (the demo's ``--assets`` folder, or, with a demo without that
option, Hydra overrides of ``actor_rollout_ref.model.path`` and ``data.{train,val}_files``). The machine is shared
and step times vary between runs; the per-phase means (``timing_s/*``) of both runs are in the JSON to tell where a
difference comes from.

It takes minutes (two demo runs) and is kept out of ``make test`` and ``make bench``. Writes
``OUT/e2e_overhead.json`` (both runs' per-step metrics included) and prints the figures.

    .venv-e2e/bin/python tests/bench/e2e_overhead.py --out bench-results [--steps 4] [--workdir data/bench-e2e] \\
        [--timeout 1500] [-- HYDRA_OVERRIDE ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "cpu" / "demo.py"
RECIPES = ("sophiavl", "sophiavl_grpo")


def demo_has_assets_option() -> bool:
    """Whether examples/cpu/demo.py takes ``--assets DIR`` (rows and tiny models built once, reused when alike)."""
    out = subprocess.run([sys.executable, str(DEMO), "--help"], capture_output=True, text=True, check=False, cwd=REPO)
    return "--assets" in out.stdout


def shared_inputs(first_work: Path, assets: bool) -> tuple[list[str], list[str]]:
    """(demo options, Hydra overrides) that make a run use the rows and tiny models of the run in ``first_work``."""
    if assets:
        return ["--assets", str(first_work.parent / "assets")], []
    return [], [
        f"actor_rollout_ref.model.path={first_work / 'models' / 'policy'}",
        f"data.train_files={first_work / 'rows' / 'train.parquet'}",
        f"data.val_files={first_work / 'rows' / 'val.parquet'}",
    ]


#: Overrides of both runs, before the user's: no judge seed. vLLM-CPU 0.30 kills its engine on a sampled request
#: with a seed whose prefill is chunked ("CPU Generator does not use offset"); on GPU the seed is fine.
BENCH_OVERRIDES = ["reward.thinking_rm.seed=null"]


def run_demo(recipe: str, args: argparse.Namespace, options: list[str], overrides: list[str]) -> dict:
    """One demo run; returns its summary.json (``steps``: verl's logged metrics per step)."""
    work = args.workdir / recipe
    cmd = [
        sys.executable,
        str(DEMO),
        "--recipe",
        recipe,
        "--steps",
        str(args.steps),
        "--workdir",
        str(work),
        "--timeout",
        str(args.timeout),
        *options,
        f"data.seed={args.seed}",
        *BENCH_OVERRIDES,
        *overrides,
        *args.overrides,
    ]
    print(f"[bench-e2e] {recipe}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    rc = subprocess.run(cmd, cwd=REPO, check=False).returncode
    summary_path = work / "summary.json"
    if rc != 0 or not summary_path.exists():
        raise SystemExit(f"[bench-e2e] the demo with recipe {recipe} failed (exit {rc}); see {work / 'train.log'}")
    summary = json.loads(summary_path.read_text())
    summary["bench_wall_s"] = time.monotonic() - started
    return summary


def steady(steps: list[dict], key: str) -> list[float]:
    """``key`` of every step numbered 2 or later that logged it."""
    return [float(s[key]) for s in steps if int(s["step"]) >= 2 and s.get(key) is not None]


def figures(thinking: list[dict], grpo: list[dict]) -> dict:
    """The overhead figures from both runs' per-step metrics (see the module docstring)."""
    step_t, step_g = steady(thinking, "timing_s/step"), steady(grpo, "timing_s/step")
    if not step_t or not step_g:
        raise SystemExit("[bench-e2e] need at least 2 steps in both runs (steady state is steps 2+)")
    tails = [
        float(s["trust/reward_tail_s"]) / float(s["timing_s/step"])
        for s in thinking
        if int(s["step"]) >= 2 and s.get("trust/reward_tail_s") is not None
    ]
    gen_t, gen_g = steady(thinking, "timing_s/gen"), steady(grpo, "timing_s/gen")
    latency = steady(thinking, "trust/rm_latency_mean_s")
    mean_step_t, mean_step_g = statistics.fmean(step_t), statistics.fmean(step_g)
    phases = sorted({k for s in thinking + grpo for k in s if str(k).startswith("timing_s/")})
    return {
        "steady_steps": len(step_t),
        "step_s_sophiavl": mean_step_t,
        "step_s_sophiavl_grpo": mean_step_g,
        "step_ratio": mean_step_t / mean_step_g,
        "reward_tail_s_sophiavl": statistics.fmean(steady(thinking, "trust/reward_tail_s")) if tails else None,
        "reward_wait_share": statistics.fmean(tails) if tails else None,
        "gen_s_sophiavl": statistics.fmean(gen_t) if gen_t else None,
        "gen_s_sophiavl_grpo": statistics.fmean(gen_g) if gen_g else None,
        "gen_share_difference": (statistics.fmean(gen_t) - statistics.fmean(gen_g)) / mean_step_t
        if gen_t and gen_g
        else None,
        "judge_latency_mean_s": statistics.fmean(latency) if latency else None,
        "phases_s": {
            key: {
                "sophiavl": statistics.fmean(steady(thinking, key)) if steady(thinking, key) else None,
                "sophiavl_grpo": statistics.fmean(steady(grpo, key)) if steady(grpo, key) else None,
            }
            for key in phases
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=4, help="training steps per run (steady state: steps 2+)")
    parser.add_argument("--seed", type=int, default=1, help="data.seed of both runs")
    parser.add_argument("--workdir", type=Path, default=REPO / "data" / "bench-e2e")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds for each run's training")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both runs")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be >= 2: step 1 carries the warm-up")
    args.workdir = args.workdir.resolve()

    options, overrides = shared_inputs(args.workdir / RECIPES[0], demo_has_assets_option())
    runs = {RECIPES[0]: run_demo(RECIPES[0], args, options, [])}
    runs[RECIPES[1]] = run_demo(RECIPES[1], args, options, overrides)
    out = {
        "name": "e2e_overhead",
        "what": "CPU demo step time: sophiavl (thinking reward + Trust-GRPO) vs sophiavl_grpo (outcome only, GRPO)",
        "steps": args.steps,
        "seed": args.seed,
        "overrides": args.overrides,
        **figures(runs["sophiavl"]["steps"], runs["sophiavl_grpo"]["steps"]),
        "runs": {recipe: {"wall_s": r["bench_wall_s"], "steps": r["steps"]} for recipe, r in runs.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "e2e_overhead.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    share = out["reward_wait_share"]
    print(
        f"e2e_overhead: steady step {out['step_s_sophiavl']:.2f} s (sophiavl) vs {out['step_s_sophiavl_grpo']:.2f} s "
        f"(sophiavl_grpo) -> ratio {out['step_ratio']:.2f}; waiting for rewards after the last rollout: "
        + (f"{share:.1%} of the sophiavl step" if share is not None else "n/a")
        + f" (steps 2..{args.steps}, {out['steady_steps']} steps)"
    )
    return out


if __name__ == "__main__":
    main()
