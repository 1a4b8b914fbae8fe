"""SophiaVL-R1-Thinking-156k -> verl SFT parquet for the thinking reward model: ``python -m
sophiavl.data_prep.thinking_156k`` (``cli``), ``fields`` (which record field plays which role), ``records`` (one
record -> one SFT row), ``convert`` (the streaming conversion), ``report`` (its counts)."""
