"""Collecting rollout responses for the thinking-reward dataset (the paper's first stage; docs/trm-data-build.md).

``record.py`` is the one definition of a collected response (a :class:`RolloutRecord`, one JSON line); ``shards.py``
writes them as append-only JSONL shards and reads them back, skipping and counting torn or malformed lines. The
collection hook that writes them during a verl run, and the readers that annotate and balance them
(``sophiavl.data_prep.trm_build``), build on these two modules.
"""

from .record import RECORD_VERSION, RolloutRecord
from .shards import SHARD_GLOB, ShardReadStats, ShardWriter, iter_shard_records

__all__ = ["RECORD_VERSION", "SHARD_GLOB", "RolloutRecord", "ShardReadStats", "ShardWriter", "iter_shard_records"]
