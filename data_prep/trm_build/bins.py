"""Score bins for balanced sampling: edges, names, and which bin a grid label falls in.

By default the paper's ten intervals ``[0.0-0.1), [0.1-0.2), ..., [0.9-1.0]``: every bin is closed below and open
above, except the last, which is closed on both ends (so 0.9 and 1.0 share it). ``--bins`` gives other edges, for
example ``--bins 0 0.3 0.7 1`` for three bins.
"""

from __future__ import annotations

DEFAULT_EDGES: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(11))
_EPS = 1e-9


def check_edges(edges: list[float]) -> tuple[float, ...]:
    """Validates bin edges: at least two, strictly increasing, the first 0 and the last 1 (every label in [0, 1] then
    lands in exactly one bin). Returns them as a tuple; raises ``ValueError`` with the reason otherwise."""
    if len(edges) < 2:
        raise ValueError(f"--bins needs at least two edges, got {edges}")
    if abs(edges[0]) > _EPS or abs(edges[-1] - 1) > _EPS:
        raise ValueError(f"--bins must start at 0 and end at 1, got {edges}")
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"--bins must be strictly increasing, got {edges}")
    return tuple(float(e) for e in edges)


def _edge(e: float) -> str:
    return f"{e:.1f}" if abs(e * 10 - round(e * 10)) < _EPS else f"{e:g}"


def bin_names(edges: tuple[float, ...]) -> list[str]:
    """``"[0.0-0.1)"``, ..., ``"[0.9-1.0]"``: one name per bin, the paper's notation (edges off the tenths keep
    their digits: ``"[0.25-0.5)"``)."""
    last = len(edges) - 2
    pairs = zip(edges, edges[1:], strict=False)
    return [f"[{_edge(lo)}-{_edge(hi)}{']' if i == last else ')'}" for i, (lo, hi) in enumerate(pairs)]


def bin_of(label: float, edges: tuple[float, ...]) -> int:
    """The 0-based bin of ``label`` (in [0, 1]): ``edges[i] <= label < edges[i+1]``, the last bin also holding
    ``label == 1``. Comparisons allow 1e-9 so a grid value on an edge belongs to the bin above it."""
    for i in range(len(edges) - 2, -1, -1):
        if label >= edges[i] - _EPS:
            return i
    return 0
