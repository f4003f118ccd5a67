"""The ``srzoo`` command: a thin layer over the Python API.

Each sub-command lives in a module of this package that defines
``register(subparsers)``; the parser it adds carries ``func(args) -> int``.

The top layer: it may import every other, and nothing imports it. Commands
import the layers they use inside their function, so ``srzoo --help`` does
not load OpenCV; no command holds logic the Python API lacks.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import Sequence

from srzoo.errors import SrzooError

#: modules that contribute sub-commands, in help order
COMMAND_MODULES = ("models", "upscale", "bench", "convert", "catalog", "train", "compare", "serve")


def build_parser() -> argparse.ArgumentParser:
    from srzoo._version import __version__

    parser = argparse.ArgumentParser(
        prog="srzoo", description="Super-resolution models for OpenCV: list, fetch, upscale, benchmark.")
    parser.add_argument("--version", action="version", version=f"srzoo {__version__}")
    parser.add_argument("-v", "--verbose", dest="verbose_errors", action="store_true",
                        help="on a failed download, list every source tried and its answer")
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


def _describe(e: OSError) -> str:
    """An OS error as one line: the path (when known) and the reason."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.filename:
        return f"{e.filename}: {reason}"
    return reason


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail
    again (and print a second, unhelpful message)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every failure ends in one ``srzoo: error: ...`` line on
    stderr and a non-zero exit: 1 for errors, 2 for usage errors (argparse),
    130 for Ctrl-C. Output that cannot be written (``srzoo info > /dev/full``)
    is an error; a closed pipe (``srzoo list | head``) is not."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        try:
            from srzoo import config

            config.validate()  # a bad SRZOO_* value is one line before any work
            code = int(args.func(args) or 0)
        finally:
            sys.stdout.flush()  # surface write errors on stdout here, not at exit
        return code
    except SrzooError as e:
        _error(str(e))
        from srzoo.cli._format import print_failures

        print_failures(e, args)
        return 1
    except KeyboardInterrupt:
        _error("interrupted", prefix="srzoo: ")
        return 130
    except BrokenPipeError:  # e.g. `srzoo list | head`
        _silence_stdout()
        return 0
    except OSError as e:  # disk full on stdout or a report file, permissions, ...
        if e.errno in (errno.ENOSPC, errno.EIO, errno.EFBIG) and not e.filename:
            _silence_stdout()
            _error(f"cannot write the output: {_describe(e)}")
        else:
            _error(_describe(e))
        return 1
    except MemoryError:
        _error("out of memory; use a smaller image or scale, or tiles (--tile)")
        return 1


def _error(text: str, prefix: str = "srzoo: error: ") -> None:
    first = " ".join(str(text).split("\n")).strip()
    try:
        print(f"{prefix}{first}", file=sys.stderr, flush=True)
    except OSError:  # stderr itself is gone: nothing more to say
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
