"""Building thinking-reward (TRM) training data, the paper's first stage (docs/trm-data-build.md):
``python -m sophiavl.data_prep.trm_build <command>``.

Collected rollout responses (``sophiavl.rewards.collect`` shards, written during a verl run or imported from a JSONL)
are labelled by a large judge (``annotate``), filtered and balanced over score bins (``balance``), and written in the
released Thinking-156k layout, which ``python -m sophiavl.data_prep.thinking_156k`` converts for the SFT trainer.
"""
