"""Collecting rollout responses for the thinking-reward dataset (the paper's first stage; docs/trm-data-build.md).

``record.py`` is the one definition of a collected response (a :class:`RolloutRecord`, one JSON line); ``shards.py``
writes them as append-only JSONL shards and reads them back, skipping and counting torn or malformed lines;
``config.py`` reads the ``reward.collect`` recipe keys; ``collector.py`` is the hook the reward manager calls for
every scored response during a verl run. The readers that annotate and balance the shards
(``sophiavl.data_prep.trm_build``), and the offline import of responses made elsewhere, build on these modules.
"""

from .collector import RolloutCollector
from .config import CollectConfig
from .record import RECORD_VERSION, RolloutRecord
from .shards import SHARD_GLOB, ShardReadStats, ShardWriter, iter_shard_records

__all__ = [
    "RECORD_VERSION",
    "SHARD_GLOB",
    "CollectConfig",
    "RolloutCollector",
    "RolloutRecord",
    "ShardReadStats",
    "ShardWriter",
    "iter_shard_records",
]
