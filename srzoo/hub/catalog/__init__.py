"""Community model catalogues. Today: OpenModelDB (https://openmodeldb.info).

>>> import srzoo
>>> srzoo.catalog.search("*realesr*", arch="compact")            # doctest: +SKIP
>>> srzoo.upscale("in.png", "omdb:4x-realesr-general-x4v3", 4)    # doctest: +SKIP

``omdb:<id>`` names resolve through :func:`resolve` (called by
:func:`srzoo.hub.api.get_model`); ``omdb:<id>@onnx`` (or ``@pth``,
``@safetensors``) picks one resource of a record. The catalogue itself is a
pinned, verified, cached artifact (:mod:`.store`).
"""

from __future__ import annotations

import fnmatch

from srzoo.errors import UnknownModel
from srzoo.hub import cache
from srzoo.hub.catalog.entries import CatalogEntry, entry_for
from srzoo.hub.catalog.records import (
    PREFIX,
    ManualDownload,
    Record,
    UnsupportedArchitecture,
    runnable_archs,
    runs_today,
    split_name,
)
from srzoo.hub.catalog.store import CatalogError, Changes, current_pin, load, update

#: catalogue names ``srzoo list --catalog`` accepts
CATALOGS = ("openmodeldb",)


def resolve(name: str, scale: int | None = None) -> CatalogEntry:
    """The entry of ``omdb:<id>[@type]``; ``scale`` must be the record's."""
    rid, rtype = split_name(name)
    cat = load()
    rec = cat.get(rid)
    if scale is not None and int(scale) != rec.scale:
        raise UnknownModel(f"omdb:{rec.id} is an x{rec.scale} model, not x{scale}")
    return entry_for(rec, rtype, revision=cat.revision)


def cached_artifacts(rid: str | None = None) -> dict[str, "object"]:
    """``{"omdb:<id>": Artifact}`` of every record file in the cache (or of one record).

    Reads the catalogue only when it is itself cached (never downloads for this).
    """
    root = cache.cache_dir() / "models" / "omdb"
    if not root.is_dir() or not cache.is_cached(current_pin().artifact):
        return {}
    cat = load()
    out: dict[str, object] = {}
    for d in sorted(root.iterdir()):
        if rid is not None and d.name.lower() != rid.lower():
            continue
        rec = cat.records.get(d.name)
        for res in rec.resources if rec else ():
            art = res.artifact(rec.id)
            if cache.path_for(art).exists():
                out[f"omdb:{rec.id}@{res.type}"] = art
    return out


def search(pattern: str | None = None, *, arch: str | None = None, scale: int | None = None,
           tag: str | None = None, runnable: bool | None = None) -> list[Record]:
    """Records whose id or name matches ``pattern`` (shell wildcards, case-insensitive;
    a plain word matches anywhere), filtered by architecture, scale, tag and runnability."""
    pat = (pattern or "*").lower()
    if not any(c in pat for c in "*?["):
        pat = f"*{pat}*"
    out = []
    for rec in load().records.values():
        if not (fnmatch.fnmatch(rec.id.lower(), pat) or fnmatch.fnmatch(rec.name.lower(), pat)):
            continue
        if arch and rec.arch.lower() != arch.lower():
            continue
        if scale and rec.scale != scale:
            continue
        if tag and tag.lower() not in (t.lower() for t in rec.tags):
            continue
        if runnable is not None and (rec.runnable != "no") != runnable:
            continue
        out.append(rec)
    return sorted(out, key=lambda r: r.id.lower())


__all__ = ["CATALOGS", "cached_artifacts", "CatalogEntry", "CatalogError", "Changes", "ManualDownload", "PREFIX", "Record",
           "UnsupportedArchitecture", "current_pin", "load", "resolve", "runnable_archs", "runs_today",
           "search", "update"]
