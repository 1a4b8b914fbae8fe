"""Deterministic train/val split by a hash of the record's key, independent of file order and machine."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable


def split_key(subset: str, problem_id: str) -> str:
    """The key a record is split by: ``"<subset>/<problem_id>"`` (ids are unique within a subset only)."""
    return f"{subset}/{problem_id}"


def key_hash(key: str) -> int:
    """A stable 64-bit hash of ``key`` (the first 8 bytes of its SHA-256, big-endian), in [0, 2**64)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def choose_val_keys(keys: Iterable[str], val_size: int) -> set[str]:
    """The ``val_size`` keys with the smallest hashes (ties broken by the key itself); all keys if there are
    fewer. Memory is O(val_size). Adding records to the dataset can only move rows from val to train."""
    if val_size <= 0:
        return set()
    return {k for _, k in heapq.nsmallest(val_size, ((key_hash(k), k) for k in keys))}
