"""``python -m sophiavl.eval.prepare``: one benchmark's hub files -> ``OUT/<benchmark>.parquet`` for verl.

    python -m sophiavl.eval.prepare --benchmark mathvista --src /data/MathVista --out data/eval
    python -m sophiavl.eval.prepare --benchmark mme --src hf://lmms-lab/MME --out data/eval --max-rows 100

``--src`` is a folder as ``huggingface-cli download --repo-type dataset`` lays it out, or ``hf://OWNER/NAME``
(downloaded into the hub cache with ``huggingface_hub``; ``HF_HUB_OFFLINE=1`` takes it from the cache). Writes
``OUT/<benchmark>.parquet`` (verl's RLHF layout, :mod:`sophiavl.eval.schema`), ``OUT/<benchmark>.rejects.jsonl``
(one line per row not converted, with its reason) and ``OUT/<benchmark>.prepare.json`` (counts); prints the latter.
Exit status 0 when at least one row was written, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sophiavl.eval.benchmarks import BENCHMARKS, Rejected, get
from sophiavl.eval.hubfiles import iter_rows, split_files
from sophiavl.eval.schema import PAPER_MAX_PIXELS, PAPER_MIN_PIXELS, SCHEMA, make_row

#: files fetched from the hub for a benchmark (its parquet shards and the card that names them)
HUB_PATTERNS = ["*.parquet", "README.md"]


@dataclass
class Options:
    """What :func:`prepare` needs; the CLI flags of the same names."""

    benchmark: str
    src: str
    out: str
    split: str | None = None  # None: the benchmark's default (testmini, validation, val, test, dev)
    config: str | None = None  # None: the benchmark's default (MathVerse testmini, MMBench en)
    max_rows: int | None = None  # stop after reading this many hub rows
    revision: str | None = None  # hf:// only
    min_pixels: int = PAPER_MIN_PIXELS
    max_pixels: int = PAPER_MAX_PIXELS


def resolve(src: str, revision: str | None) -> Path:
    """The local folder of ``src`` (a folder, or ``hf://ID`` through :func:`sophiavl.data_prep.hub.resolve_src`)."""
    from sophiavl.data_prep.hub import resolve_src

    return resolve_src(src, revision=revision, allow_patterns=HUB_PATTERNS)


def prepare(opts: Options) -> dict:
    """Converts one benchmark; returns the counts written to ``<benchmark>.prepare.json``.

    Reads the split's shards row by row (bounded memory: one batch of rows plus one row group of output), checks
    each row's id (the benchmark's own, or the row's position when it has none; duplicates are rejected), converts
    it, and writes it. Rows read = rows written + rows rejected.

    Raises:
        ValueError: unknown benchmark, pixel range not ``0 < min <= max``, ``max_rows < 1``.
        sophiavl.data_prep.hub.SourceError: unusable ``--src``.
        sophiavl.eval.hubfiles.SplitNotFound: the split's files are not in the folder.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    bench = get(opts.benchmark)
    if not 0 < opts.min_pixels <= opts.max_pixels:
        raise ValueError(f"need 0 < min_pixels <= max_pixels, got {opts.min_pixels}, {opts.max_pixels}")
    if opts.max_rows is not None and opts.max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {opts.max_rows}")
    split = opts.split or bench.split
    config = opts.config if opts.config is not None else bench.config
    start = time.time()
    root = resolve(opts.src, opts.revision)
    files = split_files(root, split, config)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    final = out / f"{bench.name}.parquet"
    tmp = out / f"{bench.name}.parquet.tmp"
    rejects_path = out / f"{bench.name}.rejects.jsonl"
    read = written = 0
    reasons: Counter[str] = Counter()
    seen: set[str] = set()
    buffer: list[dict] = []
    writer = pq.ParquetWriter(tmp, SCHEMA, compression="zstd")
    try:
        with open(rejects_path, "w", encoding="utf-8") as rejects:
            for position, row in enumerate(iter_rows(files)):
                if opts.max_rows is not None and read >= opts.max_rows:
                    break
                read += 1
                raw_id = row.get(bench.id_column) if bench.id_column else position
                row_id = "" if raw_id is None else str(raw_id).strip()
                try:
                    if not row_id:
                        raise Rejected("missing_id", f"no {bench.id_column}")
                    if row_id in seen:
                        raise Rejected("duplicate_id", f"{bench.id_column}={row_id} appears earlier")
                    seen.add(row_id)
                    item = bench.convert(row)
                except Rejected as e:
                    reasons[e.reason] += 1
                    line = {"position": position, "id": row_id or None, "reason": e.reason, "detail": e.detail}
                    rejects.write(json.dumps(line, ensure_ascii=False) + "\n")
                    continue
                item.id = row_id
                buffer.append(make_row(item, bench.name, split, written, opts.min_pixels, opts.max_pixels))
                written += 1
                if len(buffer) >= 64:
                    writer.write_table(pa.Table.from_pylist(buffer, schema=SCHEMA))
                    buffer = []
            if buffer:
                writer.write_table(pa.Table.from_pylist(buffer, schema=SCHEMA))
        writer.close()
        os.replace(tmp, final)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    rejected = sum(reasons.values())
    assert read == written + rejected, (read, written, rejected)
    report = {
        "benchmark": bench.name,
        "src": opts.src,
        "split": split,
        "config": config,
        "files": [str(f.relative_to(root)) for f in files],
        "output": str(final),
        "rows_read": read,
        "rows_written": written,
        "rows_rejected": {"total": rejected, "by_reason": dict(sorted(reasons.items()))},
        "min_pixels": opts.min_pixels,
        "max_pixels": opts.max_pixels,
        "seconds": round(time.time() - start, 3),
    }
    (out / f"{bench.name}.prepare.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark hub files -> verl RLHF parquet for +recipe=sophiavl_eval")
    parser.add_argument("--benchmark", required=True, choices=list(BENCHMARKS))
    parser.add_argument("--src", required=True, help="dataset folder (hub layout) or hf://OWNER/NAME")
    parser.add_argument("--out", required=True, help="output folder: <benchmark>.parquet and its reports")
    parser.add_argument("--split", help="split to convert (default: the paper's split of the benchmark)")
    parser.add_argument("--config", help="dataset config (default: MathVerse testmini, MMBench en)")
    parser.add_argument("--max-rows", type=int, help="read at most this many rows")
    parser.add_argument("--revision", help="hf:// only: branch, tag or commit")
    parser.add_argument("--min-pixels", type=int, default=PAPER_MIN_PIXELS, help="per-image minimum (px)")
    parser.add_argument("--max-pixels", type=int, default=PAPER_MAX_PIXELS, help="per-image maximum (px)")
    args = parser.parse_args(argv)
    opts = Options(**{k: v for k, v in vars(args).items()})
    try:
        report = prepare(opts)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0 if report["rows_written"] else 1


if __name__ == "__main__":
    sys.exit(main())
