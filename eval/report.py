"""``python -m sophiavl.eval.report``: the benchmark table from verl's validation dump of a ``sophiavl_eval`` run.

    python -m sophiavl.eval.report --dump checkpoints/sophiavl_eval/<experiment>/eval_dump --out report.json \
        [--data data/eval]

``--dump`` is the run's ``trainer.validation_data_dir`` (the newest ``<step>.jsonl`` in it is read) or one such file.
verl writes one JSON line per generation with ``input``, ``output``, ``gts``, ``score``, ``step``, ``uid`` and every
key the reward function returned; :mod:`sophiavl.eval.compute_score` returns ``acc``, ``answer_format`` and the
row's ``benchmark``, ``id`` and grouping keys, which is all the aggregation needs. With ``--data`` (the folder of
the prepared parquet files the run evaluated) rows that have no line in the dump are counted as wrong and reported
as ``missing``. Writes ``report.json``, ``rows.jsonl`` beside it (one line per row: how it was scored) and prints
the markdown table.

With ``--extract-url URL [--extract-model NAME]`` (needs ``--data``) the rows the rules left undecided
(``decided_by`` ``none`` in the dump) go to that OpenAI-compatible server with their response (the dump's
``output``); see :mod:`sophiavl.eval.extract.model`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from sophiavl.eval.benchmarks import ScoredRow
from sophiavl.eval.compute_score import score_response
from sophiavl.eval.extract.answer import extract_answer
from sophiavl.eval.extract.model import Case, add_extract_args, client_from_args, extract_with_model
from sophiavl.eval.results import audit, build_report, load_prepared, missing_row, publish

#: keys a dump line must carry (returned by sophiavl.eval.compute_score)
REQUIRED = ("benchmark", "id", "acc", "answer_format")


def dump_file(dump: Path | str) -> Path:
    """``dump`` itself when it is a file; else the ``<step>.jsonl`` with the highest step in the folder.
    ``FileNotFoundError`` when there is none."""
    dump = Path(dump)
    if dump.is_file():
        return dump
    steps = [p for p in dump.glob("*.jsonl") if p.stem.isdigit()] if dump.is_dir() else []
    if not steps:
        raise FileNotFoundError(f"no <step>.jsonl validation dump in {dump} (set trainer.validation_data_dir)")
    return max(steps, key=lambda p: int(p.stem))


def read_dump(
    path: Path | str, outputs: dict[tuple[str, str], str] | None = None, legacy: set[tuple[str, str]] | None = None
) -> list[ScoredRow]:
    """The scored rows of one dump file; with ``outputs`` given, each row's response (``output``) is stored in it;
    with ``legacy`` given, the keys of lines written before ``compute_score`` returned ``decided_by`` are added to it
    (their ``decided_by`` reads ``rule``). ``ValueError`` for a line without the keys
    of :data:`REQUIRED` (a run scored by another reward function) or for two generations of the same row
    (``val_kwargs.n`` > 1: the paper's numbers are greedy, one generation per row)."""
    rows: dict[tuple[str, str], ScoredRow] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            lacking = [k for k in REQUIRED if k not in obj]
            if lacking:
                raise ValueError(
                    f"{path}:{n} lacks {lacking}: the run was not scored by sophiavl.eval.compute_score "
                    "(use +recipe=sophiavl_eval)"
                )
            key = (str(obj["benchmark"]), str(obj["id"]))
            decided_by = obj.get("decided_by") or "rule"
            if decided_by not in ("rule", "none"):
                raise ValueError(f"{path}:{n}: decided_by {decided_by!r} is not 'rule' or 'none'")
            if key in rows:
                raise ValueError(
                    f"{path}:{n}: a second generation of {key[0]} id {key[1]}; the report scores one generation per "
                    "row (actor_rollout_ref.rollout.val_kwargs.n=1)"
                )
            rows[key] = ScoredRow(
                benchmark=key[0],
                id=key[1],
                correct=float(obj["acc"]),
                answer_format=float(obj["answer_format"]) == 1.0,
                group=obj.get("group") or None,
                version=obj.get("version") or None,
                category=obj.get("category") or None,
                subcategory=obj.get("subcategory") or None,
                decided_by=decided_by,
                audit={
                    "extracted": obj.get("pred"),
                    "answer": obj.get("answer") or None,
                    "gold": obj.get("gts"),
                    "gold_all": [str(obj.get("gts"))],
                },
            )
            if outputs is not None:
                outputs[key] = str(obj.get("output") or "")
            if legacy is not None and "decided_by" not in obj:
                legacy.add(key)
    return list(rows.values())


def report_from_dump(dump: Path | str, data: Path | str | None = None, client=None) -> tuple[dict, list[ScoredRow]]:
    """The report dict of a dump (see the module docstring) and its scored rows; with ``data``, the prepared rows of
    the benchmarks in the dump that have no line count as missing, each row's accepted golds come from the prepared
    file, and lines of rows not in ``data`` raise ``ValueError``. ``client`` (needs ``data``): the rows the rules
    left undecided go to that model."""
    path = dump_file(dump)
    outputs: dict[tuple[str, str], str] = {}
    legacy: set[tuple[str, str]] = set()
    rows = read_dump(path, outputs, legacy)
    protocol = "rules"
    if client is not None and data is None:
        raise ValueError("--extract-url needs --data (the prepared rows give the model the question and options)")
    if data is not None:
        names = sorted({r.benchmark for r in rows})
        prepared = load_prepared(data, names)
        seen = {(r.benchmark, r.id) for r in rows}
        stray = sorted(seen - set(prepared))
        if stray:
            raise ValueError(f"{len(stray)} dump rows are not in {data}: {stray[:5]}")
        rows = [_with_prepared(r, prepared[(r.benchmark, r.id)], outputs[(r.benchmark, r.id)], legacy) for r in rows]
        rows += [missing_row(k, v["extra_info"], v["ground_truth"]) for k, v in prepared.items() if k not in seen]
        if client is not None:
            cases = {k: _case(k, outputs[k], prepared[k]) for k in outputs}
            rows, model = extract_with_model(rows, cases, client)
            protocol = f"rules+model:{model}"
    source = {"kind": "verl validation dump", "dump": str(path), "data": None if data is None else str(data)}
    return build_report(rows, source, protocol), rows


def _case(key: tuple[str, str], output: str, prepared: dict) -> Case:
    return Case(key[0], extract_answer(output).text, str(prepared["ground_truth"]), prepared["extra_info"])


def _with_prepared(row: ScoredRow, prepared: dict, output: str, legacy: set[tuple[str, str]]) -> ScoredRow:
    """``row`` with the audit's golds from the prepared row; for a line written before ``decided_by`` existed, the
    rules' reading (``answer``, ``decided_by``) recomputed from its response."""
    golds = audit(prepared["extra_info"], prepared["ground_truth"], None, None)["gold_all"]
    new_audit = dict(row.audit or {}) | {"gold_all": golds}
    if (row.benchmark, row.id) not in legacy:
        return replace(row, audit=new_audit)
    s = score_response(output, prepared["ground_truth"], prepared["extra_info"])
    return replace(row, decided_by=s["decided_by"], audit=new_audit | {"answer": s["answer"] or None})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark table from a sophiavl_eval validation dump")
    parser.add_argument("--dump", required=True, help="trainer.validation_data_dir of the run, or one <step>.jsonl")
    parser.add_argument("--out", required=True, help="report.json to write")
    parser.add_argument("--data", help="prepared parquet folder: count rows absent from the dump as missing")
    add_extract_args(parser)
    args = parser.parse_args(argv)
    try:
        report, rows = report_from_dump(args.dump, args.data, client_from_args(args))
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    publish(report, rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
