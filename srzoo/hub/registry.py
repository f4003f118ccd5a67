"""The registry: every manifest srzoo knows (built-in, ``SRZOO_REGISTRY``, :func:`add_manifest`)
merged into one lookup by name and scale.

User manifests override built-in entries of the same name and scale. The
schema and the parser of one manifest file are :mod:`srzoo.hub.manifest`.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from srzoo import config
from srzoo.errors import ManifestError, UnknownModel
from srzoo.hub.manifest import Artifact, Dataset, IOSpec, ModelEntry, parse_manifest


def builtin_manifest_dir() -> Path:
    """Where the manifests shipped with srzoo live (inside the wheel, or the source tree)."""
    here = Path(__file__).resolve().parent.parent  # the srzoo package
    packaged = here / "_manifests"
    return packaged if packaged.is_dir() else here.parent / "registry"


def bundled_dir() -> Path:
    """Where model files that ship inside the srzoo package live (``bundled = true``)."""
    return Path(__file__).resolve().parent.parent / "builtin"


def _expand(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            yield from sorted(p.rglob("*.toml"))
        elif p.exists():
            yield p
        else:
            raise ManifestError(f"{p}: manifest file or folder not found (check SRZOO_REGISTRY "
                                "or the paths given to srzoo)")


def env_manifest_paths() -> list[str]:
    """Paths named by ``SRZOO_REGISTRY`` (separated by the OS path separator or commas)."""
    raw = config.get("SRZOO_REGISTRY")
    return [p for p in re.split(rf"[{re.escape(os.pathsep)},]", raw) if p.strip()]


class Registry:
    """All known models and datasets. User manifests override built-in entries
    of the same name and scale."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]] = (), *, builtin: bool = True,
                 env: bool = True) -> None:
        sources: list[str | os.PathLike[str]] = []
        if builtin:
            sources.append(builtin_manifest_dir())
        if env:
            sources.extend(env_manifest_paths())
        sources.extend(paths)
        self._models: dict[tuple[str, int | None], ModelEntry] = {}
        self._datasets: dict[str, Dataset] = {}
        for path in _expand(sources):
            models, datasets = parse_manifest(path)
            for m in models:
                self._models[(m.name, m.scale)] = m
            for d in datasets:
                self._datasets[d.name] = d

    # models -----------------------------------------------------------------
    def models(self) -> list[ModelEntry]:
        """Every model entry, sorted by name then scale."""
        return sorted(self._models.values(), key=lambda m: (m.name, m.scale or 0))

    def names(self) -> list[str]:
        return sorted({name for name, _ in self._models})

    def scales(self, name: str) -> list[int]:
        """Scales a model has (empty for scale-free interpolation)."""
        return sorted(s for n, s in self._models if n == name and s is not None)

    def _unknown(self, kind: str, name: str, known: list[str]) -> UnknownModel:
        close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
        close += [k for k in known if k.startswith(name.lower()) and k not in close][:3]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        where = "Run 'srzoo list' to see all." if kind == "model" else f"Known: {', '.join(known)}."
        return UnknownModel(f"unknown {kind} {name!r}.{hint} {where}")

    def get(self, name: str, scale: int | None = None) -> ModelEntry:
        """The entry for ``name`` at ``scale`` (the only/lowest scale if omitted)."""
        key = name.lower()
        if key not in self.names():
            raise self._unknown("model", name, self.names())
        if (key, None) in self._models:
            entry = self._models[(key, None)]
            return entry.at_scale(scale) if scale is not None else entry
        scales = self.scales(key)
        if scale is None:
            return self._models[(key, scales[0])]
        try:
            return self._models[(key, int(scale))]
        except (KeyError, ValueError):
            raise UnknownModel(f"model {key!r} has no x{scale}; it has scales "
                               f"{', '.join(f'x{s}' for s in scales)}") from None

    def variants(self, name: str) -> list[ModelEntry]:
        """Every entry of one model name, all scales."""
        self.get(name)
        return [m for m in self.models() if m.name == name.lower()]

    # datasets ---------------------------------------------------------------
    def datasets(self) -> list[Dataset]:
        return [self._datasets[k] for k in sorted(self._datasets)]

    def dataset(self, name: str) -> Dataset:
        try:
            return self._datasets[name.lower()]
        except KeyError:
            raise self._unknown("dataset", name, sorted(self._datasets)) from None


_default: Registry | None = None
_default_key: tuple[str, ...] | None = None
_extra_paths: list[str] = []


def add_manifest(path: str | os.PathLike[str]) -> None:
    """Register a user manifest file or folder for this process (validated now)."""
    parse_manifest(path) if Path(path).is_file() else list(_expand([path]))
    _extra_paths.append(str(path))
    global _default
    _default = None


def default_registry() -> Registry:
    """The process-wide registry: built-ins, SRZOO_REGISTRY and add_manifest() paths.
    Re-read when SRZOO_REGISTRY changes."""
    global _default, _default_key
    key = (config.get("SRZOO_REGISTRY"), *_extra_paths)
    if _default is None or key != _default_key:
        _default = Registry(_extra_paths)
        _default_key = key
    return _default


__all__ = ["Artifact", "Dataset", "IOSpec", "ModelEntry", "Registry", "add_manifest", "builtin_manifest_dir",
           "bundled_dir", "default_registry", "env_manifest_paths", "parse_manifest"]
