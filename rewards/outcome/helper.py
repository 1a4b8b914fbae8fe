"""The helper process of :mod:`sophiavl.rewards.outcome.bounded`: ``python -m sophiavl.rewards.outcome.helper
--scorers MODULE --requests FD --replies FD``.

It imports ``MODULE`` (by name) and runs its ``warm_up()`` when it has one, writes ``ready`` on the replies
descriptor, then reads one JSON request per line from the requests descriptor (``{"kind", "answer", "truth"}``) and
writes one JSON reply per line (``{"score": float}`` or ``{"error": str}``), scoring with ``MODULE.SCORERS[kind]``.
The two descriptors are pipes of their own, so what a scorer prints (stdout, inherited from the caller) never mixes
with the replies. Its own module so that starting it does not import the pool module a second time as ``__main__``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os

from sophiavl.rewards.outcome.bounded import _READY, DEFAULT_SCORERS


def _not_the_disabled_timeout_notice(record: logging.LogRecord) -> bool:
    # math-verify warns once that its timeout is off (the scorers turn it off): here the pool bounds every scoring
    return "Timeout is disabled" not in record.getMessage()


def serve(scorers_module: str, requests_fd: int, replies_fd: int) -> None:
    """Answers requests until the requests pipe closes; a scorer's exception becomes an ``error`` reply, never a
    crash. ``requests_fd`` and ``replies_fd`` are open descriptors (read, write) that this function closes."""
    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_not_the_disabled_timeout_notice)
    module = importlib.import_module(scorers_module)
    scorers = module.SCORERS
    warm_up = getattr(module, "warm_up", None)
    if warm_up is not None:  # imports the scorers' libraries now, not inside a timed request
        warm_up()
    with os.fdopen(requests_fd, "rb") as requests, os.fdopen(replies_fd, "wb") as replies:
        replies.write(_READY)
        replies.flush()
        for line in requests:
            request = json.loads(line)
            try:
                reply = {"score": float(scorers[request["kind"]](request["answer"], request["truth"]))}
            except Exception as exc:  # noqa: BLE001  (reported to the caller, which counts and logs it)
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            replies.write(json.dumps(reply).encode() + b"\n")
            replies.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serves outcome scorings for sophiavl.rewards.outcome.bounded")
    parser.add_argument("--scorers", default=DEFAULT_SCORERS, help="module whose SCORERS mapping is served")
    parser.add_argument("--requests", type=int, required=True, help="descriptor to read requests from")
    parser.add_argument("--replies", type=int, required=True, help="descriptor to write replies to")
    args = parser.parse_args(argv)
    serve(args.scorers, args.requests, args.replies)


if __name__ == "__main__":
    main()
