"""SophiaVL-R1 recipe for verl: Hydra config group, Trust-GRPO sampler and estimator, the verl plugin."""
