"""Seeded fixed-size uniform sampling of a stream, one reservoir per score bin (Li's Algorithm L).

Each reservoir keeps at most ``k`` items in preallocated numpy arrays (a 64-bit key, a 64-bit location, an 8-bit
label), so its memory does not depend on how many items pass by. Each bin has its own generator, seeded from the
run's seed and the bin's number, so the same stream and seed give the same sample, and one bin's sample does not
depend on the others'.
"""

from __future__ import annotations

import math
import random

import numpy as np


class Reservoir:
    """A uniform random sample of at most ``k`` items of a stream (every subset of size ``k`` equally likely).

    Algorithm L (Li, 1994): after the first ``k`` items it draws how many items to skip before the next
    replacement, so it draws O(k log(n/k)) random numbers for ``n`` items, not ``n``.
    """

    def __init__(self, k: int, seed: str):
        if k < 1:
            raise ValueError(f"a reservoir holds at least one item, not {k}")
        self.k = k
        self.seen = 0  # items offered so far
        self.keys = np.zeros(k, dtype=np.int64)
        self.locs = np.zeros(k, dtype=np.int64)
        self.labels = np.zeros(k, dtype=np.int8)
        self._rng = random.Random(seed)  # a str seed is hashed with SHA-512: the same on every run and platform
        self._w = 0.0
        self._next = -1  # 0-based position in the stream of the next item to take once full

    def _u(self) -> float:
        u = self._rng.random()
        while u == 0.0:
            u = self._rng.random()
        return u

    def _advance(self) -> None:
        self._next += math.floor(math.log(self._u()) / math.log1p(-self._w)) + 1
        self._w *= math.exp(math.log(self._u()) / self.k)

    def offer(self, key: int, loc: int, label: int) -> None:
        """Offers the next stream item: ``key`` (its order in the output), ``loc`` (where to read it again),
        ``label`` (its score in tenths)."""
        n = self.seen
        self.seen += 1
        if n < self.k:
            slot = n
            if n == self.k - 1:  # full: draw the first skip
                self._w = math.exp(math.log(self._u()) / self.k)
                self._next = n
                self._advance()
        elif n == self._next:
            slot = self._rng.randrange(self.k)
            self._advance()
        else:
            return
        self.keys[slot], self.locs[slot], self.labels[slot] = key, loc, label

    @property
    def size(self) -> int:
        """Items held: ``min(seen, k)``."""
        return min(self.seen, self.k)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The held items as three arrays ``(keys, locs, labels)`` of length :attr:`size`, in slot order."""
        n = self.size
        return self.keys[:n], self.locs[:n], self.labels[:n]

    def items(self) -> list[tuple[int, int, int]]:
        """The held items as ``(key, loc, label)``, sorted by key."""
        n = self.size
        order = np.argsort(self.keys[:n], kind="stable")
        return [(int(self.keys[i]), int(self.locs[i]), int(self.labels[i])) for i in order]
