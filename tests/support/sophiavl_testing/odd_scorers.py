"""Outcome scorers that misbehave on purpose, served by real helper processes in the bounded scorer's tests:
``ScorerPool(scorers="sophiavl_testing.odd_scorers")`` (the helper imports this module by name, so tests/support must
be on the helper's ``PYTHONPATH``). Every scorer takes ``(answer, truth)`` like the real ones."""

from __future__ import annotations

import os
import sys
import time


def pid(answer: str, truth: str) -> float:
    """The helper process's id, as the score (so a test learns which process served it)."""
    return float(os.getpid())


def prints(answer: str, truth: str) -> float:
    """Writes to stdout twice (Python's ``print`` and a raw write on descriptor 1), then 1.0 when answer == truth."""
    print(f"scoring {answer!r} against {truth!r}", flush=True)
    os.write(1, b"a raw line on descriptor 1\n")
    return 1.0 if answer == truth else 0.0


def sleeps(answer: str, truth: str) -> float:
    """Sleeps ``float(answer)`` seconds, then 1.0."""
    time.sleep(float(answer))
    return 1.0


def raises(answer: str, truth: str) -> float:
    """Raises ``ArithmeticError(answer)``."""
    raise ArithmeticError(answer)


def garbles(answer: str, truth: str) -> float:
    """Writes ``answer`` and a newline on the helper's reply channel itself (a corrupted channel), then 1.0.

    The channel is the descriptor after ``--replies`` on the helper's command line, else stdout (descriptor 1).
    """
    argv = sys.argv
    fd = int(argv[argv.index("--replies") + 1]) if "--replies" in argv else 1
    os.write(fd, answer.encode() + b"\n")
    return 1.0


SCORERS = {"pid": pid, "prints": prints, "sleeps": sleeps, "raises": raises, "garbles": garbles}
