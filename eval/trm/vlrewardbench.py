"""Pairwise evaluation on VL-RewardBench: both responses of every pair scored alone by the served TRM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import IO, Any

from sophiavl.eval.numbers import number_text
from sophiavl.rewards.trm.client import Judgement, ThinkingJudge

from .data import PairItem
from .pairwise import PairScore, pairwise_summary, source_of, table3
from .run import Progress, collect, failure_examples, failure_kind, failure_kinds


def _failed_samples(judgement: Judgement) -> int:
    return sum(s is None for s in judgement.scores) if judgement.scores else int(judgement.score is None)


async def score_pairs(
    judge: ThinkingJudge,
    items: Iterable[PairItem],
    progress: Progress,
    predictions: IO[str] | None = None,
) -> list[dict[str, Any]]:
    """Asks ``judge`` about both responses of every usable pair (each alone, with the pair's query and image; with
    ``judge.samples`` = K each response's score is the mean of its K sample scores). Returns one record per pair in
    row order: ``index``, ``id``, ``source``, ``better``, ``means`` (``None`` when failed), ``samples_failed`` (samples
    without a score, excluded from the means), ``kind`` (``""`` or the failure kind) and ``detail``.

    A pair fails when either response gets no score at all (``bad_row`` when the row could not be read); it is then
    excluded from every accuracy, never counted as a loss or a tie.
    """

    async def one(item: PairItem) -> dict[str, Any]:
        record = {"index": item.index, "id": item.item_id, "source": source_of(item.item_id), "better": item.better}
        if item.error:
            return {**record, "means": None, "samples_failed": 0, "kind": "bad_row", "detail": item.error}
        judgements = await asyncio.gather(*(judge.judge(item.query, r, item.image) for r in item.responses))
        failed_samples = sum(_failed_samples(j) for j in judgements)
        for j in judgements:
            if j.score is None:
                return {
                    **record,
                    "means": None,
                    "samples_failed": failed_samples,
                    "kind": failure_kind(j),
                    "detail": j.detail,
                }
        means = [j.score for j in judgements]
        return {**record, "means": means, "samples_failed": failed_samples, "kind": "", "detail": ""}

    return await collect(items, one, max(1, judge.max_concurrency // 2), progress, predictions)


def pairwise_report(records: list[dict[str, Any]], tie: str) -> dict[str, Any]:
    """The report of :func:`score_pairs`'s records under the tie rule ``tie``: ``pairs`` (rows read), ``n`` (pairs
    judged), ``failures`` and ``failure_kinds`` (pairs excluded because a response got no score, or the row was
    unusable), ``samples_failed``, ``tie_rule``, ``ties``, ``tie_rate`` (% of ``n``), ``counted`` (pairs in the
    denominator), ``overall``, ``macro`` and ``groups.<name>.accuracy`` (all %), and ``sources``."""
    judged = [PairScore(r["id"], r["better"], tuple(r["means"])) for r in records if not r["kind"]]
    failed = [r for r in records if r["kind"]]
    summary = pairwise_summary(judged, tie)
    return {
        "pairs": len(records),
        **summary,
        "tie_rule": tie,
        "failures": len(failed),
        "failure_kinds": failure_kinds(failed),
        "samples_failed": sum(r["samples_failed"] for r in records),
        "failure_examples": failure_examples(failed),
    }


def pairwise_text(report: dict[str, Any], label: str) -> str:
    """A human-readable summary of :func:`pairwise_report`'s output: the groups, overall and macro accuracy, one line
    per source, and the paper's Table 3 rows above ours."""
    kinds = ", ".join(f"{k}: {v}" for k, v in report["failure_kinds"].items())
    lines = [
        f"TRM pairwise (VL-RewardBench): {report['pairs']} pairs, {report['n']} judged, {report['failures']} failed"
        + (f" ({kinds})" if kinds else ""),
        f"  ties: {report['ties']} ({number_text(report['tie_rate'])}% of judged pairs), rule '{report['tie_rule']}'; "
        f"{report['counted']} pairs in the denominator",
    ]
    for group, block in report["groups"].items():
        lines.append(
            f"  {group:<13} accuracy {number_text(block['accuracy']):>5}%  n {block['n']:>4}  ties {block['ties']:>4}"
        )
    lines.append(f"  overall {number_text(report['overall'])}%  macro {number_text(report['macro'])}%")
    lines.append("  per source:")
    for source, block in report["sources"].items():
        lines.append(
            f"    {source:<17} accuracy {number_text(block['accuracy']):>5}%  "
            f"n {block['n']:>4}  ties {block['ties']:>4}"
        )
    lines.append("")
    lines.append(table3(report, label))
    return "\n".join(lines)
