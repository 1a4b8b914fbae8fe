"""``annotate``: label collected rollout responses with a large judge on an OpenAI-compatible server.

    python -m sophiavl.data_prep.trm_build annotate --rollouts DIR [DIR ...] --data PREPARED_DIR \\
        --base-url URL --model Qwen/Qwen2.5-VL-72B-Instruct --out OUT [--samples K] [--concurrency N] ...

Reads the rollout shards (``sophiavl.rewards.collect``), looks up each row's images in the prepared parquet by
``(split, index)`` (:mod:`.prepared_rows`), stores each distinct image once under ``OUT/images/`` and asks the judge
with the labelling prompt (:mod:`.labelling`) through the project's judge client (:mod:`.label_judge`). Each row
becomes one :class:`~sophiavl.data_prep.trm_build.annotation.Annotation` line in ``OUT/annotations-<tag>.jsonl``;
``OUT/annotate_report.json`` counts everything that was skipped or failed, with an example of each.

Resume: a rerun skips every (rid, judge model) pair already written in ``OUT``. A row whose judge call failed in a
way that asking later may cure (connection refused, timeout, 429, 5xx after the retries) is not written, so a rerun
asks again; a judge outage (``--max-consecutive-failures`` such rows in a row, or more than ``--max-failures`` in
all) stops the run with a message naming the endpoint and exit status 3. docs/trm-data-build.md describes it all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from sophiavl.data_prep.imagecheck import ImageRejected
from sophiavl.data_prep.trm_build.annotation import GRID, Annotation
from sophiavl.data_prep.trm_build.annotation_files import AnnotationWriter, file_tag, pair_key, scan_done
from sophiavl.data_prep.trm_build.image_store import ImageStore
from sophiavl.data_prep.trm_build.label_judge import STRUCTURED_MODES, STRUCTURED_STYLES, LabelJudge, Labels
from sophiavl.data_prep.trm_build.labelling import label_template
from sophiavl.data_prep.trm_build.prepared_rows import PreparedRows, RowNotFound
from sophiavl.rewards.collect import RolloutRecord
from sophiavl.rewards.collect.shards import ShardReadStats, iter_shard_records, shard_paths
from sophiavl.rewards.trm.openai_api import bearer_headers, served_model

COMMAND = "annotate"
HELP = "label collected rollouts with a large judge on an OpenAI-compatible server (resumable)"
REPORT = "annotate_report.json"
#: Exit status of a run stopped by a judge outage (the rerun resumes).
EXIT_OUTAGE = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``annotate`` (docs/trm-data-build.md lists them)."""
    parser.add_argument("--rollouts", nargs="+", required=True, metavar="DIR", help="rollout shard folders")
    parser.add_argument("--data", required=True, metavar="DIR", help="the prepared parquet folder the rollouts used")
    parser.add_argument("--out", required=True, metavar="DIR", help="annotation folder (created; a rerun resumes)")
    parser.add_argument("--base-url", required=True, help="the judge server: http://host:port[/v1]")
    parser.add_argument("--model", default=None, help="served judge model (default: the server's first model)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable with the bearer key")
    parser.add_argument("--tag", default=None, help="annotation file tag (default: from the model name)")
    parser.add_argument("--samples", type=int, default=1, metavar="K", help="labels asked per row (K > 1: agreement)")
    parser.add_argument("--temperature", type=float, default=None, help="judge temperature (default 0; 1.0 if K > 1)")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed sent to the server")
    parser.add_argument("--max-tokens", type=int, default=16, help="bound on a reply, tokens")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight at once")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="limit of one HTTP attempt, seconds")
    parser.add_argument("--max-retries", type=int, default=3, help="extra attempts on connection errors/timeouts/5xx")
    parser.add_argument("--backoff-s", type=float, default=1.0, help="first backoff between attempts, seconds")
    parser.add_argument("--backoff-max-s", type=float, default=30.0, help="longest backoff, seconds")
    parser.add_argument("--prompt-template", default=None, metavar="FILE", help="labelling template (default: ours)")
    parser.add_argument(
        "--structured-output", choices=STRUCTURED_MODES, default="auto", help="ask the server to answer on the grid"
    )
    parser.add_argument("--structured-style", choices=STRUCTURED_STYLES, default="structured_outputs")
    parser.add_argument(
        "--max-consecutive-failures", type=int, default=32, metavar="N", help="stop after N unreachable rows in a row"
    )
    parser.add_argument("--max-failures", type=int, default=1000, metavar="N", help="stop after N unreachable rows")
    parser.add_argument("--cache-groups", type=int, default=2, help="prepared row groups kept in memory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


class _Counts:
    """The run's counters and one example per kind, as written to the report."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, int]] = {"rows": {}, "row_errors": {}, "sample_errors": {}, "unreachable": {}}
        self.examples: dict[str, str] = {}
        self.histogram = {f"{g:.1f}": 0 for g in GRID}

    def add(self, group: str, kind: str, example: str | None = None) -> None:
        self.values[group][kind] = self.values[group].get(kind, 0) + 1
        if example is not None:
            self.examples.setdefault(kind, example[:300])


def _records(folders: list[str], stats: ShardReadStats) -> Iterator[RolloutRecord]:
    for folder in folders:
        yield from iter_shard_records(folder, stats)


def _count_lines(folders: list[str]) -> int:
    """Lines in all shards (the progress bar's total), counted in 1 MiB blocks."""
    total = 0
    for folder in folders:
        for path in shard_paths(folder):
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    total += block.count(b"\n")
    return total


class _NoBar:
    """What ``--no-progress`` shows: nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(folders: list[str], disable: bool):
    """A progress bar on stderr with rate and ETA over the shards' lines (tqdm, which ``datasets`` installs)."""
    if disable:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=_count_lines(folders), unit="row", file=sys.stderr, mininterval=1.0, dynamic_ncols=True)


class Annotator:
    """One run of ``annotate`` (see the module docstring); :meth:`run` returns the exit status."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.counts = _Counts()
        self.stats = ShardReadStats()
        self.stopped: str | None = None
        self.structured_note: str | None = None
        self.consecutive = 0
        self.unreachable = 0

    # ------------------------------------------------------------------ set-up

    def _judge(self, model: str | None) -> LabelJudge:
        args = self.args
        temperature = args.temperature if args.temperature is not None else (1.0 if args.samples > 1 else 0.0)
        style = None if args.structured_output == "off" else args.structured_style
        return LabelJudge(
            args.base_url,
            model,
            structured_style=style,
            api_key_env=args.api_key_env or None,
            max_concurrency=args.concurrency,
            timeout_s=args.timeout_s,
            max_retries=args.max_retries,
            backoff_s=args.backoff_s,
            backoff_max_s=args.backoff_max_s,
            max_tokens=args.max_tokens,
            samples=args.samples,
            temperature=temperature,
            seed=args.seed,
            prompt_template=self.template.path,
        )

    async def _served_model(self, judge: LabelJudge) -> str:
        async with aiohttp.ClientSession(trust_env=False) as session:
            return await served_model(session, judge.url, bearer_headers(self.args.api_key_env), self.args.timeout_s)

    # ------------------------------------------------------------------ one row

    def _write(self, writer: AnnotationWriter, annotation: Annotation) -> None:
        writer.write(annotation.to_line())
        self.counts.add("rows", "written")

    def _prepare(self, record: RolloutRecord, rows: PreparedRows, store: ImageStore) -> tuple[list[str], bytes | None]:
        """The row's image names and the image to send; raises ``ValueError("<kind>: <detail>")`` for a row error."""
        try:
            row = rows.get(record.split, record.index)
        except RowNotFound:
            raise ValueError(f"missing_row: ({record.split!r}, {record.index}) not in the prepared data") from None
        except OSError as exc:
            raise ValueError(f"bad_image: {exc}") from None
        if record.problem_id and row.problem_id and record.problem_id != row.problem_id:
            raise ValueError(
                f"problem_id_mismatch: rollout {record.problem_id!r}, prepared row ({record.split!r}, "
                f"{record.index}) {row.problem_id!r}"
            )
        if len(row.images) > 1:
            raise ValueError(f"multi_image: {len(row.images)} images; the judge client sends one per request")
        names = []
        for data in row.images:
            try:
                names.append(store.put(data))
            except ImageRejected as exc:
                raise ValueError(f"bad_image: {exc}") from None
        return names, (row.images[0] if row.images else None)

    async def _ask(self, judge: LabelJudge, record: RolloutRecord, image: bytes | None) -> Labels:
        """The row's labels; in ``auto`` mode a 400 answered to structured output is asked again without it, and
        structured output stays off when that succeeds (the server does not take the field)."""
        sent = judge.structured_style  # what this row's request carries (rows in flight may have been sent with it)
        labels = await judge.label(record.question, record.response, image)
        if self.args.structured_output == "auto" and labels.status == 400 and sent is not None:
            judge.structured_style = None
            retry = await judge.label(record.question, record.response, image)
            if retry.status == 400:  # the row itself is refused, not the field
                judge.structured_style = sent
            elif self.structured_note is None:
                self.structured_note = f"off: the server answered 400 to {sent!r} ({labels.detail[:200]})"
            labels = retry
        return labels

    def _finish(self, writer: AnnotationWriter, record: RolloutRecord, names: list[str], labels: Labels) -> None:
        if labels.unreachable and self.stopped:
            return
        if labels.unreachable:
            self.unreachable += 1
            self.consecutive += 1
            kind = (labels.errors[0] or "error").split(":", 1)[0]
            self.counts.add("unreachable", kind, f"{record.rid}: {labels.errors[0]}")
            if self.consecutive >= self.args.max_consecutive_failures or self.unreachable > self.args.max_failures:
                self.stopped = (
                    f"judge outage at {self.judge.url}: {self.consecutive} row(s) in a row and {self.unreachable} in "
                    f"all got no reply ({labels.detail[:200]}); rerun the same command to resume"
                )
            return
        self.consecutive = 0
        for score, error in zip(labels.scores, labels.errors, strict=True):
            if score is not None:
                self.counts.histogram[f"{score:.1f}"] += 1
            else:
                kind = (error or "error").split(":", 1)[0]
                self.counts.add("sample_errors", kind, f"{record.rid}: {error}")
        annotation = Annotation(
            rollout=record,
            judge_model=self.model,
            prompt_sha256=self.template.sha256,
            images=names,
            scores=labels.scores,
            raw=labels.raw,
            errors=labels.errors,
        )
        self._write(writer, annotation)

    # ------------------------------------------------------------------ the run

    async def _annotate(self, rows: PreparedRows, writer: AnnotationWriter, done: set[int]) -> None:
        """Reads the rollouts and hands the rows to ``--concurrency`` workers through a bounded queue (memory: at most
        twice that many rows, images included, are held at once); each worker asks the judge and writes the line."""
        store = self.store
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.args.concurrency)
        bar = _progress(self.args.rollouts, self.args.no_progress)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                record, names, image = item
                if not self.stopped:
                    try:
                        labels = await self._ask(self.judge, record, image)
                        self._finish(writer, record, names, labels)  # a reply that came is kept, even after a stop
                    except Exception as exc:  # a bug must stop the run, not leave the reader waiting on a full queue
                        self.stopped = f"internal error on rollout {record.rid}: {exc!r}"
                        raise
                bar.update(1)

        workers = [asyncio.ensure_future(worker()) for _ in range(self.args.concurrency)]
        try:
            for record in _records(self.args.rollouts, self.stats):
                if self.stopped:
                    break
                self.counts.add("rows", "read")
                key = pair_key(record.rid, self.model)
                if key in done:
                    self.counts.add("rows", "skipped_done")
                    bar.update(1)
                    continue
                done.add(key)  # a rid that comes again in this run is a duplicate
                try:
                    names, image = self._prepare(record, rows, store)
                except ValueError as exc:
                    kind = str(exc).split(":", 1)[0]
                    self.counts.add("row_errors", kind, f"{record.rid}: {exc}")
                    self._write(writer, Annotation(record, self.model, self.template.sha256, row_error=str(exc)))
                    bar.update(1)
                    continue
                await queue.put((record, names, image))
            if not self.stopped:
                for _ in workers:
                    await queue.put(None)
                await asyncio.gather(*workers)
        finally:
            for task in workers:  # after an outage (or an error): the rows in flight are dropped, a rerun asks them
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            bar.close()
            await self.judge.aclose()

    def _report(self, started: float, scan, extra: dict[str, Any]) -> dict[str, Any]:
        rows = self.counts.values["rows"]
        report = {
            "command": "annotate",
            "endpoint": self.judge.url,
            "judge_model": self.model,
            "prompt_template": self.template.path,
            "prompt_sha256": self.template.sha256,
            "samples": self.args.samples,
            "temperature": self.judge.temperature,
            "structured_output": {
                "mode": self.args.structured_output,
                "style": self.args.structured_style,
                "active_at_end": self.judge.structured_style is not None,
                "note": self.structured_note,
            },
            "rollouts": {
                "shards": self.stats.shards,
                "records": self.stats.records,
                "rejected": self.stats.rejected,
                "examples": self.stats.examples,
            },
            "resume": {
                "annotation_files": scan.files,
                "lines_before": scan.lines,
                "rejected": scan.rejected,
                "examples": scan.examples,
            },
            "rows": {
                "read": rows.get("read", 0),
                "skipped_done": rows.get("skipped_done", 0),
                "written": rows.get("written", 0),
                "unreachable_not_written": self.unreachable,
            },
            "row_errors": self.counts.values["row_errors"],
            "sample_errors": self.counts.values["sample_errors"],
            "unreachable": self.counts.values["unreachable"],
            "examples": self.counts.examples,
            "scores": self.counts.histogram,
            "images": {"written": self.store.written, "reused": self.store.reused},
            "judge": self.judge.snapshot(),
            "elapsed_s": round(time.monotonic() - started, 3),
            "annotate_s": round(self.annotate_s, 3),  # the annotation loop alone (no set-up, no resume scan)
            "stopped": self.stopped,
            "complete": self.stopped is None,
            **extra,
        }
        return report

    def run(self) -> int:
        args = self.args
        started = time.monotonic()
        logging.getLogger("sophiavl.rewards.trm.client").setLevel(logging.ERROR)  # counted in the report instead
        try:
            self.template = label_template(args.prompt_template)
            self.judge = self._judge(args.model)
            rows = PreparedRows(args.data, cache_groups=args.cache_groups)
            for folder in args.rollouts:
                shard_paths(folder)  # a missing folder is an error before any call
        except (ValueError, FileNotFoundError) as exc:
            print(f"annotate: {exc}", file=sys.stderr)
            return 2
        self.model = args.model
        if self.model is None:
            try:
                self.model = asyncio.run(self._served_model(self.judge))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, KeyError, IndexError) as exc:
                print(f"annotate: judge at {self.judge.url} unreachable for the model list: {exc!r}", file=sys.stderr)
                return EXIT_OUTAGE
            self.judge.model = self.model
        self.out.mkdir(parents=True, exist_ok=True)
        scan = scan_done(self.out)
        self.store = ImageStore(self.out)
        writer = AnnotationWriter(self.out, args.tag or file_tag(self.model))
        loop_started = time.monotonic()
        try:
            asyncio.run(self._annotate(rows, writer, scan.keys))
        finally:
            self.annotate_s = time.monotonic() - loop_started
            writer.close()
            report = self._report(started, scan, {"annotations": writer.path.name, "prepared_rows": len(rows)})
            (self.out / REPORT).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        summary = (
            f"annotate: {report['rows']['written']} line(s) written to {writer.path}, "
            f"{report['rows']['skipped_done']} already done, {sum(report['row_errors'].values())} row error(s), "
            f"{sum(report['sample_errors'].values())} failed sample(s); report {self.out / REPORT}"
        )
        print(summary, file=sys.stderr)
        if self.stopped:
            print(f"annotate: stopped: {self.stopped}", file=sys.stderr)
            return EXIT_OUTAGE
        return 0


def run(args: argparse.Namespace) -> int:
    """Runs ``annotate`` with the parsed ``args``; returns 0, 2 (bad arguments or data) or 3 (judge outage)."""
    if args.samples < 1 or args.concurrency < 1:
        print("annotate: --samples and --concurrency must be >= 1", file=sys.stderr)
        return 2
    return Annotator(args).run()
