"""Trust-GRPO's arithmetic: ``config`` (``algorithm.trust_grpo``), ``weights`` (the trust weight, annealing and shaped
rewards of one group), ``variants`` (the normalisation and gate ablations), ``cli`` (``python -m
sophiavl.rewards.trust``, which explains one group)."""
