"""The model-management half of the public API: list, look up, fetch.

Everything here is about files and where they come from: the file
:func:`fetch` returns is the one published (verified). What an engine loads
from it (the same file, or an ONNX derived from it) is the runtime's
business: :func:`srzoo.runtime.engines.model_file`.
"""

from __future__ import annotations

import fnmatch
import numbers
from pathlib import Path
from typing import Callable

from srzoo.errors import ArgumentError, SrzooError
from srzoo.hub import cache, catalog
from srzoo.hub.archive import extract_member
from srzoo.hub.download import fetch_artifact
from srzoo.hub.manifest import Dataset, ModelEntry
from srzoo.hub.registry import Registry, default_registry

#: name prefix -> callable(name, scale) that resolves ``prefix:ID`` names to a ModelEntry;
#: a catalogue of one's own is one more item here
RESOLVERS: dict[str, Callable[[str, "int | None"], ModelEntry]] = {"omdb": catalog.resolve}


def get_registry() -> Registry:
    """The registry in use: built-in manifests, SRZOO_REGISTRY and add_manifest() paths."""
    return default_registry()


def list_models(pattern: str | None = None) -> list[ModelEntry]:
    """Every model entry (one per name and scale), sorted by name then scale.

    ``pattern`` filters names with shell wildcards, e.g. ``"fsrcnn*"``.
    Interpolation methods have ``scale=None`` (they work at any scale).
    """
    models = default_registry().models()
    if pattern:
        models = [m for m in models if fnmatch.fnmatch(m.name, pattern.lower())]
    return models


def get_model(name: str, scale: int | None = None) -> ModelEntry:
    """The manifest entry of ``name`` at ``scale`` (lowest scale if omitted).

    Raises :class:`srzoo.UnknownModel` with the closest names, or with the
    scales the model has, and :class:`srzoo.ArgumentError` for a name that is
    not a string. Names with a catalogue prefix (``omdb:<id>``) are
    resolved by that catalogue (:data:`RESOLVERS`).
    """
    if not isinstance(name, str):
        raise ArgumentError(f"model name must be a string such as 'espcn', got "
                            f"{type(name).__name__} {name!r:.40}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, numbers.Integral)):
        raise ArgumentError(f"scale must be an integer or None, got {type(scale).__name__} "
                            f"{scale!r:.40}")
    prefix, sep, _ = name.partition(":")
    if sep and prefix.lower() in RESOLVERS:
        return RESOLVERS[prefix.lower()](name, scale)
    return default_registry().get(name, scale)


def variants(name: str) -> tuple[ModelEntry, ...]:
    """Every entry (one per scale) of a model name, catalogue names (``omdb:<id>``)
    included. Raises :class:`srzoo.UnknownModel` with suggestions."""
    if not isinstance(name, str):
        raise ArgumentError(f"model name must be a string such as 'espcn', got "
                            f"{type(name).__name__} {name!r:.40}")
    prefix, sep, _ = name.partition(":")
    if sep and prefix.lower() in RESOLVERS:
        return (get_model(name),)
    reg = default_registry()
    reg.get(name)  # unknown names: UnknownModel with suggestions
    return tuple(reg.variants(name))


def is_cached(entry: ModelEntry) -> bool:
    """True when the entry needs no file or its verified file is cached."""
    return entry.artifact is None or cache.is_cached(entry.artifact)


def fetch(name: str, scale: int | None = None, *, force: bool = False,
          quiet: bool | None = None) -> Path:
    """Download (if needed) and verify the file of ``name`` x``scale``; return its cached path.

    ``force=True`` fetches again even if a copy is cached. A progress bar is
    shown on a terminal unless ``quiet``.
    """
    entry = get_model(name, scale)
    return fetch_entry(entry, force=force, quiet=quiet)


def fetch_entry(entry: ModelEntry, *, force: bool = False, quiet: bool | None = None) -> Path:
    """:func:`fetch` for an entry already looked up."""
    if entry.artifact is None:
        raise SrzooError(f"{entry.name} is a built-in {entry.format} method: there is no file to fetch")
    override = getattr(entry, "fetch_override", None)  # entries of a catalogue fetch their own way
    if override is not None:
        return override(force=force, quiet=quiet)
    what = f"{entry.name} x{entry.scale}"
    for extra in entry.companions:  # e.g. the .bin of an ncnn .param, fetched beside it
        fetch_artifact(extra, force=force, quiet=quiet, what=what)
    path = fetch_artifact(entry.artifact, force=force, quiet=quiet, what=what)
    if entry.member:
        return extract_member(path, entry.member, entry.artifact.sha256, force=force, quiet=quiet)
    return path


def fetch_dataset(name: str, *, force: bool = False, quiet: bool | None = None) -> Path:
    """Download (if needed) and verify every file of a dataset; return its folder."""
    ds: Dataset = default_registry().dataset(name)
    paths = [fetch_artifact(a, force=force, quiet=quiet, what=f"dataset {ds.name}") for a in ds.files]
    return paths[0].parent
