"""Asking the thinking reward model about many inputs at once, with bounded memory and a progress line on stderr;
the per-item records and failure lists both TRM evaluations report."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import IO, Any, TextIO, TypeVar

from sophiavl.rewards.trm.client import Judgement
from sophiavl.rewards.trm.codes import error_kind

T = TypeVar("T")
R = TypeVar("R")

#: At most this many failed items are listed (with their reason) in a report.
MAX_FAILURE_EXAMPLES = 20


def failure_kind(judgement: Judgement) -> str:
    """A short name for why ``judgement`` has no score: ``http_<status>``, ``timeout``, ``connection``,
    ``unparseable``, ``malformed`` or ``bad_input``."""
    kind = error_kind(judgement.error)
    return f"http_{judgement.error}" if kind == "http" else kind


class Progress:
    """A progress line on ``stream`` (stderr by default): ``label: done/total, failed, rate, elapsed``.

    On a terminal the line is redrawn in place at most every ``interval_s`` seconds; otherwise (a log file) a new line
    is written at most every ``log_interval_s`` seconds. :meth:`close` writes the final line.
    """

    def __init__(
        self,
        label: str,
        total: int,
        stream: TextIO | None = None,
        interval_s: float = 0.2,
        log_interval_s: float = 10.0,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s if self.tty else log_interval_s
        self.done = 0
        self.failed = 0
        self.start = time.monotonic()
        self._last = float("-inf")

    def line(self) -> str:
        """The current progress text."""
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.label}: {self.done}/{self.total} done, {self.failed} failed, {rate:.1f}/s, {elapsed:.0f} s elapsed"
        )

    def update(self, failed: bool) -> None:
        """Counts one finished item."""
        self.done += 1
        self.failed += int(failed)
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self._write(self.line())

    def close(self) -> None:
        """Writes the final line."""
        self._write(self.line())
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()

    def _write(self, text: str) -> None:
        self.stream.write(("\r" + text + "\x1b[K") if self.tty else (text + "\n"))
        self.stream.flush()


async def bounded_map(items: Iterable[T], fn: Callable[[T], Awaitable[R]], limit: int) -> AsyncIterator[tuple[T, R]]:
    """Runs ``fn`` over ``items`` with at most ``limit`` calls pending and yields ``(item, result)`` as they finish.

    ``items`` is consumed lazily (a streamed reader keeps only ``limit`` items in memory); completion order is not
    input order.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    iterator = iter(items)
    pending: dict[asyncio.Task, T] = {}

    def refill() -> None:
        while len(pending) < limit:
            try:
                item = next(iterator)
            except StopIteration:
                return
            pending[asyncio.ensure_future(fn(item))] = item

    refill()
    try:
        while pending:
            finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                item = pending.pop(task)
                yield item, task.result()
            refill()
    finally:
        for task in pending:
            task.cancel()


async def collect(
    items: Iterable[T],
    fn: Callable[[T], Awaitable[dict[str, Any]]],
    limit: int,
    progress: Progress,
    predictions: IO[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs ``fn`` over ``items`` (:func:`bounded_map`, at most ``limit`` pending) and returns its records sorted by
    their ``index``. Each record counts on ``progress`` as it finishes (failed when its ``kind`` is not empty) and,
    when ``predictions`` is given, is written to it as a JSON line at once; ``progress`` is closed at the end."""
    records = []
    async for _, record in bounded_map(items, fn, limit=limit):
        records.append(record)
        progress.update(bool(record["kind"]))
        if predictions is not None:
            predictions.write(json.dumps(record) + "\n")
    progress.close()
    return sorted(records, key=lambda r: r["index"])


def failure_kinds(failed: list[dict[str, Any]]) -> dict[str, int]:
    """Failure kind -> how many of the ``failed`` records have it, kinds sorted."""
    return dict(sorted(Counter(r["kind"] for r in failed).items()))


def failure_examples(failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first :data:`MAX_FAILURE_EXAMPLES` ``failed`` records, each as ``index``, ``id``, ``source``, ``kind`` and
    ``detail``."""
    return [{k: r[k] for k in ("index", "id", "source", "kind", "detail")} for r in failed[:MAX_FAILURE_EXAMPLES]]
