"""Benchmark: the trust sampler's whole per-step cost against verl's plain ``ReplayBuffer.sample``, same data.

A real TransferQueue on a local CPU Ray holds 1024 finished groups of 8 trajectories (8192), written the way verl's
agent loop writes them: per-token ``rm_scores`` with ``Ro`` on the last token of a random-length response (1 to
``--tokens``), ``extra_fields["reward_extra_info"]`` with the reward manager's keys, a ``{uid}`` prompt key tagged
``finished``. Each run re-tags the prompt keys (untimed), then times one ``sample(batch_size=1024)``:

* ``verl``: verl 0.9.1's ``ReplayBuffer.sample`` (metadata listing, selection, prompt keys cleared);
* ``trust_<mode>``: ``TrustSampler.sample`` in the paper's ``joint`` mode and in ``decoupled`` mode (GDPO with
  whitening: the advantages routed row by row, the ``uid`` field rewritten): the same selection plus the
  TransferQueue read of ``rm_scores`` and ``extra_fields``, the shaping, the advantages and metrics, and the
  ``rm_scores`` rewrite;
* ``tq_floor``: after verl's ``ReplayBuffer.sample``, only the TransferQueue round trip the sampler's design needs
  (``kv_batch_get`` of ``rm_scores`` and ``extra_fields`` of the sampled keys, ``kv_batch_put`` of the unchanged
  ``rm_scores``), no shaping: the lower bound of any sampler that reads and rewrites ``rm_scores`` on the step's
  critical path.

Runs alternate; medians of wall time are reported with the ratios ``trust_<mode> / verl`` (goal: <= 1.2). Writes
``DIR/trust_sampler.json``.

    python tests/bench/bench_trust_sampler.py --out bench-results [--runs 7] [--groups 1024] [--tokens 2048]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

import ray
import torch
import transfer_queue as tq
from omegaconf import OmegaConf
from tensordict import TensorDict
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.utils.tensordict_utils import list_of_dict_to_tensordict

from sophiavl.recipes.trust_sampler import TrustSampler

GOAL = 1.2
GROUP_SIZE = 8
MODES = {"joint": {}, "decoupled": {"normalize": "decoupled"}}


def fill(groups: int, tokens: int, seed: int = 0) -> list[str]:
    """Writes the trajectories and returns the prompt uids."""
    gen = torch.Generator().manual_seed(seed)
    uids = [str(uuid.UUID(int=g + 1)) for g in range(groups)]
    chunk = 128
    for start in range(0, groups, chunk):
        keys, rows = [], []
        for uid in uids[start : start + chunk]:
            for session in range(GROUP_SIZE):
                length = int(torch.randint(1, tokens + 1, (1,), generator=gen))
                outcome = float(torch.rand(1, generator=gen) < 0.4)
                thinking = round(float(torch.rand(1, generator=gen)), 1)
                failed = float(torch.rand(1, generator=gen)) < 0.02
                rm = torch.zeros(length)
                rm[-1] = outcome
                info = {
                    "outcome": outcome,
                    "thinking": float("nan") if failed else thinking,
                    "thinking_status": 2.0 if failed else 0.0,
                    "thinking_error": 503.0 if failed else 0.0,
                    "format_ok": 1.0,
                    "rm_latency_s": 0.5,
                }
                keys.append(f"{uid}_{session}_0")
                rows.append({"uid": uid, "rm_scores": rm, "extra_fields": {"reward_extra_info": info}})
        tq.kv_batch_put(
            keys=keys,
            partition_id="train",
            fields=list_of_dict_to_tensordict(rows),
            tags=[{"status": "success", "global_steps": 1} for _ in keys],
        )
    return uids


def retag(uids: list[str]) -> None:
    tag = {"is_prompt": True, "status": "finished", "global_steps": 1}
    tq.kv_batch_put(keys=uids, partition_id="train", tags=[dict(tag) for _ in uids])


class RoundTripOnly(ReplayBuffer):
    """verl's sampling plus the bare TransferQueue round trip of the trust sampler (no shaping, values unchanged)."""

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        batch, metrics = super().sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)
        keys = list(batch.keys)
        data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["rm_scores", "extra_fields"])
        fields = TensorDict({"rm_scores": data["rm_scores"]}, batch_size=len(keys))
        tq.kv_batch_put(keys=keys, partition_id=partition_id, fields=fields)
        return batch, metrics


def build(kind: str):
    common = dict(trainer_mode="sync", trainer_config={}, max_off_policy_threshold=None, max_off_policy_strategy="drop")
    if kind == "verl":
        return ReplayBuffer(sampler_kwargs=OmegaConf.create({}), **common)
    if kind == "tq_floor":
        return RoundTripOnly(sampler_kwargs=OmegaConf.create({}), **common)
    trust = {"anneal_T": 1500, **MODES[kind.removeprefix("trust_")]}
    kwargs = {"trust_grpo": trust, "adv_estimator": "trust_grpo", "max_failure_rate": 0.5, "rm_endpoint": None}
    return TrustSampler(sampler_kwargs=OmegaConf.create(kwargs), **common)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--groups", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (8 groups x 32 tokens, 1 run): seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.groups, args.tokens = 1, 8, 32

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="sophiavl_bench_sampler")
    try:
        tq.init(
            OmegaConf.create(
                {"controller": {"polling_mode": True}, "backend": {"SimpleStorage": {"num_data_storage_units": 1}}}
            )
        )
        uids = fill(args.groups, args.tokens)
        names = ["verl", *(f"trust_{m}" for m in MODES), "tq_floor"]
        samplers = {name: build(name) for name in names}
        wall = {name: [] for name in names}
        for _ in range(args.runs + 1):  # the first round warms up and is dropped
            for name in names:
                retag(uids)
                start = time.perf_counter()
                batch, _ = samplers[name].sample(global_steps=100, partition_id="train", batch_size=args.groups)
                wall[name].append(time.perf_counter() - start)
                assert len(batch.keys) == args.groups * GROUP_SIZE, len(batch.keys)
        tq.close()
    finally:
        ray.shutdown()

    med = {name: statistics.median(times[1:]) for name, times in wall.items()}
    out = {
        "name": "trust_sampler",
        "what": "TrustSampler.sample (TQ reads, shaping, advantages, rm_scores rewrite) vs verl ReplayBuffer.sample",
        "responses": args.groups * GROUP_SIZE,
        "groups": args.groups,
        "tokens": args.tokens,
        "runs": args.runs,
        "verl_median_s": med["verl"],
        "goal": GOAL,
    }
    for name in names[1:]:
        ratio = med[name] / med["verl"]
        out[f"{name}_median_s"] = med[name]
        out[f"{name}_ratio"] = ratio
        out[f"{name}_meets_goal"] = ratio <= GOAL
        print(
            f"trust_sampler: {name} {med[name] * 1e3:.0f} ms vs verl ReplayBuffer.sample {med['verl'] * 1e3:.0f} ms "
            f"-> ratio {ratio:.2f} (goal <= {GOAL})"
        )
    out["wall_s"] = {name: times[1:] for name, times in wall.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trust_sampler.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
