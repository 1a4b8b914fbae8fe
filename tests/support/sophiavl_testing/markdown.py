"""Markdown tables as GitHub renders them, for the tests that keep the docs true.

A table is a run of lines starting with ``|`` outside code fences. GitHub splits a row at every ``|`` that is not
escaped as ``\\|``, code spans included, and renders a run without a separator row (``|---|---|``) as plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```[^\n]*\n.*?^```", re.S | re.M)
_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")  # GitHub: one hyphen or more per cell
_CELL_BORDER = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class Table:
    """One run of ``|`` lines: ``line`` is the 1-based line number of its first row; ``rows`` every line's cells,
    stripped, separator row included."""

    line: int
    rows: list[list[str]]
    has_separator: bool

    @property
    def header(self) -> list[str]:
        return self.rows[0]

    @property
    def body(self) -> list[list[str]]:
        """The rows under the separator (all rows after the first when there is none)."""
        return self.rows[2:] if self.has_separator else self.rows[1:]


def split_row(line: str) -> list[str]:
    """The cells of one table line, as GitHub splits it: at each unescaped ``|``; the outer pipes are borders."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip() for cell in _CELL_BORDER.split(inner)]


def _lines_outside_fences(path: Path) -> list[str]:
    """The file's lines with every code fence blanked out (so line numbers stay those of the file)."""
    text = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8"))
    return text.splitlines()


def tables(path: Path) -> list[Table]:
    """Every table of the markdown file ``path``, in order; code fences are skipped (line numbers kept)."""
    return _tables_in(_lines_outside_fences(path))


def _tables_in(lines: list[str]) -> list[Table]:
    found, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].startswith("|"):
            j += 1
        block = lines[i:j]
        found.append(
            Table(
                line=i + 1,
                rows=[split_row(line) for line in block],
                has_separator=len(block) > 1 and bool(_SEPARATOR.match(block[1])),
            )
        )
        i = j
    return found


def section_tables(path: Path, heading: str) -> list[Table]:
    """The tables between the heading line ``heading`` (for example ``"## Metrics"``) and the next heading of the
    same or a higher level. Raises ``LookupError`` when the heading is not in the file."""
    lines = _lines_outside_fences(path)
    level = len(heading) - len(heading.lstrip("#"))
    try:
        start = lines.index(heading) + 1
    except ValueError:
        raise LookupError(f"{path}: no heading {heading!r}") from None
    end = next(
        (
            n
            for n in range(start, len(lines))
            if re.match(r"^#{1,%d}\s" % level, lines[n])  # noqa: UP031 (a regex quantifier, not a format)
        ),
        len(lines),
    )
    return [t for t in _tables_in(lines) if start < t.line <= end]
