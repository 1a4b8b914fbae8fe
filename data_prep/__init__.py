"""SophiaVL-R1 data preparation: the released dataset (and the embedded sample) to verl's RLHF parquet."""
