"""``import-responses``: responses made elsewhere (for example a checkpoint sampled offline with vLLM) -> rollout
shards, as if collected during a GRPO run, ready for ``annotate``.

    python -m sophiavl.data_prep.trm_build import-responses --responses FILE.jsonl [FILE.jsonl ...] \\
        --data PREPARED_DIR --out ROLLOUT_DIR

Each input line is one JSON object ``{"split": "train", "index": 12, "response": "...", "problem_id": "..."}``
(``problem_id`` optional: when given it must match the prepared row's). The row is looked up in the prepared parquet
folder (``make prepare-data`` output) by ``extra_info.split`` + ``extra_info.index``; its question, identity and
ground truth come from there, and ``Ro`` is scored with the project's outcome scorer
(:func:`sophiavl.rewards.outcome.compute_score`). Each input file ``STEM.jsonl`` becomes
``ROLLOUT_DIR/rollouts-offline-STEM.jsonl`` (source ``offline``, rid ``STEM:<line number>``, step and group null)
and a report ``ROLLOUT_DIR/import_report-STEM.json``.

Streaming: the input is read twice, line by line (first the row ids it needs, then the records); of the parquet only
the ``data_source``, ``reward_model`` and ``extra_info`` columns are read, never the images, and only the rows the
input names are kept. A rerun appends only the lines whose rid its shard lacks (a killed import resumes).

Bad input is counted with its first example, never dropped silently: ``bad_json``, ``bad_line`` (a field missing or
of the wrong type), ``missing_row`` (no such split/index in the prepared data), ``problem_id_mismatch``. A line whose
``Ro`` cannot be computed (``scorer_failed``: the scorer timed out or raised; ``unscored``: an unknown problem type
or no ground truth) is written with a null outcome and counted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sophiavl.rewards.collect import RolloutRecord, ShardWriter

from .prepared_rows import PREPARED_GLOBS

COMMAND = "import-responses"
HELP = "responses made elsewhere (JSONL of split, index, response) -> rollout shards, Ro scored from the prepared rows"

#: The parquet columns read (never ``images`` or ``prompt``).
COLUMNS = ("data_source", "reward_model", "extra_info")
#: Records written per flush.
WRITE_BATCH = 256
#: Longest example kept per kind in the report.
EXAMPLE_CHARS = 300
REJECT_KINDS = ("bad_json", "bad_line", "missing_row", "problem_id_mismatch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommand's flags."""
    parser.add_argument("--responses", nargs="+", required=True, type=Path, metavar="FILE",
                        help="JSONL files, one {split, index, response[, problem_id]} object per line")  # fmt: skip
    parser.add_argument("--data", required=True, type=Path, help="prepared parquet folder (make prepare-data output)")
    parser.add_argument("--out", required=True, type=Path, help="rollout folder (created; shards are appended to)")
    parser.add_argument("--scorer-timeout-s", type=float, default=5.0,
                        help="wall-clock bound of one outcome scoring, seconds (default %(default)s)")  # fmt: skip


@dataclass(frozen=True)
class PreparedRow:
    """What a record needs of one prepared row."""

    problem_id: str
    data_source: str
    problem_type: str
    question: str
    ground_truth: Any
    extra_info: dict


@dataclass
class ImportReport:
    """The counts of one input file: ``lines`` read (blank lines not counted), ``imported`` records written,
    ``already`` lines skipped because their rid is in the shard already (a resumed import), ``rejected`` and
    ``unscored`` per kind (see the module docstring), each kind's first ``examples`` entry (``"FILE:LINE: why"``)."""

    file: str
    shard: str
    lines: int = 0
    imported: int = 0
    already: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    unscored: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def count(self, table: dict[str, int], kind: str, where: str, why: str) -> None:
        table[kind] = table.get(kind, 0) + 1
        self.examples.setdefault(kind, f"{where}: {why}"[:EXAMPLE_CHARS])

    def as_dict(self) -> dict:
        return {"file": self.file, "shard": self.shard, "lines": self.lines, "imported": self.imported,
                "already_imported": self.already, "rejected": self.rejected, "unscored": self.unscored,
                "examples": self.examples}  # fmt: skip

    def text(self) -> str:
        """A few lines for the console."""
        rejected, unscored = sum(self.rejected.values()), sum(self.unscored.values())
        head = f"{self.file}: {self.lines} lines, {self.imported} imported, {self.already} already in {self.shard}"
        lines = [f"{head}, {rejected} rejected, {unscored} without Ro"]
        for kind, n in {**self.rejected, **self.unscored}.items():
            lines.append(f"  {kind}: {n} (e.g. {self.examples[kind]})")
        return "\n".join(lines)


def parse_line(raw: bytes) -> tuple[str, int, str, str | None]:
    """``(split, index, response, problem_id or None)`` of one input line.

    Raises:
        json.JSONDecodeError / UnicodeDecodeError: not JSON (a ``bad_json`` line).
        ValueError: not an object, or ``split``/``response`` not a string, ``index`` not an integer >= 0,
            ``problem_id`` neither absent, null nor a string (a ``bad_line``).
    """
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"a line is a JSON object, not {type(data).__name__}")
    for name in ("split", "index", "response"):
        if name not in data:
            raise ValueError(f"field {name!r} missing")
    split, index, response, problem_id = data["split"], data["index"], data["response"], data.get("problem_id")
    if not isinstance(split, str) or not split:
        raise ValueError(f"field 'split' must be a non-empty string, not {split!r}")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"field 'index' must be an integer >= 0, not {index!r}")
    if not isinstance(response, str):
        raise ValueError(f"field 'response' must be a string, not {type(response).__name__}")
    if problem_id is not None and not isinstance(problem_id, str):
        raise ValueError(f"field 'problem_id' must be a string, not {problem_id!r}")
    return split, index, response, problem_id


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of the non-blank lines of ``path``, 1-based, one in memory at a time."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                yield number, raw


def wanted_rows(paths: list[Path]) -> set[tuple[str, int]]:
    """The ``(split, index)`` pairs the inputs name (their unparsable lines left out, counted later)."""
    wanted: set[tuple[str, int]] = set()
    for path in paths:
        for _, raw in _lines(path):
            try:
                split, index, _, _ = parse_line(raw)
            except (ValueError, UnicodeDecodeError):
                continue
            wanted.add((split, index))
    return wanted


def prepared_rows(data_dir: Path, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], PreparedRow]:
    """The rows of ``data_dir/*.parquet`` whose ``(extra_info.split, extra_info.index)`` is in ``wanted``, read in
    record batches of the :data:`COLUMNS` only (memory: the wanted rows' text, never an image).

    Raises ``FileNotFoundError`` when ``data_dir`` holds no parquet file.
    """
    import pyarrow.parquet as pq

    files = sorted({p for glob in PREPARED_GLOBS for p in Path(data_dir).glob(glob)})
    if not files:
        raise FileNotFoundError(f"no prepared parquet in {data_dir} (make prepare-data writes <dir>/train-*.parquet)")
    found: dict[tuple[str, int], PreparedRow] = {}
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024, columns=list(COLUMNS)):
            for row in batch.to_pylist():
                info = row.get("extra_info") or {}
                key = (info.get("split"), info.get("index"))
                if key not in wanted or key in found:
                    continue
                found[key] = PreparedRow(
                    problem_id=str(info.get("problem_id") or ""),
                    data_source=str(row.get("data_source") or info.get("data_source") or ""),
                    problem_type=str(info.get("problem_type") or ""),
                    question=str(info.get("question") or ""),
                    ground_truth=(row.get("reward_model") or {}).get("ground_truth"),
                    extra_info=info,
                )
    return found


def existing_rids(shard: Path) -> set[str]:
    """The rids already in ``shard`` (a rerun skips them); torn or malformed lines are ignored here, as the readers
    of the shard skip and count them."""
    rids: set[str] = set()
    if shard.exists():
        for _, raw in _lines(shard):
            try:
                rids.add(RolloutRecord.from_line(raw.decode("utf-8")).rid)
            except (ValueError, UnicodeDecodeError):
                continue
    return rids


def score_outcome(row: PreparedRow, response: str, timeout_s: float) -> tuple[float | None, str | None, str]:
    """``(Ro, None, "")`` or ``(None, kind, why)`` with kind ``scorer_failed`` (timed out, raised, its process
    died) or ``unscored`` (unknown problem type, no ground truth)."""
    from sophiavl.rewards.outcome import compute_score

    try:
        result = compute_score(row.data_source, response, row.ground_truth, row.extra_info, scorer_timeout_s=timeout_s)
    except ValueError as exc:
        return None, "unscored", str(exc)
    if result["scorer_failed"]:
        return None, "scorer_failed", f"the outcome scorer failed within {timeout_s:g} s"
    return float(result["score"]), None, ""


def import_file(path: Path, rows: dict[tuple[str, int], PreparedRow], out: Path, timeout_s: float) -> ImportReport:
    """Imports one input file into ``out/rollouts-offline-<stem>.jsonl``; returns its report."""
    tag = f"offline-{path.stem}"
    shard = out / f"rollouts-{tag}.jsonl"
    report = ImportReport(file=str(path), shard=str(shard))
    done = existing_rids(shard)
    writer = ShardWriter(out, tag)
    pending: list[RolloutRecord] = []
    try:
        for number, raw in _lines(path):
            report.lines += 1
            where, rid = f"{path.name}:{number}", f"{path.stem}:{number}"
            if rid in done:
                report.already += 1
                continue
            try:
                split, index, response, problem_id = parse_line(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                report.count(report.rejected, "bad_json", where, str(exc))
                continue
            except ValueError as exc:
                report.count(report.rejected, "bad_line", where, str(exc))
                continue
            row = rows.get((split, index))
            if row is None:
                report.count(report.rejected, "missing_row", where, f"no row split={split!r} index={index}")
                continue
            if problem_id is not None and problem_id != row.problem_id:
                why = f"problem_id {problem_id!r}, the prepared row {split}/{index} has {row.problem_id!r}"
                report.count(report.rejected, "problem_id_mismatch", where, why)
                continue
            outcome, kind, why = score_outcome(row, response, timeout_s)
            if kind is not None:
                report.count(report.unscored, kind, where, why)
            pending.append(
                RolloutRecord(
                    rid=rid,
                    split=split,
                    index=index,
                    problem_id=row.problem_id,
                    data_source=row.data_source,
                    problem_type=row.problem_type,
                    question=row.question,
                    response=response,
                    outcome=outcome,
                    step=None,
                    group=None,
                    source="offline",
                )  # fmt: skip
            )
            if len(pending) >= WRITE_BATCH:
                writer.write(pending)
                report.imported += len(pending)
                pending = []
        writer.write(pending)
        report.imported += len(pending)
    finally:
        writer.close()
    return report


def run(args: argparse.Namespace) -> int:
    """Imports every ``--responses`` file; prints and writes each file's report. Exit status 0; 1 when some lines
    were read and none is in a shard (all rejected: a wrong ``--data``?); 2 for unusable arguments (a missing file,
    no prepared parquet, two inputs with one stem)."""
    paths: list[Path] = list(args.responses)
    missing = [str(p) for p in paths if not p.is_file()]
    stems = [p.stem for p in paths]
    if missing:
        print(f"import-responses: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if len(set(stems)) != len(stems):
        print(f"import-responses: two inputs share a file stem (their rids would clash): {stems}", file=sys.stderr)
        return 2
    try:
        rows = prepared_rows(args.data, wanted_rows(paths))
    except FileNotFoundError as exc:
        print(f"import-responses: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    lines = kept = 0
    for path in paths:
        report = import_file(path, rows, args.out, args.scorer_timeout_s)
        report_path = args.out / f"import_report-{path.stem}.json"
        report_path.write_text(json.dumps(report.as_dict(), indent=1) + "\n")
        print(report.text())
        print(f"  report: {report_path}")
        lines += report.lines
        kept += report.imported + report.already
    return 1 if lines and not kept else 0
