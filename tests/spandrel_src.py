"""spandrel's architecture modules, the implementations the community loads OpenModelDB
files with, read from the installed package for parity checks.

spandrel's ``__init__`` imports torchvision (which the CPU torch of CI cannot import),
so one file is executed on its own: its ``store_hyperparameters`` decorator becomes a
no-op, its imports of other spandrel files are served from files executed the same way,
and ``.cuda()`` calls are dropped. Tests skip (with the reason) when torch or spandrel
is missing; CI installs both (.ci/run).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest


def root() -> Path:
    pytest.importorskip("torch", reason="parity with spandrel needs torch")
    spec = importlib.util.find_spec("spandrel")
    if spec is None or spec.origin is None:
        pytest.skip("spandrel is not installed (pip install --no-deps spandrel==0.4.2 einops)")
    return Path(spec.origin).parent


def load(rel: str, **provided: Any) -> dict[str, Any]:
    """The namespace of spandrel's file ``rel`` (under spandrel/architectures/), with
    ``from spandrel... import NAME`` (and relative ``from ..x import NAME``) lines
    replaced by ``provided[NAME]``."""
    path = root() / "architectures" / rel
    src = re.sub(r"^from \S*util import store_hyperparameters$", "store_hyperparameters = lambda **_: (lambda c: c)",
                 path.read_text(), flags=re.M).replace(".cuda()", "")

    def dep(m: re.Match) -> str:
        names = [n.split(" as ")[-1].strip() for n in m.group(1).split(",")]  # "block as B": B
        missing = [n for n in names if n not in provided]
        if missing:
            raise RuntimeError(f"{rel} imports {missing} from spandrel: pass them to load()")
        return ""
    src = re.sub(r"^from (?:spandrel\S*|\.+\S*) import (.+)$", dep, src, flags=re.M)
    ns: dict[str, Any] = {"__name__": f"spandrel_ref_{path.stem}", **provided}
    exec(compile(src, str(path), "exec"), ns)
    return ns
