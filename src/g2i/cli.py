"""The `g2i` command line: one subcommand per pipeline step (see g2i.commands), each with --help.

Errors a user can fix (bad parameters, bad files) are printed in plain words with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .commands import COMMAND_MODULES
from .errors import G2IError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="g2i", description="G2I: decoding brain images from genetics (MLflow + DVC).")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"g2i.commands.{module_name}")
        command = sub.add_parser(module.NAME, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        args.func(args)
    except G2IError as exc:
        print(f"g2i {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def run_step(name: str, argv: Sequence[str] | None = None) -> int:
    """Entry for pipelines/<step>.py and g2i-<step> aliases: `g2i <name> ARGS`."""
    return main([name, *(sys.argv[1:] if argv is None else argv)])


def synthesize_main(argv: Sequence[str] | None = None) -> int:
    """`g2i-synthesize`: the same as `g2i synthesize`."""
    return run_step("synthesize", argv)


if __name__ == "__main__":
    raise SystemExit(main())
