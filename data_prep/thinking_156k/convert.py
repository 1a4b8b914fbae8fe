"""The Thinking-156k conversion: record files + images -> sharded train/val SFT parquet, report and rejects.

Four streaming passes over the record files, each parsing one record at a time:

1. **fields**: the union of each file's record keys picks the key of every role
   (:mod:`~sophiavl.data_prep.thinking_156k.fields`); malformed JSON and a file without a required role stop the run
   here, before anything is written;
2. **sharing**: per image path, the number of distinct questions (placeholders stripped) of the valid records that
   use it; images used by more than ``shared_image_limit`` distinct questions are over the limit;
3. **split**: the ``val_size`` valid rows whose image is not over the limit with the smallest key hashes
   (:func:`~sophiavl.data_prep.split.choose_val_keys`, key ``<record file>/<id>``) form the validation split;
4. **write**: each row is validated again, rows of an over-limit image are rejected (``image_shared``), images are
   read and checked (optionally in worker processes) and rows stream into the parquet shards.

Memory is bounded by the in-flight image batches, one parquet row group, the ``val_size`` keys and, per image path,
one 8-byte question hash (a set only for images used by several questions), not by the response texts.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pyarrow as pa

from sophiavl.data_prep.convert import RECORD_SUFFIXES, ConvertError, iter_raw
from sophiavl.data_prep.hub import IMAGE_PATTERNS, SourceError, resolve_src
from sophiavl.data_prep.options import ConversionOptions
from sophiavl.data_prep.records import RecordRejected
from sophiavl.data_prep.schema import IMAGE_MODES, MESSAGE, image_struct
from sophiavl.data_prep.split import choose_val_keys, key_hash, split_key
from sophiavl.data_prep.stream import finish_report, with_images, write_splits
from sophiavl.data_prep.writer import SplitWriters, remove_old_shards
from sophiavl.rewards.trm.prompt import PromptTemplate, load_template, sft_messages, strip_placeholders

from .fields import ROLES, FieldError, detect_fields
from .records import Sample, SampleRejected, parse_sample
from .report import TrmReport

# the files of a hub snapshot this converter reads (fnmatch, '*' also matches '/')
HUB_PATTERNS = ["*.json", "*.jsonl", "*.zip", *IMAGE_PATTERNS]
WORST_IMAGES = 20  # images listed in the report's image_sharing.worst

_EXTRA = pa.struct(
    [
        ("split", pa.string()),
        ("index", pa.int64()),
        ("id", pa.string()),
        ("data_source", pa.string()),
        ("score", pa.float64()),
    ]
)


@dataclass
class TrmOptions(ConversionOptions):
    """Thinking-156k conversion settings: the shared ones (1000 validation rows by default) plus
    ``shared_image_limit``, ``fields`` (role -> record key overrides) and ``prompt_template``; see
    ``python -m sophiavl.data_prep.thinking_156k --help``."""

    val_size: int = 1000
    shared_image_limit: int = 32
    fields: dict[str, str] = field(default_factory=dict)
    prompt_template: str | None = None


def row_schema(images: str) -> pa.Schema:
    """``messages: list<struct<role, content>>``, ``images: list<struct<bytes: binary>>`` (embed) or
    ``list<struct<image: string>>`` (path), ``extra_info: struct<split, index, id, data_source, score>``.
    One field per image struct (:func:`~sophiavl.data_prep.schema.image_struct`)."""
    return pa.schema(
        [("messages", pa.list_(MESSAGE)), ("images", pa.list_(image_struct(images))), ("extra_info", _EXTRA)]
    )


def make_row(sample: Sample, images: list[dict], split: str, index: int, template: PromptTemplate) -> dict:
    """One output row: ``messages`` from :func:`~sophiavl.rewards.trm.prompt.sft_messages` (one ``<image>``
    when ``images`` is not empty), ``images`` as given (``[]`` for a text-only row), and ``extra_info``."""
    return {
        "messages": sft_messages(sample.question, sample.response, bool(images), sample.score, template),
        "images": images,
        "extra_info": {
            "split": split,
            "index": index,
            "id": sample.sample_id,
            "data_source": sample.data_source,
            "score": sample.score,
        },
    }


def discover_record_files(src: Path) -> list[tuple[str, Path]]:
    """The record files ``*.json``/``*.jsonl`` directly in ``src`` and in ``src/json``, as ``(name, path)`` with
    ``name`` the path relative to ``src`` (``text_part.jsonl``, ``json/multimodal_part.json``), sorted by name.

    Raises:
        ConvertError: ``src`` is not a folder or holds no record file.
    """
    if not src.is_dir():
        raise ConvertError(f"{src} is not a folder")
    files = []
    for folder in (src, src / "json"):
        if folder.is_dir():
            files += [p for p in folder.iterdir() if p.is_file() and p.suffix in RECORD_SUFFIXES]
    if not files:
        raise ConvertError(f"no *.json or *.jsonl record files in {src} or {src / 'json'}")
    return sorted((p.relative_to(src).as_posix(), p) for p in files)


class ImageSharing:
    """Counts, per image path, the rows and the distinct questions (by an 8-byte hash of the question with its
    placeholders stripped) that use it."""

    def __init__(self):
        self._questions: dict[str, int | set[int]] = {}
        self.rows: Counter[str] = Counter()

    def add(self, path: str, question: str) -> None:
        h = key_hash(strip_placeholders(question))
        self.rows[path] += 1
        seen = self._questions.get(path)
        if seen is None:
            self._questions[path] = h
        elif isinstance(seen, int):
            if seen != h:
                self._questions[path] = {seen, h}
        else:
            seen.add(h)

    def distinct(self, path: str) -> int:
        """Distinct questions that use ``path`` (0 for an unknown path)."""
        seen = self._questions.get(path)
        return 0 if seen is None else 1 if isinstance(seen, int) else len(seen)

    def over(self, limit: int) -> dict[str, int]:
        """The paths used by more than ``limit`` distinct questions -> their number of distinct questions."""
        return {p: n for p in self._questions if (n := self.distinct(p)) > limit}

    def worst(self, n: int) -> list[dict]:
        """The ``n`` paths with the most distinct questions (ties: more rows, then the path)."""
        ranked = sorted(self._questions, key=lambda p: (-self.distinct(p), -self.rows[p], p))[:n]
        return [{"path": p, "distinct_questions": self.distinct(p), "rows": self.rows[p]} for p in ranked]


Item = Sample | SampleRejected


def iter_samples(files, fields: dict[str, dict], max_rows: int | None) -> Iterator[tuple[str, Path, int, Item]]:
    """Yields ``(file name, path, position, Sample | SampleRejected)`` over the files in order, at most
    ``max_rows`` records in all (duplicate ids are tracked per file)."""
    seen: dict[str, set[str]] = {}
    for name, path, i, rec in iter_raw(files, max_rows):
        try:
            item = parse_sample(rec, fields[name], i, seen.setdefault(name, set()), Path(name).stem)
        except SampleRejected as e:
            item = e
        yield name, path, i, item


def _pass_fields(files, overrides: dict[str, str], max_rows: int | None) -> tuple[int, dict[str, dict]]:
    """Pass 1: ``(records read, file name -> role -> key)``. Files with no record read get no entry."""
    keys: dict[str, set[str]] = {}
    total = 0
    for name, _path, _i, rec in iter_raw(files, max_rows):
        total += 1
        known = keys.setdefault(name, set())
        if isinstance(rec, dict) and len(known) < 10_000:
            known.update(k for k in rec if isinstance(k, str))
    try:
        return total, {name: detect_fields(k, overrides, name) for name, k in keys.items()}
    except FieldError as e:
        raise ConvertError(str(e)) from None


def convert_trm(opts: TrmOptions) -> dict:
    """Runs the conversion; returns the report dict (also written to ``<out>/report.json``).

    The report's ``status`` is ``"ok"``, or ``"reject_rate_exceeded"`` when more than ``max_reject_rate`` of the
    records read were rejected (the parquet files are written either way).

    Raises:
        ConvertError: bad options, an unusable source, no record files or records, malformed JSON, a record file
            without a required field, a bad ``--field`` (before anything is written).
    """
    t0 = time.perf_counter()
    out = Path(opts.out)
    if opts.images not in IMAGE_MODES:
        raise ConvertError(f"--images must be one of {IMAGE_MODES}, not {opts.images!r}")
    schema = row_schema(opts.images)
    if opts.shard_rows < 1 or opts.workers < 1 or opts.val_size < 0 or not 0 <= opts.max_reject_rate <= 1:
        raise ConvertError("need --shard-rows >= 1, --workers >= 1, --val-size >= 0, 0 <= --max-reject-rate <= 1")
    if opts.shared_image_limit < 1 or opts.batch_rows < 1:
        raise ConvertError("need --shared-image-limit >= 1")
    try:
        template = load_template(opts.prompt_template)
    except (OSError, ValueError) as e:
        raise ConvertError(f"--prompt-template: {e}") from None
    unknown = set(opts.fields) - set(ROLES)
    if unknown:
        raise ConvertError(f"--field: unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
    try:
        src = resolve_src(opts.src, revision=opts.revision, allow_patterns=HUB_PATTERNS)
    except SourceError as e:
        raise ConvertError(str(e)) from None
    files = discover_record_files(src)
    total, fields = _pass_fields(files, opts.fields, opts.max_rows)
    if total == 0:
        raise ConvertError(f"no records in {[str(p) for _, p in files]}")

    sharing = ImageSharing()  # pass 2
    for _name, _path, _i, item in iter_samples(files, fields, opts.max_rows):
        if isinstance(item, Sample) and item.image_paths:
            sharing.add(item.image_paths[0], item.question)
    shared = sharing.over(opts.shared_image_limit)

    def val_candidates() -> Iterator[str]:  # pass 3
        for name, _path, _i, item in iter_samples(files, fields, opts.max_rows):
            if isinstance(item, Sample) and not (item.image_paths and item.image_paths[0] in shared):
                yield split_key(name, item.sample_id)

    val_keys = choose_val_keys(val_candidates(), opts.val_size)

    out.mkdir(parents=True, exist_ok=True)
    remove_old_shards(out)
    report = TrmReport(out)
    report.fields = {name: fields.get(name) for name, _ in files}
    write = partial(_write, files, fields, opts, shared, report, template)
    shards = write_splits(opts, src, schema, val_keys, report, total, write)
    report.image_sharing = {
        "limit": opts.shared_image_limit,
        "images": len(sharing.rows),
        "images_over_limit": len(shared),
        "rows_rejected": report.rejected["image_shared"],
        "worst": sharing.worst(WORST_IMAGES),
    }
    return finish_report(report, opts, shards, src, t0)


def _write(
    files, fields, opts: TrmOptions, shared: dict[str, int], report, template, writers: SplitWriters, bar, stage
):
    """Pass 4: validates, checks images and writes the rows; every record read is written or rejected."""

    def rows() -> Iterator[tuple]:
        for name, path, i, item in iter_samples(files, fields, opts.max_rows):
            report.read(name)
            if isinstance(item, Sample) and item.image_paths and item.image_paths[0] in shared:
                p = item.image_paths[0]
                detail = f"{p} is used by {shared[p]} distinct questions (limit {opts.shared_image_limit})"
                item = SampleRejected("image_shared", detail, item.sample_id)
            yield name, path, i, item

    for (name, path, i, item), res in with_images(stage, rows(), Sample, opts.batch_rows, bar):
        if isinstance(item, SampleRejected):
            report.reject(name, path.name, i, item.sample_id, item.reason, item.detail)
            continue
        if isinstance(res, RecordRejected):
            report.reject(name, path.name, i, item.sample_id, res.reason, res.detail)
            continue
        images, nbytes = res
        split, index = writers.place(split_key(name, item.sample_id))
        writers.write(split, make_row(item, images, split, index, template), nbytes)
        report.written_sample(name, split, item.data_source, item.score, len(images), nbytes)
