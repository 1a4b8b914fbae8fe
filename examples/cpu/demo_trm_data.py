"""`make demo-trm-data`: the paper's first stage on a CPU-only machine: collect GRPO rollouts, label them with a
judge, filter and balance them, convert them and train the thinking reward model one step on them.

Run with the e2e venv's Python (examples/cpu/setup_venv.sh makes it):

    .venv-e2e/bin/python examples/cpu/demo_trm_data.py [--workdir data/e2e-trm-data] [--assets DIR] [--steps 1] \
        [--rollouts DIR] [--min 0] [--max 3] [--seed 0] [--timeout 1500] [--deadline S] [HYDRA_OVERRIDE ...]

What it does, in order (docs/trm-data-build.md, "The CPU demo"):
  1. collects: the CPU demo's GRPO run (examples/cpu/demo.py --recipe sophiavl_grpo, --steps steps, the tiny policy
     and the embedded sample's rows, built in ASSETS or reused) with reward.collect.dir=WORKDIR/rollouts; with
     --rollouts DIR it skips the run and uses shards collected before from ASSETS/rows (the e2e test passes those of
     its GRPO run);
  2. serves the tiny random judge of the demo's assets with a real vLLM (CPU) OpenAI-compatible server on 127.0.0.1
     and annotates every collected response: `python -m sophiavl.data_prep.trm_build annotate` with the labelling
     prompt, the row's image, and structured output restricted to the eleven grid values (a random judge answers
     on the grid only when vLLM holds it there); the judge is stopped afterwards;
  3. filters and balances: `... trm_build balance --min MIN --max MAX` over the paper's ten score bins (bins this small
     suit the demo's few dozen rows), which prints the per-bin table and draws the histogram;
  4. converts the result: `python -m sophiavl.data_prep.thinking_156k --src WORKDIR/balanced` (0 rejects expected);
  5. trains one SFT step of `+recipe=sophiavl_trm` on it (examples/cpu/demo_trm.py's torchrun command, the demo's
     tiny Qwen2.5-VL judge as the base);
  6. stops every process it started, also on failure, Ctrl-C or timeout, and writes WORKDIR/summary.json.

Exit status: 0 when every stage succeeded (conversion without rejects, one SFT step logged); otherwise non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import demo  # examples/cpu/demo.py: process handling, the judge server, the environment
import demo_trm  # examples/cpu/demo_trm.py: the SFT command of the TRM

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable
MARKER = demo.MARKER
JUDGE_NAME = "thinking-rm"  # the name demo.start_judge serves the judge under


def log(msg: str) -> None:
    print(f"[demo-trm-data {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def tool(args: list[str], env: dict, timeout: float, log_path: Path) -> subprocess.CompletedProcess:
    """Runs ``python -m ARGS`` in the repository, its output into log_path (and returned); raises SystemExit with
    the output's tail when it does not exit 0 within ``timeout`` seconds."""
    try:
        proc = subprocess.run([PY, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(
            f"{args[0]} {args[1] if len(args) > 1 else ''} did not finish within {timeout:.0f} s"
        ) from None
    log_path.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc


def collect(args, assets: Path, rollouts: Path, deadline: demo.Deadline) -> dict:
    """Step 1: the CPU demo's GRPO run, collecting into ``rollouts``; returns its summary."""
    grpo = args.workdir.resolve() / "grpo"
    cmd = [PY, str(HERE / "demo.py"), "--workdir", str(grpo), "--assets", str(assets), "--recipe", "sophiavl_grpo",
           "--steps", str(args.steps), "--deadline", str(max(60.0, deadline.cap(args.timeout) - 60)),
           f"reward.collect.dir={rollouts}"]  # fmt: skip
    demo.run_step(cmd, dict(os.environ), deadline.cap(args.timeout))
    return json.loads((grpo / "summary.json").read_text())


def annotate_command(rollouts: Path, rows: Path, base_url: str, out: Path) -> list[str]:
    """The annotation command: the demo judge, sampled at temperature 1 with a fixed seed (as the CPU demo's RL
    judge: a random judge's scores then differ between responses and repeat between runs), on the grid."""
    return ["sophiavl.data_prep.trm_build", "annotate", "--rollouts", str(rollouts), "--data", str(rows),
            "--base-url", base_url, "--model", JUDGE_NAME, "--out", str(out), "--structured-output", "on",
            "--temperature", "1.0", "--seed", str(demo.JUDGE_SEED), "--max-tokens", "8", "--concurrency", "8",
            "--timeout-s", "120", "--max-retries", "1", "--no-progress"]  # fmt: skip


def sft(args, data_dir: Path, base_model: Path, work: Path, env: dict, deadline: demo.Deadline) -> list[dict]:
    """Step 5: one optimizer step of +recipe=sophiavl_trm on the converted rows; returns verl's logged steps."""
    sft_args = argparse.Namespace(steps=1, batch=args.batch, lr=2e-3, max_length=8192, overrides=args.overrides)
    ckpt = work / "ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)  # the recipe's resume_mode=auto would resume an old run
    cmd = demo_trm.training_command(sft_args, data_dir, data_dir / "train-*.parquet", base_model, ckpt)
    (work / "command.txt").write_text(" ".join(cmd) + "\n")
    trainer = demo.spawn(cmd, env, work / "train.log", echo=not os.environ.get("DEMO_QUIET"))
    try:
        rc = trainer.wait(timeout=deadline.cap(args.timeout))
    except subprocess.TimeoutExpired:
        rc = 124
    finally:
        demo.kill_group(trainer)
    if rc != 0:
        tail = (work / "train.log").read_text(errors="replace").splitlines()[-60:]
        raise SystemExit(f"SFT exited {rc}; last lines of {work / 'train.log'}:\n" + "\n".join(tail))
    return demo_trm.merge_steps(demo.read_metrics(work / "metrics.jsonl"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="SophiaVL-R1's first stage on CPU: collect, annotate, balance, SFT")
    parser.add_argument("--workdir", type=Path, default=REPO / "data" / "e2e-trm-data")
    parser.add_argument("--assets", type=Path, help="the CPU demo's rows and tiny models (built there, or reused)")
    parser.add_argument("--steps", type=int, default=1, help="GRPO steps that collect")
    parser.add_argument("--rollouts", type=Path, help="use these collected shards (from ASSETS/rows) instead of a run")
    parser.add_argument("--min", type=int, default=0, help="balance: rows wanted per bin (fewer: reported short)")
    parser.add_argument("--max", type=int, default=3, help="balance: rows kept per bin at most")
    parser.add_argument("--seed", type=int, default=0, help="balance: sampling seed")
    parser.add_argument("--val-size", type=int, default=4, help="converted rows kept for validation (at most half)")
    parser.add_argument("--batch", type=int, default=4, help="SFT rows per step (at most the validation rows)")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds for each long stage")
    parser.add_argument("--deadline", type=float, help="seconds for all stages together")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the SFT step (they win)")
    args = parser.parse_args(argv)

    stale = ("metrics.jsonl", "train.log", "judge.log", "summary.json", "command.txt")
    start, run_id, work = demo.new_run(args.workdir, stale)
    assets = (args.assets or work / "assets").resolve()
    rollouts = args.rollouts.resolve() if args.rollouts else work / "rollouts"
    deadline = demo.Deadline(args.deadline)
    step_env = demo.base_env(run_id)
    signal.signal(signal.SIGTERM, demo._interrupt)
    judge = port = None
    rc, left, stages, summary = 1, [], {}, {}
    try:
        t = time.time()
        if args.rollouts:
            log(f"1/5 using the rollouts collected in {rollouts} (rows and models in {assets})")
        else:
            shutil.rmtree(rollouts, ignore_errors=True)
            log(f"1/5 collecting: the CPU demo's GRPO run (sophiavl_grpo, {args.steps} step(s)), "
                f"reward.collect.dir={rollouts}")  # fmt: skip
            summary["grpo"] = {k: collect(args, assets, rollouts, deadline).get(k) for k in ("exit_status", "wall_s")}
        from sophiavl.rewards.collect import ShardReadStats, iter_shard_records

        read = ShardReadStats()
        summary["records"] = sum(1 for _ in iter_shard_records(rollouts, read))
        summary["shards"], summary["shard_rejects"] = read.shards, read.rejected
        if not summary["records"]:
            raise SystemExit(f"no rollout records in {rollouts}")
        stages["collect_s"] = time.time() - t

        t = time.time()
        port = demo.free_port()
        base = f"http://127.0.0.1:{port}"
        log(f"2/5 annotating {summary['records']} responses with the tiny judge on vLLM (CPU) at {base}")
        judge = demo.start_judge(assets / "models" / "judge", port, step_env, work / "judge.log")
        demo.wait_ready(judge, f"{base}/v1/models", deadline.cap(600), work / "judge.log")
        annotations = work / "annotations"
        shutil.rmtree(annotations, ignore_errors=True)
        tool(annotate_command(rollouts, assets / "rows", f"{base}/v1", annotations), step_env,
             deadline.cap(600), work / "annotate.log")  # fmt: skip
        summary["annotate"] = json.loads((annotations / "annotate_report.json").read_text())
        demo.kill_group(judge)  # its memory back before the SFT step
        stages["annotate_s"] = time.time() - t

        t = time.time()
        balanced = work / "balanced"
        log(f"3/5 filtering and balancing over the paper's ten bins (--min {args.min} --max {args.max})")
        proc = tool(["sophiavl.data_prep.trm_build", "balance", "--annotations", str(annotations), "--out",
                     str(balanced), "--min", str(args.min), "--max", str(args.max), "--seed", str(args.seed)],
                    step_env, deadline.cap(300), work / "balance.log")  # fmt: skip
        print(proc.stdout.rstrip(), flush=True)
        summary["balance"] = json.loads((balanced / "report" / "report.json").read_text())
        summary["histogram"] = str(balanced / "report" / "histogram.png")

        # a few dozen rows: validation and batch sizes shrink with what was selected (verl drops partial batches)
        selected = summary["balance"]["rows"]["selected"]
        val_size = max(1, min(args.val_size, selected // 2))
        args.batch = max(1, min(args.batch, val_size, selected - val_size))
        log(f"4/5 converting {balanced} (python -m sophiavl.data_prep.thinking_156k, {val_size} validation rows)")
        trm = work / "trm"
        shutil.rmtree(trm, ignore_errors=True)
        tool(["sophiavl.data_prep.thinking_156k", "--src", str(balanced), "--out", str(trm), "--val-size",
              str(val_size), "--no-progress"], step_env, deadline.cap(300), work / "convert.log")  # fmt: skip
        summary["convert"] = json.loads((trm / "report.json").read_text())
        rejected = summary["convert"]["rows_rejected"]["total"]
        if rejected:
            raise SystemExit(f"the converter rejected {rejected} balanced rows: {summary['convert']['rows_rejected']}")
        stages["balance_convert_s"] = time.time() - t

        t = time.time()
        log("5/5 one SFT step of +recipe=sophiavl_trm on the converted rows (torchrun, verl.trainer.sft_trainer)")
        env = demo.training_env(step_env, work / "metrics.jsonl")
        summary["sft_steps"] = sft(args, trm, assets / "models" / "judge", work, env, deadline)
        stages["sft_s"] = time.time() - t
        rc = 0 if any("train/loss" in s for s in summary["sft_steps"]) else 1
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        rc = 130
    except SystemExit as exc:
        log(str(exc))
        rc = 1
    finally:
        left = demo.stop_all((judge,), [run_id], say=log)

    wall = time.time() - start
    summary.update({"exit_status": rc, "run_id": run_id, "run_ids": [run_id], "marker": MARKER,
                    "judge_port": port, "rollouts": str(rollouts), "stages_s": stages, "leftover_pids_killed": left,
                    "wall_s": wall})  # fmt: skip
    (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    if rc == 0:
        a, b = summary["annotate"], summary["balance"]
        print(f"\n=== thinking-reward data on CPU: {summary['records']} responses collected, "
              f"{b['rows']['selected']} rows selected, {summary['convert']['rows_written']['total']} converted "
              f"(0 rejected) ===")  # fmt: skip
        print(f"annotation report: {work / 'annotations' / 'annotate_report.json'} ({json.dumps(a)[:200]}...)")
        print(f"histogram (before and after balancing): {summary['histogram']}")
        loss = next(s["train/loss"] for s in summary["sft_steps"] if "train/loss" in s)
        print(f"one SFT step of sophiavl_trm: train/loss {loss:.4f}")
    print(f"wall time: {wall:.0f} s ({', '.join(f'{k} {v:.0f}' for k, v in stages.items())})", flush=True)
    log(f"done: exit status {rc}; summary in {work / 'summary.json'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
