"""Takes the first rows of the prepared sample parquet for the CPU end-to-end run.

    python examples/cpu/sample_rows.py SRC_DIR OUT_DIR [--train-rows N] [--val-rows N] [--text-only]
        [--problem-type TYPE]

With --problem-type only rows of that extra_info.problem_type are kept (the demo takes the multiple-choice rows:
their few distinct answers let a tiny policy be right some of the time). Rows are kept as data_prep wrote them
(images, `<image>` placeholders, ground truth, extra_info). With --text-only (the run with a text-only Qwen2 policy)
every row loses its images and its `<image>` placeholders. Writes OUT_DIR/train.parquet and OUT_DIR/val.parquet.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def first_rows(table: pa.Table, rows: int, text_only: bool, problem_type: str | None = None) -> pa.Table:
    """The first ``rows`` rows (of ``problem_type`` when given; fewer when fewer exist), images dropped when
    ``text_only``."""
    if problem_type is not None:
        keep = [info.get("problem_type") == problem_type for info in table.column("extra_info").to_pylist()]
        table = table.filter(pa.array(keep, type=pa.bool_()))
    table = table.slice(0, rows)
    if not text_only:
        return table
    if "images" in table.column_names:
        table = table.drop_columns(["images"])
    records = table.to_pylist()
    for record in records:
        for message in record["prompt"]:
            message["content"] = message["content"].replace("<image>\n", "").replace("<image>", "").strip()
    return pa.Table.from_pylist(records, schema=table.schema)


def read_split(src: Path, split: str) -> pa.Table:
    files = sorted(glob.glob(str(src / f"{split}-*.parquet")))
    if not files:
        raise SystemExit(f"no {split}-*.parquet under {src}: run `make prepare-data` first")
    return pa.concat_tables([pq.read_table(f) for f in files])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-rows", type=int, default=32)
    parser.add_argument("--val-rows", type=int, default=8)
    parser.add_argument("--text-only", action="store_true", help="drop images and <image> placeholders")
    parser.add_argument("--problem-type", help="keep only rows of this extra_info.problem_type")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", args.train_rows), ("val", args.val_rows)):
        table = first_rows(read_split(args.src, split), rows, args.text_only, args.problem_type)
        if table.num_rows == 0:
            raise SystemExit(f"no {split} rows of problem type {args.problem_type!r} under {args.src}")
        pq.write_table(table, args.out / f"{split}.parquet")
        kind = "text-only" if args.text_only else "image and text"
        print(f"{split}: {table.num_rows} {kind} rows -> {args.out / f'{split}.parquet'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
