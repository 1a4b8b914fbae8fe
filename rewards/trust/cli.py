"""``python -m sophiavl.rewards.trust``: explain what Trust-GRPO does to one group.

Example::

    python -m sophiavl.rewards.trust --outcome 1,1,1,0,0,0,0,0 --thinking 0.6,0.5,0.7,0.8,0.9,0.2,0.7,0.6 \\
        --step 100 --semantics paper --total-steps 1500

prints one JSON object: ``semantics``, ``step``, ``anneal_T``, ``gamma``, ``alpha_t``, ``mu_correct``, ``mu_wrong``
(``null`` when a side has no usable thinking score), ``down_weighted``, ``thinking_off``, ``rewards`` and
``advantages`` (lists, one per response).

``--trust group|off|variance`` selects the trust weight (``algorithm.trust_grpo.trust``). Each ``--thinking`` entry
may hold several judge samples separated by ``/`` (``0.6/0.7/0.8,0.5/0.5/0.9,nan/0.4/0.4``); ``Rt`` is then the mean
of the usable samples. Under ``--trust off|variance``, or when an entry has several samples, the output also has
``trust``, ``gamma_per_response`` (the weight each response's ``Rt`` got) and ``thinking_mean`` (``Rt`` per
response, ``null`` when missing); under ``variance`` also ``variance`` (per response, ``null`` when missing).
``gamma`` is then the group's summary weight (see ``TrustResult.gamma``).
``--normalize joint|decoupled|papo`` and ``--gate none|correct`` select the advantage modes of
``algorithm.trust_grpo`` (docs/beyond-the-paper.md; ``papo`` is arXiv 2603.26535's process-reward normalisation, not
Perception-Aware Policy Optimization); ``--whiten-batch`` whitens the advantages over the responses
given, whatever the mode (the trainer whitens over the step's responses, by default in ``decoupled`` mode only). With
any of them the output also has ``normalize``, ``gate``, ``whiten_batch``, ``advantage_outcome`` and
``advantage_thinking`` (the two parts of each advantage, before whitening), and ``rewards`` is ``Ro + w * Rt'``.
It runs exactly :func:`sophiavl.rewards.trust.weights.shape_rewards`,
:func:`~sophiavl.rewards.trust.weights.group_advantages` and :func:`sophiavl.rewards.trust.variants.variant_advantages`,
the code the trainer uses.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from sophiavl.rewards.trust.config import ANNEAL_MODES, GATE_MODES, NORMALIZE_MODES, SEMANTICS, TRUST_MODES, TrustConfig
from sophiavl.rewards.trust.variants import variant_advantages
from sophiavl.rewards.trust.weights import group_advantages, shape_rewards

#: anneal_T when --total-steps is not given, per semantics (paper: the recipe's 1500 steps; released code: 12000)
DEFAULT_T = {"paper": 1500.0, "official": 12000.0}


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (nan allowed), got {text!r}") from exc


def _samples(text: str) -> list[list[float]]:
    """``"0.6/0.7,0.5"`` -> ``[[0.6, 0.7], [0.5]]``: per response, one score or several separated by ``/``."""
    try:
        return [[float(x) for x in part.split("/")] for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated scores, each one number or several joined by '/' (nan allowed), got {text!r}"
        ) from exc


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m sophiavl.rewards.trust",
        description="Apply Trust-GRPO to one group of responses and print the result as JSON.",
    )
    parser.add_argument("--outcome", type=_floats, required=True, help="outcome scores Ro in [0,1], comma-separated")
    parser.add_argument(
        "--thinking",
        type=_samples,
        required=True,
        help="thinking scores Rt in [0,1], comma-separated; nan = failed; several judge samples of one response "
        "joined by '/' (e.g. 0.6/0.7/0.8)",
    )
    parser.add_argument("--step", type=float, required=True, help="global training step (>= 0)")
    parser.add_argument("--semantics", choices=SEMANTICS, default="paper")
    parser.add_argument(
        "--trust", choices=TRUST_MODES, default=TrustConfig.trust, help="trust weight (algorithm.trust_grpo.trust)"
    )
    parser.add_argument(
        "--total-steps",
        type=float,
        default=None,
        help="annealing horizon T (default: 1500 under paper, 12000 under official)",
    )
    parser.add_argument("--alpha", type=float, default=TrustConfig.alpha)
    parser.add_argument("--anneal", choices=ANNEAL_MODES, default=TrustConfig.anneal)
    parser.add_argument("--correct-threshold", type=float, default=TrustConfig.correct_threshold)
    parser.add_argument(
        "--no-norm-by-std", action="store_true", help="advantage without std division (norm_adv_by_std_in_grpo=false)"
    )
    parser.add_argument(
        "--normalize",
        choices=NORMALIZE_MODES,
        default=TrustConfig.normalize,
        help="algorithm.trust_grpo.normalize; papo is the process-reward normalisation of arXiv 2603.26535 (thinking "
        "reward normalised among the correct responses), not Perception-Aware Policy Optimization (arXiv 2507.06448), "
        "which is not implemented",
    )
    parser.add_argument("--gate", choices=GATE_MODES, default=TrustConfig.gate, help="algorithm.trust_grpo.gate")
    parser.add_argument(
        "--whiten-batch", action="store_true", help="whiten the advantages over the responses given (any mode)"
    )
    return parser


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def explain(args: argparse.Namespace) -> dict:
    """Runs the library math on the parsed arguments and returns the JSON-ready result."""
    if len(args.outcome) != len(args.thinking):
        raise ValueError(f"--outcome has {len(args.outcome)} values but --thinking has {len(args.thinking)}")
    if not args.outcome:
        raise ValueError("the group is empty")
    total = args.total_steps if args.total_steps is not None else DEFAULT_T[args.semantics]
    cfg = TrustConfig(
        semantics=args.semantics,
        trust=args.trust,
        alpha=args.alpha,
        anneal=args.anneal,
        anneal_T=total,
        correct_threshold=args.correct_threshold,
        normalize=args.normalize,
        gate=args.gate,
        whiten_batch=args.whiten_batch,
    )
    width = max(len(entry) for entry in args.thinking)
    samples = [entry + [math.nan] * (width - len(entry)) for entry in args.thinking]  # padding = missing samples
    group = [0] * len(args.outcome)
    result = shape_rewards(args.outcome, samples, group, args.step, cfg)
    variant = args.normalize != "joint" or args.gate != "none" or args.whiten_batch
    if variant:
        parts = variant_advantages(result, args.outcome, cfg, norm_by_std=not args.no_norm_by_std)
        rewards, advantages = parts.rewards, parts.advantage
    else:
        rewards = result.rewards
        advantages = group_advantages(rewards, group, norm_by_std=not args.no_norm_by_std)
    out = {
        "semantics": cfg.semantics,
        "step": args.step,
        "anneal_T": cfg.anneal_T,
        "gamma": float(result.gamma[0]),
        "alpha_t": result.alpha_t,
        "mu_correct": _json_float(float(result.mu_correct[0])),
        "mu_wrong": _json_float(float(result.mu_wrong[0])),
        "down_weighted": bool(result.down_weighted[0]),
        "thinking_off": bool(result.thinking_off[0]),
        "rewards": [float(x) for x in rewards],
        "advantages": [float(x) for x in advantages],
    }
    if variant:
        out.update(normalize=cfg.normalize, gate=cfg.gate, whiten_batch=cfg.whiten)
        out["advantage_outcome"] = [float(x) for x in parts.outcome]
        out["advantage_thinking"] = [float(x) for x in parts.thinking]
    if cfg.trust != "group" or width > 1:
        out["trust"] = cfg.trust
        out["gamma_per_response"] = [float(x) for x in result.gamma_response]
        out["thinking_mean"] = [_json_float(float(x)) for x in result.thinking]
    if cfg.trust == "variance":
        out["variance"] = [_json_float(float(x)) for x in result.variance]
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out = explain(args)
    except ValueError as exc:
        parser.error(str(exc))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
