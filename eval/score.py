"""``python -m sophiavl.eval.score``: score any engine's responses against the prepared benchmark files.

    python -m sophiavl.eval.score --data data/eval --predictions preds.jsonl --out report.json

``preds.jsonl`` has one JSON object per line: ``{"benchmark": "mathvista", "id": "12", "response": "..."}`` (``id``
as in the prepared row's ``extra_info.id``; numbers are accepted and compared as text). Every prepared row of each
benchmark named in the predictions (or of ``--benchmarks``) is scored; a row without a prediction counts as wrong
and is reported under ``missing``. A prediction for a row that was not prepared, or a second prediction for the
same row, is an error (exit status 2). Writes ``report.json``, ``rows.jsonl`` beside it (one line per row: how it was
scored) and prints the markdown table.

With ``--extract-url URL [--extract-model NAME]`` the rows the rules cannot decide go to that OpenAI-compatible
server (:mod:`sophiavl.eval.extract.model`); ``score`` is then the number under that protocol and ``rule_score`` the
rules-only one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sophiavl.eval.benchmarks import ScoredRow
from sophiavl.eval.compute_score import score_response
from sophiavl.eval.extract.answer import extract_answer
from sophiavl.eval.extract.model import Case, add_extract_args, client_from_args, extract_with_model
from sophiavl.eval.results import audit, build_report, load_prepared, missing_row, publish


def read_predictions(path: Path | str) -> dict[tuple[str, str], str]:
    """``(benchmark, id) -> response`` from a JSON-lines file; ``ValueError`` naming the line for a malformed line
    or a duplicate row. Blank lines are skipped."""
    out: dict[tuple[str, str], str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                key = (str(obj["benchmark"]), str(obj["id"]))
                response = obj["response"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a {{benchmark, id, response}} object ({e})") from None
            if key in out:
                raise ValueError(f"{path}:{n}: a second prediction for {key[0]} id {key[1]}")
            out[key] = "" if response is None else str(response)
    return out


def score_predictions(
    data: Path | str, predictions: dict[tuple[str, str], str], benchmarks: list[str] | None = None, client=None
) -> tuple[list[ScoredRow], str]:
    """Scores every prepared row of the benchmarks (default: those named in ``predictions``) with its prediction;
    rows without one become missing (wrong). With ``client`` (an :class:`~sophiavl.eval.extract.client.ExtractClient`)
    the rows the rules leave undecided go to the model. Returns the rows and the protocol (``rules`` or
    ``rules+model:NAME``). ``ValueError`` for predictions of rows that were not prepared."""
    names = benchmarks or sorted({b for b, _ in predictions})
    prepared = load_prepared(data, names)
    unknown = sorted(k for k in predictions if k not in prepared)
    if unknown:
        shown = ", ".join(f"{b}/{i}" for b, i in unknown[:5])
        raise ValueError(f"{len(unknown)} predictions name rows that are not in the prepared data: {shown}")
    rows = []
    for key, row in prepared.items():
        if key not in predictions:
            rows.append(missing_row(key, row["extra_info"], row["ground_truth"]))
            continue
        s = score_response(predictions[key], row["ground_truth"], row["extra_info"])
        rows.append(
            ScoredRow(
                benchmark=key[0],
                id=key[1],
                correct=s["acc"],
                answer_format=s["answer_format"] == 1.0,
                group=s["group"] or None,
                version=s["version"] or None,
                category=s["category"] or None,
                subcategory=s["subcategory"] or None,
                decided_by=s["decided_by"],
                audit=audit(row["extra_info"], row["ground_truth"], s["pred"], s["answer"]),
            )
        )
    if client is None:
        return rows, "rules"
    cases = {
        k: Case(k[0], extract_answer(predictions[k]).text, str(prepared[k]["ground_truth"]), prepared[k]["extra_info"])
        for k in predictions
    }
    rows, model = extract_with_model(rows, cases, client)
    return rows, f"rules+model:{model}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="score predictions ({benchmark, id, response} lines)")
    parser.add_argument("--data", required=True, help="folder of the prepared <benchmark>.parquet files")
    parser.add_argument("--predictions", required=True, help="JSON lines: {benchmark, id, response}")
    parser.add_argument("--out", required=True, help="report.json to write")
    parser.add_argument("--benchmarks", nargs="*", help="benchmarks to report (default: those predicted)")
    add_extract_args(parser)
    args = parser.parse_args(argv)
    try:
        client = client_from_args(args)
        rows, protocol = score_predictions(args.data, read_predictions(args.predictions), args.benchmarks, client)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    source = {"kind": "predictions", "predictions": str(args.predictions), "data": args.data}
    report = build_report(rows, source, protocol)
    publish(report, rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
