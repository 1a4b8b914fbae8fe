"""Evaluation of the thinking reward model (TRM): ``python -m sophiavl.eval.trm pointwise|pairwise``.

``cli`` (the command), ``data`` (held-out TRM rows and VL-RewardBench pairs), ``pointwise`` and ``pairwise`` with
``vlrewardbench`` (scoring and reports), ``metrics`` (agreement and correlation), ``run`` (progress and failure kinds).
"""
