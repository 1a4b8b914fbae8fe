"""Command line of the thinking-reward data build: one subcommand per stage.

    python -m sophiavl.data_prep.trm_build COMMAND [options]     (COMMAND --help for its options)

Each subcommand is a module of this package exposing ``COMMAND`` (its name), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status); the modules are listed in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

#: The subcommand modules, one per line, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "import_responses",
    "annotate",
    "balance",
)


def build_parser() -> argparse.ArgumentParser:
    """The parser with one subparser per module of ``SUBCOMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="python -m sophiavl.data_prep.trm_build",
        description="Build thinking-reward training data: collected rollouts -> a large judge's labels -> filtered, "
        "balanced rows in the Thinking-156k layout (docs/trm-data-build.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"{__package__}.{name}")
        command = sub.add_parser(module.COMMAND, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` (default: ``sys.argv[1:]``) and runs the chosen subcommand; returns its exit status (2 for a
    usage error, from argparse)."""
    args = build_parser().parse_args(argv)
    return int(args.run(args))
