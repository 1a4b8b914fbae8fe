"""``python -m sophiavl.eval.report``: the benchmark table from verl's validation dump of a ``sophiavl_eval`` run.

    python -m sophiavl.eval.report --dump checkpoints/sophiavl_eval/<experiment>/eval_dump --out report.json \
        [--data data/eval]

``--dump`` is the run's ``trainer.validation_data_dir`` (the newest ``<step>.jsonl`` in it is read) or one such file.
verl writes one JSON line per generation with ``input``, ``output``, ``gts``, ``score``, ``step``, ``uid`` and every
key the reward function returned; :mod:`sophiavl.eval.compute_score` returns ``acc``, ``answer_format`` and the
row's ``benchmark``, ``id`` and grouping keys, which is all the aggregation needs. With ``--data`` (the folder of
the prepared parquet files the run evaluated) rows that have no line in the dump are counted as wrong and reported
as ``missing``. Writes ``report.json`` and prints the markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sophiavl.eval.benchmarks import ScoredRow
from sophiavl.eval.results import build_report, load_prepared, markdown_table, missing_row, write_report

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


def read_dump(path: Path | str) -> list[ScoredRow]:
    """The scored rows of one dump file. ``ValueError`` for a line without the keys of :data:`REQUIRED` (a run
    scored by another reward function) or for two generations of the same row (``val_kwargs.n`` > 1: the paper's
    numbers are greedy, one generation per row)."""
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
            )
    return list(rows.values())


def report_from_dump(dump: Path | str, data: Path | str | None = None) -> dict:
    """The report dict of a dump (see the module docstring); with ``data``, the prepared rows of the benchmarks in
    the dump that have no line count as missing, and lines of rows not in ``data`` raise ``ValueError``."""
    path = dump_file(dump)
    rows = read_dump(path)
    if data is not None:
        names = sorted({r.benchmark for r in rows})
        prepared = load_prepared(data, names)
        seen = {(r.benchmark, r.id) for r in rows}
        stray = sorted(seen - set(prepared))
        if stray:
            raise ValueError(f"{len(stray)} dump rows are not in {data}: {stray[:5]}")
        rows += [missing_row(k, v["extra_info"]) for k, v in prepared.items() if k not in seen]
    return build_report(
        rows, {"kind": "verl validation dump", "dump": str(path), "data": None if data is None else str(data)}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark table from a sophiavl_eval validation dump")
    parser.add_argument("--dump", required=True, help="trainer.validation_data_dir of the run, or one <step>.jsonl")
    parser.add_argument("--out", required=True, help="report.json to write")
    parser.add_argument("--data", help="prepared parquet folder: count rows absent from the dump as missing")
    args = parser.parse_args(argv)
    try:
        report = report_from_dump(args.dump, args.data)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_report(report, args.out)
    print(markdown_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
