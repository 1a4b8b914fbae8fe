"""VL-RewardBench scoring from pointwise scores: source and group of a pair, winner, tie rules, accuracies.

Each response of a pair is scored alone by the thinking reward model; the higher (mean) score is the model's choice and
the human ranking says which response is better. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Tie rules: a pair whose two responses score the same counts 0.5 (``half``), 0 (``wrong``), or is left out of the
#: denominator (``exclude``).
TIE_RULES = ("half", "wrong", "exclude")

#: Benchmark groups and the sources in each (the benchmark's own grouping).
GROUPS: dict[str, tuple[str, ...]] = {
    "general": ("vlfeedback", "wildvision-battle"),
    "hallucination": ("povid", "rlaif-v", "rlhf-v"),
    "reasoning": ("mathverse", "mmmu"),
}
SOURCE_GROUP = {source: group for group, sources in GROUPS.items() for source in sources}

#: Two means closer than this are a tie (K means of grid scores differ by at least 0.1 / K otherwise).
TIE_TOL = 1e-9

#: SophiaVL-R1 paper (arXiv 2505.17018 v2), Table 3: general, hallucination, reasoning, overall, macro accuracy (%).
PAPER_TABLE3: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("Qwen2.5-VL-3B-Instruct", 34.4, 42.1, 51.5, 43.1, 43.0),
    ("GPT-4o-mini", 41.7, 34.5, 58.2, 41.5, 44.8),
    ("Qwen2-VL-72B", 38.1, 32.8, 58.0, 39.5, 43.0),
    ("SophiaVL-R1 TRM (3B)", 45.4, 46.8, 54.4, 48.6, 48.9),
)


def id_prefix(item_id: str) -> str:
    """``item_id`` up to its first ``_`` or ``-`` (the whole id when it has neither)."""
    cuts = [i for i in (item_id.find("_"), item_id.find("-")) if i != -1]
    return item_id[: min(cuts)] if cuts else item_id


def source_of(item_id: str) -> str:
    """The benchmark source of a pair from its id, as the benchmark's scoring script (``cal.py``) maps it: prefix
    ``RLAIF`` -> ``rlaif-v``, ``RLHF`` -> ``rlhf-v``, ``mathverse`` / ``mmmu`` -> themselves (the reasoning tasks),
    ``wildvision`` -> ``wildvision-battle``, ``hallucination`` (or ``povid``, any case) -> ``povid``, anything else
    -> ``vlfeedback``. Prefixes are case-sensitive except ``povid``."""
    prefix = id_prefix(item_id)
    if prefix == "RLAIF":
        return "rlaif-v"
    if prefix == "RLHF":
        return "rlhf-v"
    if prefix in ("mathverse", "mmmu"):
        return prefix
    if prefix == "wildvision":
        return "wildvision-battle"
    if prefix == "hallucination" or prefix.lower() == "povid":
        return "povid"
    return "vlfeedback"


@dataclass(frozen=True)
class PairScore:
    """One judged pair: ``better`` is the index (0 or 1) of the response the humans prefer; ``means`` are the mean
    TRM scores of responses 0 and 1."""

    item_id: str
    better: int
    means: tuple[float, float]

    @property
    def tie(self) -> bool:
        """Both responses scored the same (within :data:`TIE_TOL`)."""
        return abs(self.means[0] - self.means[1]) <= TIE_TOL

    @property
    def correct(self) -> bool:
        """Not a tie, and the preferred response scored higher."""
        return not self.tie and self.means[self.better] > self.means[1 - self.better]


def credit(pair: PairScore, tie: str) -> float | None:
    """The pair's contribution to accuracy: 1 correct, 0 wrong, and a tie 0.5 (``half``), 0 (``wrong``) or ``None``
    (``exclude``: not counted)."""
    if tie not in TIE_RULES:
        raise ValueError(f"tie rule must be one of {TIE_RULES}, got {tie!r}")
    if pair.tie:
        return {"half": 0.5, "wrong": 0.0, "exclude": None}[tie]
    return 1.0 if pair.correct else 0.0


def _tally(pairs: Sequence[PairScore], tie: str) -> dict:
    credits = [credit(p, tie) for p in pairs]
    counted = [c for c in credits if c is not None]
    ties = sum(p.tie for p in pairs)
    return {
        "n": len(pairs),
        "counted": len(counted),
        "correct": sum(counted),
        "ties": ties,
        "tie_rate": 100.0 * ties / len(pairs) if pairs else None,
        "accuracy": 100.0 * sum(counted) / len(counted) if counted else None,
    }


def pairwise_summary(pairs: Iterable[PairScore], tie: str) -> dict:
    """Accuracies (%) of judged pairs under the tie rule ``tie``.

    Returns ``groups`` and ``sources`` (each: ``n`` judged pairs, ``counted`` pairs in the denominator, ``correct``
    credit, ``ties``, ``tie_rate`` % of ``n``, ``accuracy`` %), ``overall`` (all credit over all counted pairs),
    ``macro`` (mean of the three group accuracies; ``None`` when a group has no counted pair), ``ties``, ``tie_rate``
    and ``n``. An accuracy with an empty denominator is ``None``.
    """
    pairs = list(pairs)
    by_source: dict[str, list[PairScore]] = {}
    for pair in pairs:
        by_source.setdefault(source_of(pair.item_id), []).append(pair)
    groups = {
        group: _tally([p for s in sources for p in by_source.get(s, [])], tie) for group, sources in GROUPS.items()
    }
    total = _tally(pairs, tie)
    accuracies = [g["accuracy"] for g in groups.values()]
    return {
        "n": total["n"],
        "counted": total["counted"],
        "ties": total["ties"],
        "tie_rate": total["tie_rate"],
        "overall": total["accuracy"],
        "macro": None if any(a is None for a in accuracies) else sum(accuracies) / len(accuracies),
        "groups": groups,
        "sources": {source: _tally(items, tie) for source, items in sorted(by_source.items())},
    }


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table3(summary: dict, label: str) -> str:
    """A text table of ``summary`` (from :func:`pairwise_summary`) under the paper's Table 3 rows."""
    header = ("model", "general", "halluc.", "reasoning", "overall", "macro")
    groups = summary["groups"]
    ours = (
        label,
        _cell(groups["general"]["accuracy"]),
        _cell(groups["hallucination"]["accuracy"]),
        _cell(groups["reasoning"]["accuracy"]),
        _cell(summary["overall"]),
        _cell(summary["macro"]),
    )
    rows = [header] + [(name, *(f"{v:.1f}" for v in values)) for name, *values in PAPER_TABLE3] + [ours]
    width = max(len(r[0]) for r in rows)
    lines = []
    for i, row in enumerate(rows):
        lines.append(f"{row[0]:<{width}}  " + "  ".join(f"{c:>9}" for c in row[1:]))
        if i in (0, len(PAPER_TABLE3)):
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)
