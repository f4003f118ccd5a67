"""Plain-text output shared by the command groups: sizes and tables."""

from __future__ import annotations

import sys
from typing import Any

from tabulate import tabulate


def size(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """Rows under headers, aligned, no number parsing (``x2`` stays ``x2``)."""
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


__all__ = ["size", "table"]


def print_failures(e: BaseException, args: Any) -> None:
    """With ``srzoo -v`` (or a command's own ``-v``): every source a failed
    download tried and its answer, one per line after the error line."""
    if getattr(args, "verbose_errors", False) or getattr(args, "verbose", False) is True:
        for src, cause in getattr(e, "failures", None) or ():
            print(f"srzoo:   {src}: {cause}", file=sys.stderr, flush=True)
