"""Benchmark: what collecting rollouts (``reward.collect.dir``) adds to a training step.

The collection hook runs inside the reward manager, once per scored response: it builds one RolloutRecord, appends
its JSON line to the worker's shard and flushes it. Measured here, in one process:

* ``per_record_us``: the hook alone (``RolloutCollector.add``: record, JSON, write, flush) on realistic records (a
  question of ``--question-chars`` and a response of ``--response-chars`` characters; the paper's responses reach
  1024 tokens, about 4,000 characters), median over ``--rounds`` rounds of ``--records`` records;
* ``reward_off_ms`` / ``reward_on_ms``: the real ``ThinkingRewardManager.run_single`` per sample (decode, outcome
  scorer in its helper processes, no judge: the cheapest reward path, so the ratio is an upper bound), with collection
  off and on, rounds alternating; ``hook_share_of_reward`` = ``per_record_us`` / ``reward_off_ms``;
* ``step_share``: ``records_per_step * per_record_us`` against ``--step-s``, the steady-state step time of the CPU
  demo's GRPO run (``sophiavl_grpo``: 4 prompts x 8 responses = 32 records a step, 4.61 s a step measured by
  ``make bench-e2e``, docs/benchmarks.md). This counts the hook as if it ran on the step's critical path; in verl
  it runs in the reward workers while other responses are still being generated. Goal: <= 0.02 (2 %).

Writes ``DIR/collect.json``.

    python tests/bench/bench_collect.py --out bench-results [--records 2000] [--rounds 7] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from verl import DataProto

from sophiavl.rewards.collect import CollectConfig, RolloutCollector
from sophiavl.rewards.reward_manager import ThinkingRewardManager

GOAL = 0.02
DEMO_STEP_S = 4.61  # make bench-e2e, sophiavl_grpo, steps 2 to 5 (docs/benchmarks.md, e2e_overhead)
DEMO_RECORDS_PER_STEP = 32  # the CPU demo: data.train_batch_size 4 x rollout.n 8


def tokenizer():
    """A byte-level BPE built in memory (no hub)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["<think>count the bars one by one</think><answer>4</answer>"], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def texts(question_chars: int, response_chars: int) -> tuple[str, str]:
    question = ("In the bar chart, what is the value of the bar for Tuesday? " * 40)[:question_chars]
    thinking = "First I look at the axis, then I count the bars one by one and compare them. " * 80
    response = f"<think>{thinking[: max(0, response_chars - 30)]}</think><answer>4</answer>"
    return question, response


def samples(tok, question: str, response: str, n: int) -> list[DataProto]:
    """n samples as verl's agent loop hands them to the reward loop (uid and global_steps included)."""
    ids = torch.tensor(tok.encode(response))
    out = []
    for i in range(n):
        raw_prompt = np.empty(1, dtype=object)
        raw_prompt[0] = [{"role": "user", "content": question}]
        info = {"split": "train", "index": i, "problem_id": str(i), "problem_type": "numerical",
                "data_source": "bench", "question": question}  # fmt: skip
        out.append(DataProto.from_dict(
            tensors={"prompts": torch.tensor([[1, 2, 3]]), "responses": ids[None],
                     "attention_mask": torch.ones(1, 3 + len(ids), dtype=torch.long)},
            non_tensors={"data_source": np.array(["bench"], dtype=object),
                         "reward_model": np.array([{"ground_truth": "4", "style": "rule"}], dtype=object),
                         "extra_info": np.array([info], dtype=object), "raw_prompt": raw_prompt,
                         "uid": np.array([f"uid-{i // 8}"]), "global_steps": np.array([1 + i // 64])},
        ))  # fmt: skip
    return out


def manager(tok, folder: str | None) -> ThinkingRewardManager:
    cfg = OmegaConf.create({
        "algorithm": {"trust_grpo": {"semantics": "paper", "anneal_T": 100}},
        "reward": {"num_workers": 1, "thinking_rm": {"enable": False}, "collect": {"dir": folder},
                   "reward_model": {"enable": False, "model_path": None}},
    })  # fmt: skip
    return ThinkingRewardManager(cfg, tok, None)


def time_rewards(mgr: ThinkingRewardManager, batch: list[DataProto]) -> float:
    """Seconds per sample of ``run_single``, the samples one after the other in one event loop."""

    async def all_of_them():
        for data in batch:
            await mgr.run_single(data)

    start = time.perf_counter()
    asyncio.run(all_of_them())
    return (time.perf_counter() - start) / len(batch)


def time_hook(folder: str, question: str, response: str, n: int) -> float:
    """Seconds per record of ``RolloutCollector.add`` alone."""
    collector = RolloutCollector(CollectConfig(dir=folder))
    info = {"split": "train", "index": 7, "problem_id": "7", "problem_type": "numerical"}
    start = time.perf_counter()
    for i in range(n):
        collector.add(info, "bench", question, response, 1.0, step=1 + i // 64, group=f"uid-{i // 8}")
    elapsed = time.perf_counter() - start
    collector.close()
    return elapsed / n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--records", type=int, default=2000, help="records per round of the hook timing")
    parser.add_argument("--samples", type=int, default=256, help="samples per round of the reward-manager timing")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--question-chars", type=int, default=300)
    parser.add_argument("--response-chars", type=int, default=4000)
    parser.add_argument("--step-s", type=float, default=DEMO_STEP_S)
    parser.add_argument("--records-per-step", type=int, default=DEMO_RECORDS_PER_STEP)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds, the same JSON keys")
    args = parser.parse_args(argv)
    if args.smoke:
        args.records, args.samples, args.rounds = 50, 16, 2

    tok = tokenizer()
    question, response = texts(args.question_chars, args.response_chars)
    batch = samples(tok, question, response, args.samples)
    hook, off, on = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        plain, collecting = manager(tok, None), manager(tok, str(Path(tmp) / "managed"))
        time_rewards(plain, batch[:4])  # warm-up: the outcome scorer's helper processes start
        for r in range(args.rounds):
            hook.append(time_hook(str(Path(tmp) / f"hook{r}"), question, response, args.records))
            off.append(time_rewards(plain, batch))
            on.append(time_rewards(collecting, batch))
        written = collecting.collector.written
        shard_bytes = Path(collecting.collector.path).stat().st_size
    per_record = statistics.median(hook)
    result = {
        "records": args.records,
        "samples": args.samples,
        "rounds": args.rounds,
        "response_chars": len(response),
        "record_bytes": round(shard_bytes / written),
        "per_record_us": per_record * 1e6,
        "reward_off_ms": statistics.median(off) * 1e3,
        "reward_on_ms": statistics.median(on) * 1e3,
        "hook_share_of_reward": per_record / statistics.median(off),
        "step_s": args.step_s,
        "records_per_step": args.records_per_step,
        "step_share": args.records_per_step * per_record / args.step_s,
        "goal": GOAL,
        "smoke": args.smoke,
    }
    result["meets_goal"] = result["step_share"] <= GOAL
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "collect.json").write_text(json.dumps(result, indent=1) + "\n")
    share = result["hook_share_of_reward"]
    print(f"collect: {result['per_record_us']:.1f} us per record ({result['record_bytes']} B); reward per sample "
          f"{result['reward_off_ms']:.2f} ms off, {result['reward_on_ms']:.2f} ms on (hook {share:.1%}); "
          f"{args.records_per_step} records per {args.step_s:g} s step: {result['step_share']:.3%} "
          f"(goal <= {GOAL:.0%})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
