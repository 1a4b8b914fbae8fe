"""From scored rows to ``report.json`` and the markdown table; shared by :mod:`sophiavl.eval.report` (verl's
validation dump) and :mod:`sophiavl.eval.score` (any engine's predictions)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sophiavl.eval.benchmarks import BENCHMARKS, ScoredRow, get
from sophiavl.eval.paper_numbers import HEADLINE, QWEN, SOPHIAVL, SUB_SCORES

Key = tuple[str, str]  # (benchmark, id)


def load_prepared(data: Path | str, benchmarks: Iterable[str] | None = None) -> dict[Key, dict[str, Any]]:
    """``(benchmark, id) -> {"ground_truth", "extra_info"}`` from the prepared ``DATA/<benchmark>.parquet`` files
    (those of ``benchmarks``, or every known benchmark's file present). ``FileNotFoundError`` when a named
    benchmark's file is missing or, with ``benchmarks=None``, when there is none."""
    import pyarrow.parquet as pq

    data = Path(data)
    names = list(benchmarks) if benchmarks is not None else [b for b in BENCHMARKS if (data / f"{b}.parquet").exists()]
    if not names:
        raise FileNotFoundError(f"no prepared <benchmark>.parquet in {data} (run python -m sophiavl.eval.prepare)")
    out: dict[Key, dict[str, Any]] = {}
    for name in names:
        get(name)
        path = data / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: prepare {name} first (python -m sophiavl.eval.prepare)")
        table = pq.read_table(path, columns=["reward_model", "extra_info"])
        for rm, extra in zip(
            table.column("reward_model").to_pylist(), table.column("extra_info").to_pylist(), strict=True
        ):
            out[(extra["benchmark"], extra["id"])] = {"ground_truth": rm["ground_truth"], "extra_info": extra}
    return out


def missing_row(key: Key, extra: Mapping[str, Any]) -> ScoredRow:
    """The scored row of a prepared row that got no response: wrong, flagged missing."""
    return ScoredRow(
        benchmark=key[0],
        id=key[1],
        correct=0.0,
        answer_format=False,
        missing=True,
        group=extra.get("group"),
        version=extra.get("version"),
        category=extra.get("category"),
        subcategory=extra.get("subcategory"),
    )


def build_report(rows: Iterable[ScoredRow], source: Mapping[str, Any]) -> dict[str, Any]:
    """The report dict: ``benchmarks.<name>`` with ``score`` (the headline, as the paper reports it), ``unit``,
    ``n`` (rows, missing ones included), ``missing``, ``answer_format_share`` (share of the answered rows whose
    response used ``<answer>`` tags, in [0, 1]; ``None`` when none was answered), ``sub_scores``, ``how`` and
    ``paper`` (the paper's numbers for SophiaVL-R1-7B and Qwen2.5-VL-7B-Instruct); plus ``source``. Benchmarks
    appear in the paper's order."""
    by_bench: dict[str, list[ScoredRow]] = {}
    for r in rows:
        by_bench.setdefault(r.benchmark, []).append(r)
    benchmarks = {}
    for name in [b for b in BENCHMARKS if b in by_bench]:
        members = by_bench[name]
        bench = get(name)
        agg = bench.aggregate(members)
        answered = [r for r in members if not r.missing]
        benchmarks[name] = {
            "score": agg.score,
            "unit": agg.unit,
            "n": len(members),
            "missing": len(members) - len(answered),
            "answer_format_share": sum(r.answer_format for r in answered) / len(answered) if answered else None,
            "sub_scores": agg.sub_scores,
            "how": bench.how,
            "paper": {
                SOPHIAVL: HEADLINE[SOPHIAVL].get(name),
                QWEN: HEADLINE[QWEN].get(name),
                "sub_scores": {m: SUB_SCORES.get(m, {}).get(name, {}) for m in (SOPHIAVL, QWEN)},
            },
        }
    return {"benchmarks": benchmarks, "source": dict(source)}


def _num(value: float | None, unit: str = "%") -> str:
    if value is None:
        return "-"
    return f"{value:.1f}"


def markdown_table(report: Mapping[str, Any]) -> str:
    """The report as one markdown table: benchmark, this model's number, the paper's two, the ``<answer>`` format
    share (%), rows and missing rows."""
    lines = [
        f"| benchmark | this model | {SOPHIAVL} (paper) | {QWEN} (paper) | `<answer>` format | rows | missing |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, b in report["benchmarks"].items():
        share = "-" if b["answer_format_share"] is None else f"{100 * b['answer_format_share']:.0f} %"
        unit = "" if b["unit"] == "%" else f" {b['unit']}"
        lines.append(
            f"| {name} | {_num(b['score'])}{unit} | {_num(b['paper'][SOPHIAVL])} | {_num(b['paper'][QWEN])} | "
            f"{share} | {b['n']} | {b['missing']} |"
        )
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], out: Path | str) -> Path:
    """Writes ``report`` as JSON to ``out`` (atomically: a temporary file renamed into place)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out
