"""SophiaVL-R1 rewards: outcome scorers, the thinking-reward-model client, the reward manager, the trust math."""
