"""The helper process of :mod:`sophiavl.rewards.outcome.bounded`: ``python -m sophiavl.rewards.outcome.helper
--scorers MODULE``.

It imports ``MODULE`` (by name) and runs its ``warm_up()`` when it has one, writes ``ready``, then reads one JSON
request per line from stdin (``{"kind", "answer", "truth"}``) and writes one JSON reply per line (``{"score": float}``
or ``{"error": str}``), scoring with ``MODULE.SCORERS[kind]``. Its own module so that starting it does not import the
pool module a second time as ``__main__``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from sophiavl.rewards.outcome.bounded import _READY, DEFAULT_SCORERS


def serve(scorers_module: str = DEFAULT_SCORERS) -> None:
    """Answers requests until stdin closes; a scorer's exception becomes an ``error`` reply, never a crash."""
    module = importlib.import_module(scorers_module)
    scorers = module.SCORERS
    warm_up = getattr(module, "warm_up", None)
    if warm_up is not None:  # imports the scorers' libraries now, not inside a timed request
        warm_up()
    out = sys.stdout.buffer
    out.write(_READY)
    out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            reply = {"score": float(scorers[request["kind"]](request["answer"], request["truth"]))}
        except Exception as exc:  # noqa: BLE001  (reported to the caller, which counts and logs it)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serves outcome scorings for sophiavl.rewards.outcome.bounded")
    parser.add_argument("--scorers", default=DEFAULT_SCORERS, help="module whose SCORERS mapping is served")
    serve(parser.parse_args(argv).scorers)


if __name__ == "__main__":
    main()
