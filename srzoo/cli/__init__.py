"""The ``srzoo`` command: a thin layer over the Python API.

Each sub-command lives in a module of this package that defines
``register(subparsers)``; the parser it adds carries ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ..errors import SrzooError

#: modules that contribute sub-commands, in help order
COMMAND_MODULES = ("models", "upscale", "bench", "convert", "catalog")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="srzoo", description="Super-resolution models for OpenCV: list, fetch, upscale, benchmark.")
    parser.add_argument("--version", action="version", version=f"srzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:  # a command whose module is not written yet
            if e.name == f"{__name__}.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SrzooError as e:
        print(f"srzoo: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("srzoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `srzoo list | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
