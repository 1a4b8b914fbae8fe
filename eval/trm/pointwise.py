"""Pointwise evaluation: every held-out TRM row scored by the served model, compared with its label."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from sophiavl.eval.numbers import number_text
from sophiavl.rewards.trm.client import ThinkingJudge

from .data import PointwiseItem
from .metrics import GRID_SIZE, agreement_summary, confusion
from .run import Progress, collect, failure_examples, failure_kind, failure_kinds


async def score_rows(
    judge: ThinkingJudge,
    items: Iterable[PointwiseItem],
    progress: Progress,
    predictions: IO[str] | None = None,
) -> list[dict[str, Any]]:
    """Asks ``judge`` about every usable row; returns one record per row, in row order: ``index``, ``id``,
    ``source``, ``label``, ``score`` (``None`` when failed), ``kind`` (``""`` or the failure kind) and ``detail``.

    A row that could not be read is a failure of kind ``bad_row`` (no request is made). ``predictions``, when given,
    receives each record as a JSON line as soon as it is known.
    """

    async def one(item: PointwiseItem) -> dict[str, Any]:
        record = {"index": item.index, "id": item.row_id, "source": item.source, "label": item.label}
        if item.error:
            return {**record, "score": None, "kind": "bad_row", "detail": item.error}
        judgement = await judge.judge(item.question, item.response, item.image)
        if judgement.score is None:
            return {**record, "score": None, "kind": failure_kind(judgement), "detail": judgement.detail}
        return {**record, "score": judgement.score, "kind": "", "detail": ""}

    return await collect(items, one, max(1, judge.max_concurrency), progress, predictions)


def _block(records: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in records if not r["kind"]]
    failed = [r for r in records if r["kind"]]
    summary = agreement_summary([r["label"] for r in scored], [r["score"] for r in scored])
    return {
        "rows": len(records),
        **summary,
        "failures": len(failed),
        "failure_kinds": failure_kinds(failed),
    }


def pointwise_report(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of :func:`score_rows`'s records: ``rows``, ``n`` (scored rows), ``failures`` (rows without a
    score, excluded from every metric) and ``failure_kinds``, ``mae``, ``rmse``, ``exact`` and ``within_0_1`` (% of
    scored rows), ``pearson``, ``spearman``, ``off_grid``, ``confusion`` (11 x 11 counts, row = label, column =
    prediction, both as grid indices 0..10), ``failure_examples`` (the first few failed rows) and ``sources`` (the
    same metrics per data source, without the confusion table)."""
    scored = [r for r in records if not r["kind"]]
    failed = [r for r in records if r["kind"]]
    by_source: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_source.setdefault(record["source"], []).append(record)
    return {
        **_block(records),
        "grid": [i / 10 for i in range(GRID_SIZE)],
        "confusion": confusion([r["label"] for r in scored], [r["score"] for r in scored]),
        "failure_examples": failure_examples(failed),
        "sources": {source: _block(items) for source, items in sorted(by_source.items())},
    }


def pointwise_text(report: dict[str, Any]) -> str:
    """A human-readable summary of :func:`pointwise_report`'s output."""
    kinds = ", ".join(f"{k}: {v}" for k, v in report["failure_kinds"].items())
    lines = [
        f"TRM pointwise: {report['rows']} rows, {report['n']} scored, {report['failures']} failed"
        + (f" ({kinds})" if kinds else ""),
        f"  MAE {number_text(report['mae'], '.4f')}  RMSE {number_text(report['rmse'], '.4f')}  "
        f"exact {number_text(report['exact'], '.1f')}%  within 0.1 {number_text(report['within_0_1'], '.1f')}%  "
        f"Pearson {number_text(report['pearson'], '.4f')}  Spearman {number_text(report['spearman'], '.4f')}"
        + (f"  ({report['off_grid']} predictions off the grid)" if report["off_grid"] else ""),
        "  per data source:",
    ]
    width = max([len(s) for s in report["sources"]] + [6])
    for source, block in report["sources"].items():
        lines.append(
            f"    {source:<{width}}  n {block['n']:>5}  failed {block['failures']:>4}  "
            f"MAE {number_text(block['mae'], '.3f')}  exact {number_text(block['exact'], '.1f')}%  "
            f"within 0.1 {number_text(block['within_0_1'], '.1f')}%  Spearman {number_text(block['spearman'], '.3f')}"
        )
    lines.append("  confusion (rows: label 0.0 .. 1.0; columns: prediction 0.0 .. 1.0):")
    lines.append("         " + "".join(f"{i / 10:>6.1f}" for i in range(GRID_SIZE)))
    for i, row in enumerate(report["confusion"]):
        lines.append(f"    {i / 10:>4.1f} " + "".join(f"{c:>6d}" for c in row))
    return "\n".join(lines)
