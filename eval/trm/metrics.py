"""Agreement between a thinking reward model's scores and held-out labels on the grid 0, 0.1, ..., 1.0.

Pure functions over plain lists of floats (no server, no I/O), so every number can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The score grid: 0.0, 0.1, ..., 1.0 (index i is the score i / 10).
GRID_SIZE = 11
#: Tolerance when deciding whether a score lies on the grid.
GRID_TOL = 1e-6


def grid_index(score: float) -> int:
    """The index 0..10 of the grid point nearest to ``score`` (a value in [0, 1]); halves round up (0.75 -> 8).

    Working on indices keeps "within 0.1" exact: 0.7 and 0.8 are indices 7 and 8, one step apart, although
    ``abs(0.8 - 0.7)`` is 0.10000000000000009 in floating point.
    """
    if not 0.0 - GRID_TOL <= score <= 1.0 + GRID_TOL:
        raise ValueError(f"score {score!r} lies outside [0, 1]")
    return min(GRID_SIZE - 1, max(0, math.floor(score * 10 + 0.5 + GRID_TOL)))


def on_grid(score: float) -> bool:
    """Whether ``score`` is one of 0.0, 0.1, ..., 1.0 (within :data:`GRID_TOL`)."""
    return 0.0 - GRID_TOL <= score <= 1.0 + GRID_TOL and abs(score * 10 - round(score * 10)) <= GRID_TOL * 10


def mae(labels: Sequence[float], preds: Sequence[float]) -> float | None:
    """Mean absolute error in score units; ``None`` for no pairs."""
    if not labels:
        return None
    return sum(abs(p - y) for y, p in zip(labels, preds, strict=True)) / len(labels)


def rmse(labels: Sequence[float], preds: Sequence[float]) -> float | None:
    """Root mean squared error in score units; ``None`` for no pairs."""
    if not labels:
        return None
    return math.sqrt(sum((p - y) ** 2 for y, p in zip(labels, preds, strict=True)) / len(labels))


def agreement(labels: Sequence[float], preds: Sequence[float], steps: int) -> float | None:
    """Percent of pairs whose grid indices differ by at most ``steps`` (0: exact agreement, 1: within 0.1);
    ``None`` for no pairs."""
    if not labels:
        return None
    hits = sum(abs(grid_index(p) - grid_index(y)) <= steps for y, p in zip(labels, preds, strict=True))
    return 100.0 * hits / len(labels)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation in [-1, 1]; ``None`` when undefined (fewer than 2 pairs, or a constant series)."""
    n = len(x)
    if n != len(y):
        raise ValueError(f"series of different lengths: {n} and {len(y)}")
    if n < 2 or min(x) == max(x) or min(y) == max(y):  # exactly constant: a rounding-level variance is no signal
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx <= 0.0 or syy <= 0.0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span ([5, 1, 5] -> [2.5, 1, 2.5])."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        mean_rank = (start + end) / 2 + 1
        for k in range(start, end + 1):
            ranks[order[k]] = mean_rank
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman correlation: Pearson of the average ranks (ties share their mean rank); ``None`` when undefined."""
    if len(x) != len(y):
        raise ValueError(f"series of different lengths: {len(x)} and {len(y)}")
    return pearson(average_ranks(x), average_ranks(y))


def confusion(labels: Sequence[float], preds: Sequence[float]) -> list[list[int]]:
    """The 11 x 11 table of counts: row = label grid index, column = predicted grid index."""
    table = [[0] * GRID_SIZE for _ in range(GRID_SIZE)]
    for y, p in zip(labels, preds, strict=True):
        table[grid_index(y)][grid_index(p)] += 1
    return table


def agreement_summary(labels: Sequence[float], preds: Sequence[float]) -> dict:
    """``n``, ``mae``, ``rmse``, ``exact`` (%), ``within_0_1`` (%), ``pearson``, ``spearman`` and ``off_grid`` (count of
    predictions not on the grid; they are compared at their nearest grid point) of scored pairs (``None`` where
    undefined)."""
    return {
        "n": len(labels),
        "mae": mae(labels, preds),
        "rmse": rmse(labels, preds),
        "exact": agreement(labels, preds, 0),
        "within_0_1": agreement(labels, preds, 1),
        "pearson": pearson(labels, preds),
        "spearman": spearman(labels, preds),
        "off_grid": sum(not on_grid(p) for p in preds),
    }
