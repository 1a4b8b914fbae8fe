"""Benchmark: Trust-GRPO shaping + ``trust_grpo`` advantage vs verl's built-in ``grpo`` and ``grpo_vectorized``.

Batch: 1024 groups of 8 responses (8192) by 2048 response tokens, random response lengths, uid strings as verl
passes them. "ours" times, per run: trust shaping of the 8192 (Ro, Rt) pairs (:func:`shape_rewards`, what the
trust sampler computes), recording the shaped uids, and ``compute_trust_grpo_advantage`` on the token-level
rewards. The anchors time verl 0.9.1's ``grpo`` (``compute_grpo_outcome_advantage``, a Python loop over groups) and
``grpo_vectorized`` (``compute_grpo_vectorized_outcome_advantage``) alone on the same tensors. Also timed, for
information: the shaping under ``trust=variance`` with K = 3 judge samples per response. Runs alternate, same
process, one torch thread by default (steadier on a shared machine; ``--threads 0`` keeps torch's default); the
median wall time of each is reported, and the ratios of median CPU times. Writes ``DIR/trust.json`` and prints the
ratios ours / grpo (goal: <= 0.5) and ours / grpo_vectorized (goal: <= 0.8).

Per advantage mode (docs/beyond-the-paper.md), also timed against ``grpo_vectorized``: ``mode_<name>`` is everything
a step computes in that mode: the shaping, :func:`variant_advantages` (per-response advantages and their parts,
batch whitening where on), the ``trust/adv_*`` metrics and the ``trust_grpo`` estimator, row sums in ``joint`` mode
(``joint``, ``posterior``: gate ``correct``; on the same token rewards as the anchors, the ``rm_scores`` rewrite
being the sampler's, see bench_trust_sampler.py) and the routed per-row advantages otherwise (``gdpo``: decoupled with
whitening, ``papo``), the per-row record and look-up included. Reported for information, no goal.

    python tests/bench/bench_trust.py --out bench-results [--runs 11] [--threads 1] \\
        [--groups 1024] [--group-size 8] [--tokens 2048]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, compute_grpo_vectorized_outcome_advantage

from sophiavl.recipes.trust_advantage_routing import ROUTED_ADVANTAGES
from sophiavl.recipes.trust_grpo_estimator import SHAPED_UIDS, compute_trust_grpo_advantage
from sophiavl.rewards.trust.config import TrustConfig
from sophiavl.rewards.trust.variants import advantage_metrics, variant_advantages
from sophiavl.rewards.trust.weights import shape_rewards

#: advantage modes timed per mode: name -> algorithm.trust_grpo keys
MODES = {
    "joint": {},
    "posterior": {"gate": "correct"},
    "gdpo": {"normalize": "decoupled"},
    "papo": {"normalize": "papo"},
}

GOAL = 0.5  # ours / grpo
GOAL_VECTORIZED = 0.8  # ours / grpo_vectorized


def make_batch(groups: int, group_size: int, tokens: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = groups * group_size
    uids = np.array([str(uuid.UUID(int=g + 1)) for g in range(groups) for _ in range(group_size)], dtype=object)
    outcome = (torch.rand(n, generator=gen) < 0.4).to(torch.float64)
    thinking = torch.round(torch.rand(n, generator=gen) * 10) / 10
    thinking[torch.rand(n, generator=gen) < 0.02] = float("nan")  # a few failed judge calls
    lengths = torch.randint(1, tokens + 1, (n,), generator=gen)
    mask = (torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.int64)
    token_rewards = torch.zeros(n, tokens, dtype=torch.float32)
    token_rewards[torch.arange(n), lengths - 1] = outcome.float()
    return uids, outcome, thinking, token_rewards, mask


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--groups", type=int, default=1024)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads for both sides (0: torch's default)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (16 groups x 64 tokens, 2 runs): seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.groups, args.tokens = 2, 16, 64
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    uids, outcome, thinking, token_rewards, mask = make_batch(args.groups, args.group_size, args.tokens)
    cfg = TrustConfig(semantics="paper", anneal="exp", anneal_T=1500)
    algo = {"norm_adv_by_std_in_grpo": True}

    def ours():
        result = shape_rewards(outcome, thinking, uids, 100, cfg)
        SHAPED_UIDS.add(set(uids.tolist()))
        adv, _ = compute_trust_grpo_advantage(token_rewards, mask, index=uids, config=algo)
        return result, adv

    def verl_grpo():
        adv, _ = compute_grpo_outcome_advantage(token_rewards, mask, uids, norm_adv_by_std_in_grpo=True)
        return adv

    def verl_grpo_vectorized():
        adv, _ = compute_grpo_vectorized_outcome_advantage(token_rewards, mask, uids, norm_adv_by_std_in_grpo=True)
        return adv

    gen = torch.Generator().manual_seed(1)
    samples = torch.round(torch.rand(len(uids), 3, generator=gen) * 10) / 10
    samples[torch.rand(len(uids), 3, generator=gen) < 0.02] = float("nan")
    variance_cfg = TrustConfig(semantics="paper", trust="variance", anneal="exp", anneal_T=1500)

    def variance_shaping():
        return shape_rewards(outcome, samples, uids, 100, variance_cfg)

    row_keys = np.array([f"{u}_{i % args.group_size}_0" for i, u in enumerate(uids)], dtype=object)

    def mode_fn(keys):
        mode_cfg = TrustConfig(semantics="paper", anneal="exp", anneal_T=1500, **keys)

        def run():
            result = shape_rewards(outcome, thinking, uids, 100, mode_cfg)
            adv = variant_advantages(result, outcome, mode_cfg)
            advantage_metrics(adv)
            if mode_cfg.routes_advantages:
                ROUTED_ADVANTAGES.add(row_keys, adv.advantage.tolist())
                return compute_trust_grpo_advantage(token_rewards, mask, index=row_keys, config=algo)[0]
            SHAPED_UIDS.add(set(uids.tolist()))  # the estimator on the token rewards, as "ours" and the anchors
            return compute_trust_grpo_advantage(token_rewards, mask, index=uids, config=algo)[0]

        return run

    # sanity: on the same token rewards the three estimators agree
    _, ours_adv = ours()
    assert torch.allclose(ours_adv, verl_grpo(), atol=1e-4), "trust_grpo and grpo disagree on the same rewards"
    assert torch.allclose(ours_adv, verl_grpo_vectorized(), atol=1e-4), "trust_grpo and grpo_vectorized disagree"

    # alternate them so that load from other processes hits all alike; wall and CPU time both recorded
    names = ("ours", "verl_grpo", "verl_grpo_vectorized", "variance_shaping", *(f"mode_{m}" for m in MODES))
    fns = (ours, verl_grpo, verl_grpo_vectorized, variance_shaping, *(mode_fn(k) for k in MODES.values()))
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for _ in range(args.runs):
        for name, fn in zip(names, fns, strict=True):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    med = {name: statistics.median(wall[name]) for name in names}
    med_cpu = {name: statistics.median(cpu[name]) for name in names}
    t_ours, t_verl = wall["ours"], wall["verl_grpo"]
    med_ours, med_verl = med["ours"], med["verl_grpo"]
    ratio = med_ours / med_verl
    cpu_ratio = med_cpu["ours"] / med_cpu["verl_grpo"]
    ratio_vec = med_ours / med["verl_grpo_vectorized"]
    cpu_ratio_vec = med_cpu["ours"] / med_cpu["verl_grpo_vectorized"]
    out = {
        "name": "trust",
        "what": "trust shaping + trust_grpo advantage vs verl grpo / grpo_vectorized advantage alone",
        "responses": len(uids),
        "groups": args.groups,
        "group_size": args.group_size,
        "tokens": args.tokens,
        "runs": args.runs,
        "torch_threads": torch.get_num_threads(),
        "ours_median_s": med_ours,
        "verl_grpo_median_s": med_verl,
        "ours_s": t_ours,
        "verl_grpo_s": t_verl,
        "ratio": ratio,
        "cpu_time_ratio": cpu_ratio,
        "goal": GOAL,
        "meets_goal": ratio <= GOAL,
        "verl_grpo_vectorized_median_s": med["verl_grpo_vectorized"],
        "verl_grpo_vectorized_s": wall["verl_grpo_vectorized"],
        "ratio_vectorized": ratio_vec,
        "cpu_time_ratio_vectorized": cpu_ratio_vec,
        "goal_vectorized": GOAL_VECTORIZED,
        "meets_goal_vectorized": ratio_vec <= GOAL_VECTORIZED,
        "variance_shaping_k3_median_s": med["variance_shaping"],
        "modes": {
            m: {
                "median_s": med[f"mode_{m}"],
                "ratio_vectorized": med[f"mode_{m}"] / med["verl_grpo_vectorized"],
                "cpu_time_ratio_vectorized": med_cpu[f"mode_{m}"] / med_cpu["verl_grpo_vectorized"],
            }
            for m in MODES
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trust.json").write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"trust: ours {med_ours * 1e3:.1f} ms vs verl grpo {med_verl * 1e3:.1f} ms -> ratio {ratio:.3f} "
        f"(CPU-time ratio {cpu_ratio:.3f}; goal <= {GOAL})"
    )
    print(
        f"trust: ours {med_ours * 1e3:.1f} ms vs verl grpo_vectorized {med['verl_grpo_vectorized'] * 1e3:.1f} ms -> "
        f"ratio {ratio_vec:.3f} (CPU-time ratio {cpu_ratio_vec:.3f}; goal <= {GOAL_VECTORIZED}); "
        f"variance shaping, K = 3: {med['variance_shaping'] * 1e3:.1f} ms"
    )
    for m, figures in out["modes"].items():
        print(
            f"trust: mode {m} {figures['median_s'] * 1e3:.1f} ms -> ratio to grpo_vectorized "
            f"{figures['ratio_vectorized']:.3f} (CPU-time ratio {figures['cpu_time_ratio_vectorized']:.3f})"
        )
    return out


if __name__ == "__main__":
    main()
