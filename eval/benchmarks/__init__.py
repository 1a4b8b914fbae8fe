"""The seven benchmarks of the paper's Tables 1-2, one module each (conversion, scoring rule, aggregation)."""

from __future__ import annotations

from sophiavl.eval.benchmarks import chartqa, mathverse, mathvista, mmbench, mme, mmmu, mmstar
from sophiavl.eval.benchmarks.base import DECIDED_BY, Aggregate, Benchmark, Rejected, ScoredRow, Verdict

#: name -> benchmark, in the paper's table order
BENCHMARKS: dict[str, Benchmark] = {
    m.BENCHMARK.name: m.BENCHMARK for m in (mathvista, mathverse, mmmu, mme, chartqa, mmbench, mmstar)
}


def get(name: str) -> Benchmark:
    """The benchmark called ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


__all__ = ["BENCHMARKS", "DECIDED_BY", "Aggregate", "Benchmark", "Rejected", "ScoredRow", "Verdict", "get"]
