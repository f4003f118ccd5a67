"""The package's architecture, checked: layers import only downward, no cycles,
no function-level imports of srzoo modules (the way cycles used to be hidden),
and the 0.2 module paths still import (as aliases of the moved modules)."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

import srzoo

ROOT = Path(__file__).resolve().parents[1]
PKG = Path(srzoo.__file__).resolve().parent
#: the one layer whose commands import lazily on purpose: `srzoo --help` must not load OpenCV
LAZY_OK = ("cli",)


def _modules() -> list[tuple[str, Path]]:
    out = []
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).with_suffix("")
        parts = ["srzoo", *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), p))
    return out


def test_import_linter_contracts_are_kept():
    """pyproject's [tool.importlinter] contracts: the layers, the runtime's inner
    order, engines that never import backends, the jobs' inner order."""
    lint = pytest.importorskip("importlinter.cli")
    assert lint.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_no_import_cycle_between_any_two_modules():
    """Every import (module- or function-level) in the graph; a strongly connected
    component of more than one module is a cycle."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("srzoo", cache_dir=None)
    mods = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in mods:
        if m not in index:
            visit(m)
    assert len(mods) > 60  # the whole package was analysed, not an empty graph
    assert cycles == []


def test_no_function_level_imports_of_srzoo_below_the_cli():
    """Imports of srzoo modules sit at the top of each module (heavy optional
    packages, onnxruntime, openvino, torch, av, dask, stay lazy: they are not srzoo)."""
    found = []
    for name, path in _modules():
        if name.split(".")[1:2] and name.split(".")[1] in LAZY_OK:
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for st in ast.walk(fn):
                if isinstance(st, ast.ImportFrom) and (st.level or (st.module or "").startswith("srzoo")):
                    found.append(f"{name}:{st.lineno} from {st.module}")
                elif isinstance(st, ast.Import) and any(a.name.startswith("srzoo") for a in st.names):
                    found.append(f"{name}:{st.lineno} import")
    assert found == []


def test_every_layer_states_what_it_may_import():
    for layer in ("hub", "convert", "runtime", "jobs", "evaluate", "train", "cli", "serve"):
        doc = ast.get_docstring(ast.parse((PKG / layer / "__init__.py").read_text())) or ""
        assert "may import" in doc.lower() or "layer" in doc.lower(), layer


@pytest.mark.parametrize("old, new", sorted(srzoo.MOVED.items()))
def test_moved_modules_import_under_their_old_path(old, new):
    """``import srzoo.batch`` is srzoo.jobs.batch itself (one module object: a
    monkeypatch on either name patches both), with the new module's spec."""
    if new.endswith("benchmark") or new.endswith("compare"):
        pytest.importorskip("matplotlib")
    mod = importlib.import_module(old)
    assert mod is importlib.import_module(new)
    assert mod.__spec__.name == new and mod.__name__ == new


def test_a_submodule_of_a_moved_package_is_not_loaded_twice():
    import srzoo.engines.opencv as old
    import srzoo.runtime.engines.opencv as new

    assert old is new
    assert sys.modules["srzoo.engines.opencv"] is sys.modules["srzoo.runtime.engines.opencv"]


def test_public_api_names_resolve_to_the_new_homes():
    from srzoo.jobs import batch, upscaling
    from srzoo.runtime import upscaler

    assert srzoo.upscale is upscaling.upscale and callable(srzoo.upscale)
    assert srzoo.Upscaler is upscaler.Upscaler
    assert srzoo.run_batch is batch.run_batch
    assert srzoo.batch is batch  # attribute access after a bare `import srzoo`
    with pytest.raises(AttributeError):
        srzoo.no_such_thing  # noqa: B018
