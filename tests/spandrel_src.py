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


#: the packages whose architecture files are read, and how to install them
PACKAGES = {"spandrel": "pip install --no-deps spandrel==0.4.2 einops",
            "spandrel_extra_arches": "pip install --no-deps spandrel-extra-arches==0.2.0"}


def root(package: str = "spandrel") -> Path:
    pytest.importorskip("torch", reason="parity with spandrel needs torch")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pytest.skip(f"{package} is not installed ({PACKAGES[package]})")
    return Path(spec.origin).parent


def load(rel: str, base: Path | None = None, **provided: Any) -> dict[str, Any]:
    """The namespace of spandrel's file ``rel`` (under spandrel/architectures/ of the installed
    package, or of ``base``, an unpacked older release), with ``from spandrel... import NAME``
    (and relative ``from ..x import NAME``) lines replaced by ``provided[NAME]``."""
    return _load((base if base is not None else root()) / "architectures" / rel, rel, provided)


def load_extra(rel: str, **provided: Any) -> dict[str, Any]:
    """As :func:`load`, for a file of spandrel-extra-arches (SRFormer: spandrel's companion
    package for the architectures outside spandrel itself)."""
    return _load(root("spandrel_extra_arches") / "architectures" / rel, rel, provided)


def _load(path: Path, rel: str, provided: dict[str, Any]) -> dict[str, Any]:
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


def old_release(version: str, folder: Path) -> Path:
    """The ``spandrel`` package folder of an older release (one that still has an architecture
    0.4.2 dropped), downloaded from PyPI by pip into ``folder`` and unpacked there (never
    imported as a package: its files are read with :func:`load`); skips where pip cannot get it."""
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("torch", reason="parity with spandrel needs torch")
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", f"spandrel=={version}",
                          "-d", str(folder)], capture_output=True, text=True, timeout=300)
    wheels = sorted(folder.glob(f"spandrel-{version}-*.whl"))
    if got.returncode or not wheels:
        pytest.skip(f"spandrel {version} could not be downloaded by pip: {got.stderr.strip()[-200:]}")
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(folder / "unpacked")
    return folder / "unpacked" / "spandrel"
