"""`make demo-trm`: the thinking reward model (TRM) trained with verl 0.9.1's SFT trainer on a CPU-only machine,
then served by vLLM and asked for a score.

Run with the e2e venv's Python (examples/cpu/setup_venv.sh makes it):

    .venv-e2e/bin/python examples/cpu/demo_trm.py [--steps 8] [--rows 8] [--batch 8] [--lr 2e-3] [--timeout 900] \
        [--deadline S] [--workdir data/e2e-trm] [HYDRA_OVERRIDE ...]

What it does, in order:
  1. prepares the embedded Thinking-156k sample (the command `make prepare-trm-data` runs) into WORKDIR/trm
     (52 training rows, 8 validation rows; a third of the rows are text-only);
  2. builds a tiny random Qwen2.5-VL with its processor, offline (examples/cpu/build_tiny_models.py; its `judge`
     model is the TRM's base);
  3. trains it: `torchrun --standalone --nproc-per-node=1 -m verl.trainer.sft_trainer +recipe=sophiavl_trm
     <CPU and tiny-size overrides>` on --rows training rows, half text-only and half with an image (mixed_rows;
     through our TRMSFTDataset; by default all rows in every step, so that the loss shows the tiny model fitting them),
     --steps optimizer steps, validation loss on 8 rows, saving the Hugging Face model (global_step_N/huggingface);
  4. serves that saved model with a real vLLM (CPU) OpenAI-compatible server on 127.0.0.1;
  5. scores one validation row through the project's ThinkingJudge client (the prompt the TRM was trained on,
     structured output `<answer>0.x</answer>`);
  6. runs the TRM evaluation CLI `python -m sophiavl.eval.trm pointwise` on the validation rows against it;
  7. stops every process it started (reusing demo.py's process-group and marker-variable clean-up), also on
     failure, Ctrl-C or timeout;
  8. prints the per-step training and validation loss (verl's file logger, metrics.jsonl), the score the served
     TRM gave and the pointwise summary, and writes WORKDIR/summary.json.

Exit status: 0 when training exited 0, logged every step, saved the HF model, the served TRM returned a score and
the pointwise evaluation exited 0; otherwise non-zero. Time limits: preparation and models 300 s each, training
--timeout, server start-up 600 s, scoring and evaluation 300 s each; --deadline S caps them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import demo  # examples/cpu/demo.py, a sibling module: its process handling, judge server start and env are reused

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable
TORCHRUN = str(Path(PY).parent / "torchrun")
VAL_SIZE = 8  # validation rows the converter keeps (6 of the sample's 8 have an image)

MARKER = demo.MARKER


def log(msg: str) -> None:
    print(f"[demo-trm {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def training_command(args, data_dir: Path, rows_file: Path, base_model: Path, ckpt_dir: Path) -> list[str]:
    overrides = [
        "+recipe=sophiavl_trm",
        # data: --rows rows of the prepared sample, text-only and image rows alternating (mixed_rows)
        f"data.train_files={rows_file}",
        f"data.val_files={data_dir / 'val-*.parquet'}",  # a glob: every shard the converter wrote (TRMSFTDataset)
        f"data.val_max_samples={args.batch}",  # one validation batch (verl's val loader drops a partial batch)
        f"data.train_batch_size={args.batch}",
        "data.num_workers=0",  # no forked loader processes on 2 cores
        f"data.max_token_len_per_gpu={args.max_length * 2}",
        f"data.max_length={args.max_length}",
        # model: the tiny Qwen2.5-VL, plain attention (no FlashAttention on CPU)
        f"model.path={base_model}",
        "+model.override_config.attn_implementation=sdpa",  # gets past: FlashAttention2 requested
        "model.use_remove_padding=False",  # same: remove-padding patches Qwen2.5-VL attention to flash-attn varlen
        "model.enable_gradient_checkpointing=False",  # no error fix: nothing to save at this size, only time
        # engine: FSDP2 (fsdp1 fails with "Cannot access accelerator device"), fp32 (no error fix: the dtype the tiny
        # model is saved in and vLLM serves), no torch.compile (no error fix: inductor's C++ build costs tens of s)
        "engine.strategy=fsdp2",
        "+engine.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
        "engine.use_torch_compile=False",
        # optimiser: a random tiny model must visibly fit a few rows in a few steps, so a large learning rate
        f"optim.lr={args.lr}",
        "optim.lr_warmup_steps_ratio=0",
        # trainer: CPU, a fixed number of steps (the recipe's epochs are for the real data), metrics to a file too
        "trainer.device=cpu",
        f"trainer.total_training_steps={args.steps}",
        f"trainer.total_epochs={args.steps}",  # an upper bound: the loop stops at total_training_steps
        "trainer.logger=[console,file]",
        f"trainer.default_local_dir={ckpt_dir}",
        "trainer.experiment_name=cpu_demo",
    ]
    return [TORCHRUN, "--standalone", "--nproc-per-node=1", "-m", "verl.trainer.sft_trainer", *overrides,
            *args.overrides]  # fmt: skip


def mixed_rows(data_dir: Path, out_dir: Path, rows: int) -> Path:
    """The training rows of the run: text-only and image rows of the converted sample, alternating, a text-only
    row first (half of each, as far as the sample has them). The converter writes image rows first, so its first
    rows alone would never mix. Writes and returns OUT_DIR/train.parquet."""
    import glob

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(f) for f in sorted(glob.glob(str(data_dir / "train-*.parquet")))])
    records = table.to_pylist()
    text = [r for r in records if not r["images"]]
    image = [r for r in records if r["images"]]
    if not text or not image:
        raise SystemExit(f"the sample has {len(text)} text-only and {len(image)} image training rows: cannot mix")
    n_text = min(len(text), rows // 2)
    picked_text, picked_image = text[:n_text], image[: rows - n_text]
    mixed = [r for pair in zip(picked_text, picked_image, strict=False) for r in pair]
    mixed += picked_text[len(picked_image) :] + picked_image[len(picked_text) :]
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(mixed, schema=table.schema), out_dir / "train.parquet")
    return out_dir / "train.parquet"


def first_val_item(data_dir: Path, template):
    """The first validation row with an image (else the first row), as the evaluation CLI reads it: the question
    and response the row's prompt was rendered from, its image and its label."""
    import pyarrow.parquet as pq

    from sophiavl.eval.trm.data import pointwise_item

    rows = pq.read_table(data_dir / "val-00000.parquet").to_pylist()
    row = next((r for r in rows if r["images"]), rows[0])
    item = pointwise_item(rows.index(row), row, template)
    if item.error:
        raise SystemExit(f"validation row {item.row_id} is unusable: {item.error}")
    return item


async def score_row(base_url: str, data_dir: Path) -> dict:
    """One judgement of the served TRM through the project's client, with the training prompt and constrained
    output (as reward.thinking_rm.constrain_output=true in Trust-GRPO)."""
    from sophiavl.rewards.trm.client import ThinkingJudge

    judge = ThinkingJudge(
        base_url, model="thinking-rm", constrain_output=True, max_tokens=16, timeout_s=120, max_retries=1
    )
    try:
        item = first_val_item(data_dir, judge.template)
        result = await judge.judge(item.question, item.response, item.image)
    finally:
        await judge.aclose()
    return {"score": result.score, "error": result.error, "reply": result.reply, "label": item.label,
            "row_id": item.row_id, "has_image": item.image is not None}  # fmt: skip


def pointwise_command(data_dir: Path, base_url: str, out: Path) -> list[str]:
    """The TRM evaluation CLI on the sample's validation rows (docs/trm-evaluation.md)."""
    return [PY, "-m", "sophiavl.eval.trm", "pointwise", "--data", str(data_dir / "val-00000.parquet"),
            "--base-url", base_url, "--model", "thinking-rm", "--constrain-output", "--max-tokens", "16",
            "--timeout-s", "120", "--out", str(out)]  # fmt: skip


def print_summary(steps: list[dict], served: dict | None, pointwise_text: str, wall_s: float) -> None:
    print("\n=== SophiaVL-R1 TRM CPU demo: per-step summary ===")
    print(f"{'step':>4}  {'train/loss':>10}  {'val/loss':>8}  {'lr':>9}  {'tokens':>6}")
    for s in steps:
        print(f"{s['step']:>4}  {demo.fmt(s.get('train/loss')):>10}  {demo.fmt(s.get('val/loss')):>8}  "
              f"{s.get('train/lr', float('nan')):>9.2e}  {demo.fmt(s.get('train/global_tokens')):>6}")  # fmt: skip
    if served:
        print(f"served TRM on validation row {served['row_id']} (image: {served['has_image']}): "
              f"score {served['score']} (reply {served['reply']!r}; label {served['label']!r})")  # fmt: skip
    if pointwise_text:
        print("pointwise evaluation of the served TRM (python -m sophiavl.eval.trm pointwise):")
        print(pointwise_text.rstrip())
    print(f"wall time: {wall_s:.0f} s\n", flush=True)


def merge_steps(records: list[dict]) -> list[dict]:
    """verl logs train and val metrics of one step as two records: one dict per step."""
    by_step: dict[int, dict] = {}
    for r in records:
        by_step.setdefault(r["step"], {}).update(r)
    return [by_step[k] for k in sorted(by_step)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="SophiaVL-R1's TRM on CPU: SFT, serve, score")
    parser.add_argument("--workdir", type=Path, default=REPO / "data" / "e2e-trm")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rows", type=int, default=8, help="training rows used (half text-only, half images)")
    parser.add_argument("--batch", type=int, default=8, help="rows per step (data.train_batch_size)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--max-length", type=int, default=8192)
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the training run")
    parser.add_argument("--deadline", type=float, help="seconds for all stages together")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for sft_trainer (they win)")
    args = parser.parse_args(argv)

    stale = ("metrics.jsonl", "train.log", "judge.log", "summary.json", "pointwise.json", "pointwise.log")
    start, run_id, work = demo.new_run(args.workdir, stale)
    ckpt = work / "ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)  # the recipe's resume_mode=auto would resume an old run
    metrics_path = work / "metrics.jsonl"
    deadline = demo.Deadline(args.deadline)
    step_env = demo.base_env(run_id)
    env = demo.training_env(step_env, metrics_path)

    signal.signal(signal.SIGTERM, demo._interrupt)
    judge = trainer = port = None
    rc, served, hf_dir, left, pointwise, pointwise_text = 1, None, None, [], None, ""
    try:
        log("1/6 preparing the embedded Thinking-156k sample (make prepare-trm-data)")
        data_dir = work / "trm"
        shutil.rmtree(data_dir, ignore_errors=True)
        demo.run_step([PY, "-m", "sophiavl.data_prep.thinking_156k", "--out", str(data_dir), "--val-size",
                       str(VAL_SIZE), "--no-progress"], step_env, deadline.cap(300))  # fmt: skip

        log("2/6 building a tiny random Qwen2.5-VL with its processor (offline)")
        demo.run_step([PY, str(HERE / "build_tiny_models.py"), str(work / "models")], step_env, deadline.cap(300))

        rows_file = mixed_rows(data_dir, work / "rows", args.rows)
        cmd = training_command(args, data_dir, rows_file, work / "models" / "judge", ckpt)
        timeout = deadline.cap(args.timeout)
        log(f"3/6 training: torchrun -m verl.trainer.sft_trainer +recipe=sophiavl_trm ... "
            f"(log: {work / 'train.log'}, timeout {timeout:.0f} s)")  # fmt: skip
        (work / "command.txt").write_text(" ".join(cmd) + "\n")
        trainer = demo.spawn(cmd, env, work / "train.log", echo=not os.environ.get("DEMO_QUIET"))
        try:
            rc = trainer.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"training did not finish within {timeout:.0f} s: stopping it")
            rc = 124
        if rc != 0:
            tail = (work / "train.log").read_text(errors="replace").splitlines()[-60:]
            raise SystemExit(f"training exited {rc}; last lines of {work / 'train.log'}:\n" + "\n".join(tail))
        hf_dir = ckpt / f"global_step_{args.steps}" / "huggingface"
        if not (hf_dir / "config.json").exists():
            raise SystemExit(f"training saved no Hugging Face model at {hf_dir}")

        port = demo.free_port()
        base = f"http://127.0.0.1:{port}"
        log(f"4/6 serving the trained TRM {hf_dir.relative_to(work)}: vLLM (CPU) OpenAI server on {base}")
        judge = demo.start_judge(hf_dir, port, step_env, work / "judge.log")
        demo.wait_ready(judge, f"{base}/v1/models", deadline.cap(600), work / "judge.log")

        log("5/6 scoring one validation row through ThinkingJudge (structured output)")
        served = asyncio.run(asyncio.wait_for(score_row(f"{base}/v1", data_dir), deadline.cap(300)))
        if served["score"] is None:
            raise SystemExit(f"the served TRM gave no score: {served}")

        log(f"6/6 pointwise evaluation of the served TRM on the {VAL_SIZE} validation rows (sophiavl.eval.trm)")
        proc = subprocess.run(pointwise_command(data_dir, f"{base}/v1", work / "pointwise.json"), cwd=REPO,
                              env=step_env, capture_output=True, text=True, timeout=deadline.cap(300))  # fmt: skip
        pointwise_text = proc.stdout
        (work / "pointwise.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise SystemExit(
                f"pointwise evaluation exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        pointwise = json.loads((work / "pointwise.json").read_text())
        rc = 0
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        rc = 130
    except SystemExit as exc:
        log(str(exc))
        rc = rc if rc not in (0, None) else 1
    finally:
        left = demo.stop_all((trainer, judge), [run_id], say=log)

    steps = merge_steps(demo.read_metrics(metrics_path))
    wall = time.time() - start
    print_summary(steps, served, pointwise_text, wall)
    summary = {
        "exit_status": rc,
        "run_id": run_id,
        "marker": MARKER,
        "steps": steps,
        "hf_model": str(hf_dir) if hf_dir else None,
        "served": served,
        "pointwise": pointwise,
        "judge_port": port,
        "leftover_pids_killed": left,
        "wall_s": wall,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    if rc == 0 and len([s for s in steps if "train/loss" in s]) < args.steps:
        log(f"training exited 0 but logged fewer than {args.steps} steps")
        rc = 1
    log(f"done: exit status {rc}; summary in {work / 'summary.json'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
