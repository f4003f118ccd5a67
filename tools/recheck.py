#!/usr/bin/env python
"""Re-check mutants of a tools/mutation.sh run one by one, in one process.

    python tools/recheck.py RUN_DIR MUTANTS_FILE TEST... [--copy-tests] [--out FILE]

RUN_DIR is a module's folder of a mutation run (``$MUTATION_DIR/<module>``, holding
``mutants/``); MUTANTS_FILE lists mutant names, one per line (``mutmut results`` lines
work: ``srzoo.x.y__mutmut_3: survived``); TEST... are pytest arguments (files, ``file::test``,
``--deselect=...``). ``--copy-tests`` first copies this checkout's tests/ into the run's
``mutants/`` (tests written after the run). Each mutant is run the way mutmut runs it: its
trampolines read ``MUTANT_UNDER_TEST`` at each call, so one pytest per mutant in this process
(``-x``, no cache, no random order); killed = pytest failed. A clean run (no mutant) comes
first and must pass. One line per mutant goes to ``--out`` (default: stdout). SRZOO_SHARED
defaults to the ``shared/`` folder beside this checkout, as in tools/mutation.sh.

Limits: tests that start spawned processes run the unmutated code there; a test that fails
when run twice in one process shows every mutant as killed (the clean run cannot tell) --
run those files with ``MUTANT_UNDER_TEST=NAME python -m pytest ...`` in ``mutants/`` instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        name = line.strip().split(":")[0].strip()
        if name:
            names.append(name)
    return names


def _copy_tests(mutants: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    files = subprocess.run(["git", "ls-files", "tests"], cwd=root, capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        dst = mutants / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dst)


def _pytest(args: list[str]) -> int:
    import pytest

    with contextlib.redirect_stdout(io.StringIO()):
        return int(pytest.main(args))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("mutants_file", type=Path)
    ap.add_argument("tests", nargs="+")
    ap.add_argument("--copy-tests", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    mutants = a.run_dir / "mutants"
    if not (mutants / "srzoo").is_dir():
        ap.error(f"{mutants} holds no mutated srzoo/: give a module folder of a mutation run")
    if a.copy_tests:
        _copy_tests(mutants)
    # the tests read ../shared beside the checkout (the run's copy has none beside it)
    os.environ.setdefault("SRZOO_SHARED", str(Path(__file__).resolve().parents[2] / "shared"))
    os.chdir(mutants)
    sys.path.insert(0, str(mutants))
    args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *a.tests]
    out = open(a.out, "a") if a.out else sys.stdout
    os.environ["MUTANT_UNDER_TEST"] = ""
    rc = _pytest(args)
    print(f"clean run: rc={rc}", file=out, flush=True)
    if rc != 0:
        print("the tests fail without a mutant: nothing to re-check", file=sys.stderr)
        return 1
    for name in _names(a.mutants_file):
        os.environ["MUTANT_UNDER_TEST"] = name
        rc = _pytest(args)
        print(f"{name}: {'killed' if rc != 0 else 'survived'}", file=out, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
