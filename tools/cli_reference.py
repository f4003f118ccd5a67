#!/usr/bin/env python3
"""Write docs/cli.md, the reference of every ``srzoo`` command: the ``--help`` text of
``srzoo`` and of each sub-command (and theirs), exactly as argparse prints it.

    python tools/cli_reference.py           # rewrite docs/cli.md
    python tools/cli_reference.py --check   # exit 1 when docs/cli.md is out of date

tests/cli/test_cli_reference.py fails when an option, a default or a help line changes
without this page: review the diff, then run this script. The text is rendered at a
fixed width (100 columns) without colour, so it does not depend on the terminal; the
layout of argparse differs between Python versions, so the page records the version it
was written with, and the test compares only under that version.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cli.md"
WIDTH = 100


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _subcommands(parser: argparse.ArgumentParser):
    """(name, parser) of each sub-command, in the order of the help text."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases share a parser
                    seen.add(id(sub))
                    yield name, sub


def _help(parser: argparse.ArgumentParser) -> str:
    old = {k: os.environ.get(k) for k in ("COLUMNS", "NO_COLOR", "PYTHON_COLORS")}
    os.environ.update(COLUMNS=str(WIDTH), NO_COLOR="1", PYTHON_COLORS="0")
    try:
        return parser.format_help().rstrip() + "\n"
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def render() -> str:
    """The whole page as text."""
    sys.path.insert(0, str(ROOT))
    from srzoo.cli import build_parser

    parser = build_parser()
    parts = [
        "# The `srzoo` command\n",
        "Every command's `--help`, as printed at 100 columns by Python "
        f"{python_version()}. Written by `python tools/cli_reference.py`; "
        "`tests/cli/test_cli_reference.py` fails when it is out of date. "
        "The friendlier tour is the [README](../README.md).\n",
    ]
    todo = [("srzoo", parser)]
    while todo:
        title, p = todo.pop(0)
        parts.append(f"## `{title}`\n\n```text\n{_help(p)}```\n")
        todo[0:0] = [(f"{title} {name}", sub) for name, sub in _subcommands(p)]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python tools/cli_reference.py",
                  file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
