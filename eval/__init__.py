"""Evaluation: the trained policy on the paper's benchmarks, and a thinking reward model on held-out labels and
VL-RewardBench."""
