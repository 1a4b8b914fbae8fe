"""Asking the thinking reward model about many inputs at once, with bounded memory and a progress line on stderr."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TextIO, TypeVar

from sophiavl.rewards.judge_codes import error_kind
from sophiavl.rewards.thinking_client import Judgement

T = TypeVar("T")
R = TypeVar("R")


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
