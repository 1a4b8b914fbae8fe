"""Reading back the per-item judgements an earlier run saved with ``--predictions``, so that its summary can be
recomputed (another tie rule, the per-source table) without asking the judge again.

A predictions file holds one JSON object per line, in the order the judgements finished: the records of
:func:`sophiavl.eval.trm.pointwise.score_rows` or :func:`sophiavl.eval.trm.vlrewardbench.score_pairs`. No I/O beyond
reading the file, no judge.
"""

from __future__ import annotations

import json
from numbers import Real
from pathlib import Path
from typing import Any

#: The keys every record of each command has (``kind`` is ``""`` for a judged item, else the failure kind).
RECORD_KEYS = {
    "pointwise": ("index", "id", "source", "label", "score", "kind", "detail"),
    "pairwise": ("index", "id", "source", "better", "means", "samples_failed", "kind", "detail"),
}


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _problem(command: str, record: Any) -> str:
    """Why ``record`` is not a usable ``command`` record (``""`` when it is)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    missing = [k for k in RECORD_KEYS[command] if k not in record]
    if missing:
        return f"not a {command} record (missing {missing})"
    if not isinstance(record["index"], int) or not isinstance(record["kind"], str):
        return "index must be an integer and kind a string"
    if record["kind"]:
        return ""  # a failed item: counted by kind, its numbers are not read
    if command == "pointwise":
        ok = all(_number(record[k]) and 0 <= record[k] <= 1 for k in ("label", "score"))
        return "" if ok else "a judged row needs a label and a score, numbers in [0, 1]"
    means = record["means"]
    ok = isinstance(means, list) and len(means) == 2 and all(_number(m) for m in means)
    ok = ok and record["better"] in (0, 1) and not isinstance(record["better"], bool)
    return "" if ok else "a judged pair needs means [a, b] (numbers) and better 0 or 1"


def read_predictions(path: Path, command: str) -> list[dict[str, Any]]:
    """The records of a ``--predictions`` file of ``command`` (``pointwise`` or ``pairwise``), sorted by ``index``
    (the order a live run reports them in). Blank lines are skipped.

    Raises ``ValueError`` naming the file and line for a line that is not JSON or not a usable record (e.g. a
    pointwise file given to ``pairwise``, or a line torn by a killed run), and for two records of one index; raises
    ``FileNotFoundError`` when the file does not exist.
    """
    if not path.is_file():
        raise FileNotFoundError(f"--from-predictions {path}: no such file")
    records: list[dict[str, Any]] = []
    seen: set[int] = set()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            problem = _problem(command, record)
            if problem:
                raise ValueError(f"{path}:{number}: {problem}")
            if record["index"] in seen:
                raise ValueError(f"{path}:{number}: a second record of index {record['index']}")
            seen.add(record["index"])
            records.append(record)
    return sorted(records, key=lambda r: r["index"])
