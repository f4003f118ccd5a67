"""docs/cli.md is the reference of every command: the ``--help`` text argparse prints.

It must match the parser as built now, so an option, default or help line changed
without the page fails here (review the diff, then run ``python tools/cli_reference.py``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "tools" / "cli_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_page_is_the_help_of_every_command(monkeypatch):
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    written_with = re.search(r"by Python (\d+\.\d+)", page).group(1)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != written_with:  # argparse's layout changes between versions (3.13: option lists)
        pytest.skip(f"docs/cli.md was written by Python {written_with}; this is {here}")
    monkeypatch.setenv("COLUMNS", "40")  # the tool fixes its own width: the terminal must not matter
    text = _tool().render()
    assert text == page, "docs/cli.md is out of date: run python tools/cli_reference.py"
    # every command the parser has is on the page, each once
    titles = re.findall(r"^## `(srzoo[^`]*)`$", page, flags=re.M)
    assert titles[:3] == ["srzoo", "srzoo list", "srzoo fetch"]
    assert len(titles) == len(set(titles)) == 14
    assert "srzoo upscale" in titles and "srzoo serve" in titles


def test_the_page_changes_with_a_help_line(monkeypatch):
    """The comparison can fail: a changed help text gives a different page."""
    from srzoo.cli import models

    tool = _tool()
    before = tool.render()
    real = models.register

    def register(sub):
        real(sub)
        sub.choices["list"].add_argument("--bogus", help="an option nobody wrote down")

    monkeypatch.setattr(models, "register", register)
    after = tool.render()
    assert after != before and "an option nobody wrote down" in after
    assert tool.main(["--check"]) == 1
