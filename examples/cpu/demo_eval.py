"""`make demo-eval`: the whole evaluation on this CPU, with a tiny policy.

Run with the e2e venv's Python (examples/cpu/setup_venv.sh makes it):

    .venv-e2e/bin/python examples/cpu/demo_eval.py [--workdir data/e2e-eval] [--timeout 1200] [--deadline S] \
        [HYDRA_OVERRIDE ...]

What it does, in order:
  1. writes tiny copies of the seven benchmarks in their real hub layouts and schemas (examples/cpu/tiny_benchmarks.py)
     to WORKDIR/hub/<benchmark>/, and prepares each with `python -m sophiavl.eval.prepare` into WORKDIR/eval/;
  2. builds the tiny random Qwen2.5-VL policy offline (examples/cpu/build_tiny_models.py, which also writes a judge
     model that evaluation does not use), with its greedy format warm-up (--warmup-greedy) on the prepared rows whose
     answer is A or Yes: under the recipe's greedy decoding it answers "<think> check check </think><answer>A</answer>"
     to multiple-choice questions and "...<answer>Yes</answer>" to the others, right where that is the gold;
  3. runs `python -m verl.trainer.main_ppo +recipe=sophiavl_eval` on all seven prepared files, with the CPU
     overrides of `make demo` (examples/cpu/demo.py's training command, keeping only its CPU and tiny-size keys) and
     the dump in WORKDIR/dump;
  4. stops every process it started (demo.py's process-group and marker clean-up);
  5. writes WORKDIR/report.json and WORKDIR/rows.jsonl with `sophiavl.eval.report` (the prepared folder given, so
     rows without a dump line would count as missing), prints the table and the first lines of rows.jsonl (how each
     row was scored); WORKDIR/summary.json records the exit status, run id and times.

Exit status: 0 when main_ppo exited 0 and the report has every benchmark; otherwise non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import demo  # sibling modules of this folder (on sys.path when a demo runs, on pytest's path in the tests)
import tiny_benchmarks as fixtures

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PY = demo.PY

#: demo.py override keys that adapt main_ppo to this CPU and the tiny policy (kept); everything else in its training
#: command describes the training run (recipe, data, schedule, judge, logging) and is left out
CPU_KEY_PREFIXES = ("actor_rollout_ref.", "transfer_queue.", "ray_kwargs.", "trainer.nnodes", "trainer.n_gpus_per_node",
                    "trainer.device", "reward.num_workers", "reward.reward_model.enable")  # fmt: skip


class _DemoArgs(argparse.Namespace):
    """demo.py's options for its training command: the values given, ``None`` for any other (keys built from an
    option this file does not know are training keys, which cpu_overrides leaves out anyway)."""

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return None


def cpu_overrides(models: Path) -> list[str]:
    """demo.py's CPU and tiny-size overrides (one prompt per batch, one response per prompt, the tiny policy), taken
    from its own training command, so that both demos run main_ppo on this CPU the same way."""
    args = _DemoArgs(group_size=1, batch=1, steps=1, response_length=64, recipe="sophiavl_eval", rm="external",
                     overrides=[], text_only=False, workdir=models.parent, assets=models.parent)  # fmt: skip
    cmd = demo.training_command(args, models.parent, models, None)
    keys = [(o, o.lstrip("+").split("=", 1)[0]) for o in cmd[3:]]
    return [o for o, key in keys if key.startswith(CPU_KEY_PREFIXES) and key != "actor_rollout_ref.model.path"]


#: rows.jsonl lines printed after the table
SHOWN_ROWS = 8


def warmup_rows(eval_dir: Path, out: Path, answers: tuple[str, ...] = ("A", "Yes")) -> Path:
    """The prepared rows whose gold answer is one of ``answers``, as one parquet: build_tiny_models' greedy warm-up
    pairs each of their prompts with its own gold, so the policy learns the ``<think>...</think><answer>A</answer>``
    form and answers A to multiple-choice questions and Yes to the others: right where that is the gold."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = [pq.read_table(eval_dir / f"{b}.parquet") for b in fixtures.BUILDERS]
    table = pa.concat_tables(tables)
    gold = pc.struct_field(table.column("reward_model"), "ground_truth")
    pq.write_table(table.filter(pc.is_in(gold, value_set=pa.array(list(answers)))), out)
    return out


def eval_command(eval_dir: Path, models: Path, dump: Path, work: Path, extra: list[str]) -> list[str]:
    files = [str(eval_dir / f"{b}.parquet") for b in fixtures.BUILDERS]
    return [
        PY, "-m", "verl.trainer.main_ppo", "+recipe=sophiavl_eval",
        *cpu_overrides(models),
        f"actor_rollout_ref.model.path={models / 'policy'}",
        f"data.val_files=[{','.join(files)}]",
        f"data.train_files={eval_dir / 'mmstar.parquet'}",  # verl loads it even for val_only
        # tiny sizes: the tiny policy's prompts are a few hundred tokens (images at most 16 tokens by its processor)
        "data.max_prompt_length=1024",
        "data.max_response_length=64",
        "data.dataloader_num_workers=0",  # no forked dataloader processes on 2 cores
        f"trainer.validation_data_dir={dump}",
        f"trainer.default_local_dir={work / 'checkpoints'}",
        *extra,
    ]  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="sophiavl_eval on CPU: tiny benchmarks, tiny policy, one report")
    parser.add_argument("--workdir", type=Path, default=REPO / "data" / "e2e-eval")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds for the main_ppo run")
    parser.add_argument("--deadline", type=float, help="seconds for all stages together")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for main_ppo (they win)")
    args = parser.parse_args(argv)

    start, run_id, work = demo.new_run(args.workdir, ("eval.log", "report.json", "rows.jsonl", "summary.json"))
    dump = work / "dump"
    for old in dump.glob("*.jsonl"):
        old.unlink()
    deadline = demo.Deadline(args.deadline)
    step_env = demo.base_env(run_id)
    env = demo.training_env(step_env, work / "metrics.jsonl")
    signal.signal(signal.SIGTERM, demo._interrupt)
    proc, rc, left, times = None, 1, [], {}
    try:
        demo.log("1/5 tiny benchmark copies in their hub layouts, prepared with sophiavl.eval.prepare")
        hub = fixtures.build_all(work / "hub")
        for name, folder in hub.items():
            demo.run_step([PY, "-m", "sophiavl.eval.prepare", "--benchmark", name, "--src", str(folder), "--out",
                           str(work / "eval")], step_env, deadline.cap(120))  # fmt: skip
        times["prepare_s"] = time.time() - start

        demo.log("2/5 building the tiny Qwen2.5-VL policy (offline, random weights, format warm-up)")
        rows = warmup_rows(work / "eval", work / "warmup.parquet")
        demo.run_step([PY, str(HERE / "build_tiny_models.py"), str(work / "models"), "--warmup-rows", str(rows),
                       "--warmup-greedy"], step_env, deadline.cap(420))  # fmt: skip
        times["models_s"] = time.time() - start - times["prepare_s"]

        cmd = eval_command(work / "eval", work / "models", dump, work, args.overrides)
        timeout = deadline.cap(args.timeout)
        demo.log(f"3/5 main_ppo +recipe=sophiavl_eval (log: {work / 'eval.log'}, timeout {timeout:.0f} s)")
        (work / "command.txt").write_text(" ".join(cmd) + "\n")
        t0 = time.time()
        proc = demo.spawn(cmd, env, work / "eval.log", echo=not os.environ.get("DEMO_QUIET"))
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            demo.log(f"main_ppo did not finish within {timeout:.0f} s: stopping it")
            rc = 124
        times["main_ppo_s"] = time.time() - t0
        if rc != 0 and (work / "eval.log").exists():
            tail = (work / "eval.log").read_text(errors="replace").splitlines()[-60:]
            demo.log(f"main_ppo exited {rc}; last lines of {work / 'eval.log'}:\n" + "\n".join(tail))
    except KeyboardInterrupt:
        demo.log("interrupted: stopping everything")
        rc = 130
    finally:
        demo.log("4/5 stopping what the run started")
        left = demo.stop_all((proc,), [run_id])

    report = None
    if rc == 0:
        from sophiavl.eval.report import report_from_dump
        from sophiavl.eval.results import markdown_table, write_report, write_rows

        demo.log(f"5/5 report: python -m sophiavl.eval.report --dump {dump} --data {work / 'eval'}")
        report, scored = report_from_dump(dump, work / "eval")
        write_report(report, work / "report.json")
        lines = write_rows(scored, work / "rows.jsonl").read_text().splitlines()
        print("\n=== sophiavl_eval on CPU (tiny random policy: the numbers only show the pipeline works) ===")
        print(markdown_table(report), flush=True)
        print(f"\nfirst {SHOWN_ROWS} of {len(lines)} lines of {work / 'rows.jsonl'} (how each row was scored):")
        print("\n".join(lines[:SHOWN_ROWS]), flush=True)
        if set(report["benchmarks"]) != set(fixtures.BUILDERS):
            demo.log(f"the report lacks benchmarks: {sorted(set(fixtures.BUILDERS) - set(report['benchmarks']))}")
            rc = 1
    wall = time.time() - start
    summary = {"exit_status": rc, "run_id": run_id, "marker": demo.MARKER, "leftover_pids_killed": left,
               "times": times, "wall_s": wall, "report": str(work / "report.json") if report else None}  # fmt: skip
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    demo.log(f"done: exit status {rc}, wall time {wall:.0f} s; summary in {work / 'summary.json'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
