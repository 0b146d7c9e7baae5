"""The ``xfv`` command line: a thin layer that parses arguments and calls jobs and domain functions."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

# Each module adds its sub-commands through ``add_commands(subparsers)``.
COMMAND_MODULES = ["xfv.cli.core", "xfv.cli.evaluate", "xfv.cli.xmaps", "xfv.cli.platform"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xfv", description="Explainable face verification.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"xfv {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning  # one readable line, no source location
            return int(args.handler(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError) as error:
        print(f"xfv {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xfv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader left early (``xfv evaluate --json | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
