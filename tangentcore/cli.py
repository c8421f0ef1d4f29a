"""Command line of tangentcore: ``tangentcore SUBCOMMAND …``."""

from __future__ import annotations

import argparse
import logging
import sys

from tangentcore.errors import TangentcoreError


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    from tangentcore.sw import paper

    parser = argparse.ArgumentParser(prog="tangentcore", description="FPGA co-design for binary and spiking networks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True)
    paper.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for invalid input or a failed step)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.handler(args)
    except TangentcoreError as error:
        print(f"tangentcore: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
