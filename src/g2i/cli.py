"""The `g2i` command line: one subcommand per pipeline step (see g2i.commands), each with --help.

Errors a user can fix (bad parameters, bad files: G2IError, and the ValueErrors the library raises itself)
are printed in plain words with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Sequence

from .commands import COMMAND_MODULES
from .errors import G2IError

PACKAGE = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="g2i", description="G2I: decoding brain images from genetics (MLflow + DVC).")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"g2i.commands.{module_name}")
        command = sub.add_parser(module.NAME, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


def raised_by_g2i(exc: BaseException) -> bool:
    """Whether `exc` was raised by this package's own code (its innermost frame is in g2i): the library's
    ValueErrors describe bad input in words; one from numpy or torch deep inside is a bug, kept as a traceback."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        args.func(args)
    except G2IError as exc:
        print(f"g2i {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        if not raised_by_g2i(exc):
            raise
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
