"""Streaming readers for the dataset's record files: a JSON array or JSON lines, one object at a time.

The released annotation files are tens of MB; they are parsed incrementally so that memory stays bounded by the
largest single record, not the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20  # characters read per refill
_WS = " \t\r\n"


class JsonInputError(ValueError):
    """A record file is not valid JSON / JSON lines. The message names the file, line, column and offset."""

    def __init__(self, path: Path | str, line: int, column: int, offset: int, what: str):
        self.path, self.line, self.column, self.offset = str(path), line, column, offset
        super().__init__(f"{path}: malformed JSON at line {line}, column {column} (char {offset}): {what}")


def iter_records(path: Path | str) -> Iterator[Any]:
    """Yields the top-level values of a record file, in file order.

    Accepts a JSON array of values (``[{...}, {...}]``) or JSON lines (one value per line; blank lines are
    skipped). The format is chosen by the first non-blank character: ``[`` means an array, anything else JSON
    lines. An empty file yields nothing. Values are yielded as parsed (usually dicts; callers reject others).

    Raises:
        JsonInputError: on any syntax error, with the 1-based line and column and the 0-based char offset.
    """
    path = Path(path)
    with open(path, encoding="utf-8-sig") as f:
        head = f.read(_CHUNK)
        first = next((c for c in head if c not in _WS), "")
        f.seek(0)
        if first == "[":
            yield from _iter_array(path, f)
        else:
            yield from _iter_lines(path, f)


def _iter_lines(path: Path, f) -> Iterator[Any]:
    offset = 0
    for lineno, line in enumerate(f, start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                column = min(e.pos, len(line.rstrip("\r\n"))) + 1
                raise JsonInputError(path, lineno, column, offset + column - 1, e.msg) from None
        offset += len(line)


class _Buffer:
    """A sliding text window over a file that tracks absolute offsets and line numbers of consumed text."""

    def __init__(self, f):
        self.f, self.text, self.pos, self.base, self.eof = f, "", 0, 0, False
        self.lines_before = 0  # newlines in text consumed and dropped from the window
        self.col_before = 0  # characters of the current line consumed and dropped from the window

    def fill(self) -> bool:
        """Reads one more chunk; drops consumed text first. Returns False at end of file."""
        if self.eof:
            return False
        consumed = self.text[: self.pos]
        self.lines_before += consumed.count("\n")
        nl = consumed.rfind("\n")
        self.col_before = len(consumed) - nl - 1 if nl >= 0 else self.col_before + len(consumed)
        self.base += self.pos
        chunk = self.f.read(_CHUNK)
        self.text, self.pos = self.text[self.pos :] + chunk, 0
        if not chunk:
            self.eof = True
        return bool(chunk)

    def skip_ws(self) -> str:
        """Advances past whitespace; returns the next character or '' at end of file."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.fill():
                return ""

    def error(self, rel_pos: int, what: str, path: Path) -> JsonInputError:
        line = self.lines_before + self.text.count("\n", 0, rel_pos) + 1
        last_nl = self.text.rfind("\n", 0, rel_pos)
        column = rel_pos - last_nl if last_nl >= 0 else self.col_before + rel_pos + 1
        return JsonInputError(path, line, column, self.base + rel_pos, what)


def _iter_array(path: Path, f) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    buf = _Buffer(f)
    buf.fill()
    buf.skip_ws()
    buf.pos += 1  # the opening '['
    expect_value = True
    first = True
    while True:
        c = buf.skip_ws()
        if c == "":
            raise buf.error(buf.pos, "unexpected end of file inside the top-level array", path)
        if c == "]" and (first or not expect_value):
            buf.pos += 1
            tail = buf.skip_ws()
            if tail != "":
                raise buf.error(buf.pos, "extra data after the top-level array", path)
            return
        if not expect_value:
            if c != ",":
                raise buf.error(buf.pos, "expected ',' or ']' between records", path)
            buf.pos += 1
            expect_value = True
            continue
        while True:  # decode one value, refilling until it is complete or the file ends
            try:
                value, end = decoder.raw_decode(buf.text, buf.pos)
            except json.JSONDecodeError as e:
                if buf.eof:
                    raise buf.error(e.pos, e.msg, path) from None
                buf.fill()  # shifts the window; decode again from the same value start
                continue
            if end == len(buf.text) and not buf.eof:  # a number or literal may go on in the next chunk
                buf.fill()
                continue
            break
        buf.pos = end
        first, expect_value = False, False
        yield value
