"""From scored rows to ``report.json`` and the markdown table; shared by :mod:`sophiavl.eval.report` (verl's
validation dump) and :mod:`sophiavl.eval.score` (any engine's predictions)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sophiavl.eval.benchmarks import BENCHMARKS, ScoredRow, get
from sophiavl.eval.numbers import number_text
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


def missing_row(key: Key, extra: Mapping[str, Any], ground_truth: str = "") -> ScoredRow:
    """The scored row of a prepared row that got no response: wrong, flagged missing, decided by nothing."""
    return ScoredRow(
        benchmark=key[0],
        id=key[1],
        correct=0.0,
        answer_format=False,
        missing=True,
        decided_by="none",
        audit=audit(extra, ground_truth, None, None),
        group=extra.get("group"),
        version=extra.get("version"),
        category=extra.get("category"),
        subcategory=extra.get("subcategory"),
    )


def audit(extra: Mapping[str, Any], ground_truth: str, extracted: str | None, answer: str | None) -> dict[str, Any]:
    """What ``rows.jsonl`` shows of a row besides its verdict: ``extracted`` (the answer text taken from the response),
    ``answer`` (what the rule read from it: a letter, a number ...; ``None`` for nothing), ``gold`` (the ground
    truth) and ``gold_all`` (every accepted gold, e.g. ChartQA's labels or MathVista's letters sharing the gold
    text)."""
    golds = [str(g) for g in (extra.get("answers") or [])] or [str(ground_truth)]
    return {"extracted": extracted, "answer": answer or None, "gold": str(ground_truth), "gold_all": golds}


def write_rows(rows: Iterable[ScoredRow], out: Path | str) -> Path:
    """Writes ``rows.jsonl``: one JSON line per row, in the paper's benchmark order then the rows' order, with
    ``benchmark``, ``id``, ``correct`` (bool, under the protocol used), ``decided_by`` (``rule``, ``model`` or
    ``none``), ``rule_correct`` (bool, rules only), ``missing``, and the row's audit fields (:func:`audit`; with a
    model also ``model_answer``, ``model_reply``, ``model_error``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    order = {b: i for i, b in enumerate(BENCHMARKS)}
    ranked = sorted(enumerate(rows), key=lambda t: (order.get(t[1].benchmark, len(order)), t[0]))
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for _, r in ranked:
            line = {
                "benchmark": r.benchmark,
                "id": r.id,
                "correct": r.correct == 1.0,
                "decided_by": r.decided_by,
                "rule_correct": r.rules_only == 1.0,
                "missing": r.missing,
                **(r.audit or {}),
            }
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return out


def build_report(rows: Iterable[ScoredRow], source: Mapping[str, Any], protocol: str = "rules") -> dict[str, Any]:
    """The report dict: ``benchmarks.<name>`` with ``score`` (the headline, as the paper reports it, under
    ``protocol``), ``rule_score`` (the same by the rules alone), ``protocol`` (``rules`` or ``rules+model:NAME``),
    ``model_extracted`` (rows the model decided), ``model_failed`` (rows sent to the model without a decision),
    ``unit``, ``n`` (rows, missing ones included), ``missing``, ``answer_format_share`` (share of the answered rows
    whose response used ``<answer>`` tags, in [0, 1]; ``None`` when none was answered), ``undecided`` (answered rows
    no rule or model decided: wrong), ``sub_scores``, ``how`` and ``paper`` (the paper's numbers for SophiaVL-R1-7B
    and Qwen2.5-VL-7B-Instruct); plus ``protocol`` and ``source``. Benchmarks appear in the paper's order."""
    by_bench: dict[str, list[ScoredRow]] = {}
    for r in rows:
        by_bench.setdefault(r.benchmark, []).append(r)
    benchmarks = {}
    for name in [b for b in BENCHMARKS if b in by_bench]:
        members = by_bench[name]
        bench = get(name)
        agg = bench.aggregate(members)
        rule_agg = bench.aggregate([replace(r, correct=r.rules_only) for r in members])
        answered = [r for r in members if not r.missing]
        benchmarks[name] = {
            "score": agg.score,
            "rule_score": rule_agg.score,
            "protocol": protocol,
            "model_extracted": sum(r.decided_by == "model" for r in members),
            "model_failed": sum(r.rule_correct is not None and r.decided_by == "none" for r in members),
            "undecided": sum(r.decided_by == "none" and not r.missing for r in members),
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
    return {"benchmarks": benchmarks, "protocol": protocol, "source": dict(source)}


def markdown_table(report: Mapping[str, Any]) -> str:
    """The report as one markdown table: benchmark, this model's number, the paper's two, the ``<answer>`` format
    share (%), rows and missing rows. Under a model protocol two more columns follow this model's number: the
    rules-only number and the rows the model decided (of those sent; failures are the difference)."""
    with_model = report.get("protocol", "rules") != "rules"
    extra_head = " rules only | model decided |" if with_model else ""
    lines = [
        f"| benchmark | this model |{extra_head} {SOPHIAVL} (paper) | {QWEN} (paper) | `<answer>` format | rows "
        "| missing |",
        "|---|---:|" + ("---:|---:|" if with_model else "") + "---:|---:|---:|---:|---:|",
    ]
    for name, b in report["benchmarks"].items():
        share = "-" if b["answer_format_share"] is None else f"{100 * b['answer_format_share']:.0f} %"
        unit = "" if b["unit"] == "%" else f" {b['unit']}"
        more = ""
        if with_model:
            sent = b["model_extracted"] + b["model_failed"]
            more = f" {number_text(b['rule_score'])}{unit} | {b['model_extracted']} of {sent} |"
        lines.append(
            f"| {name} | {number_text(b['score'])}{unit} |{more} {number_text(b['paper'][SOPHIAVL])} | "
            f"{number_text(b['paper'][QWEN])} | {share} | {b['n']} | {b['missing']} |"
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


def publish(report: Mapping[str, Any], rows: Iterable[ScoredRow], out: Path | str) -> None:
    """What ``python -m sophiavl.eval.report`` and ``... score`` write: the report JSON at ``out``, the per-row audit
    ``rows.jsonl`` beside it, and the markdown table on stdout."""
    write_report(report, out)
    write_rows(rows, Path(out).with_name("rows.jsonl"))
    print(markdown_table(report))
