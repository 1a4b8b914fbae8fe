"""The helper process of :mod:`sophiavl.rewards.outcome.bounded`: ``python -m sophiavl.rewards.outcome.helper``.

It imports the scorers and their libraries, writes ``ready``, then reads one JSON request per line from stdin
(``{"kind", "answer", "truth"}``) and writes one JSON reply per line (``{"score": float}`` or ``{"error": str}``).
Its own module so that starting it does not import the pool module a second time as ``__main__``.
"""

from __future__ import annotations

import json
import sys

from sophiavl.rewards.outcome.bounded import _READY


def serve() -> None:
    """Answers requests until stdin closes; a scorer's exception becomes an ``error`` reply, never a crash."""
    from sophiavl.rewards.outcome.score import SCORERS

    for scorer in SCORERS.values():  # imports math-verify, jiwer, rouge-score now, not inside a timed request
        scorer("1", "1")
    out = sys.stdout.buffer
    out.write(_READY)
    out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            reply = {"score": float(SCORERS[request["kind"]](request["answer"], request["truth"]))}
        except Exception as exc:  # noqa: BLE001  (reported to the caller, which counts and logs it)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    serve()
