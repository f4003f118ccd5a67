"""``srzoo catalog show|update|load FILE``, and the catalogue halves of ``srzoo list --catalog`` and
``srzoo info omdb:ID``."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from srzoo.cli._format import size, table
from srzoo.errors import SrzooError

#: training facts a record may carry, in display order
TRAINING = ("dataset", "datasetSize", "pretrainedModelG", "pretrainedModelD", "trainingIterations",
            "trainingEpochs", "trainingBatchSize", "trainingHRSize", "trainingOTF")


def _catalog_name(name: str) -> None:
    from srzoo.hub.catalog import CATALOGS

    if name.lower() not in CATALOGS:
        raise SrzooError(f"unknown catalogue {name!r}; srzoo knows: {', '.join(CATALOGS)}")


def _row(rec: Any) -> dict[str, Any]:
    res = rec.resource()
    return {
        "name": f"omdb:{rec.id}", "title": rec.name, "arch": rec.arch, "size_tags": list(rec.size_tags),
        "scale": rec.scale, "license": rec.license, "non_commercial": rec.non_commercial,
        "file_type": res.type if res else None, "file_size": res.size if res else None,
        "runnable": rec.runnable, "why_not": rec.why_not_runnable(res) if res else "no weight file",
        "downloadable": rec.downloadable, "tags": list(rec.tags),
    }


def cmd_list_catalog(args: argparse.Namespace) -> int:
    from srzoo.hub import catalog

    _catalog_name(args.catalog)
    recs = catalog.search(args.pattern, arch=args.arch, scale=args.scale, tag=args.tag,
                          runnable=True if args.runnable else None)
    if args.json:
        json.dump([_row(r) for r in recs], sys.stdout, indent=2)
        print()
        return 0
    rows = []
    for r in recs:
        d = _row(r)
        arch = " ".join([d["arch"], *d["size_tags"]])
        lic = d["license"] + (" (NC: non-commercial)" if d["non_commercial"] else "")
        file_col = f"{size(d['file_size'])} {d['file_type']}" if d["file_size"] else "-"
        rows.append([d["name"], arch, f"x{d['scale']}", lic, file_col, d["runnable"],
                     "yes" if d["downloadable"] else "by hand"])
    print(table(rows, ["name", "architecture", "scale", "license", "file", "runs", "download"])
          if rows else "no record matches")
    cat = catalog.load()
    print(f"{len(recs)} of {len(cat.records)} OpenModelDB records at {cat.revision[:12]}; "
          "runs: yes = converted to ONNX by srzoo, onnx = published ONNX run as is", file=sys.stderr)
    return 0


def cmd_info_record(args: argparse.Namespace) -> int:
    from srzoo.hub import api, cache, catalog
    from srzoo.hub.catalog.records import is_direct, normalise_url, split_name

    rid, rtype = split_name(args.name)
    cat = catalog.load()
    rec = cat.get(rid)
    entry = catalog.resolve(args.name)
    raw = dict(rec.raw)
    srzoo_facts = {"name": entry.name, "revision": cat.revision, "runnable": rec.runnable,
                   "why_not": entry.unrunnable, "resource": entry.artifact.file if entry.artifact else None,
                   "source_format": entry.source_format, "cached": api.is_cached(entry),
                   "non_commercial": rec.non_commercial, "page": entry.page}
    if args.json:
        json.dump({"id": rec.id, "record": raw, "srzoo": srzoo_facts}, sys.stdout, indent=2,
                  ensure_ascii=False)
        print()
        return 0
    out = [f"omdb:{rec.id}  {rec.name}", f"author:       {rec.author}"]
    lic = rec.license
    if rec.non_commercial:
        lic += "  ** non-commercial: this licence forbids commercial use **"
    out += [f"license:      {lic}",
            f"architecture: {rec.arch} {' '.join(rec.size_tags)}".rstrip(),
            f"scale:        x{rec.scale}",
            f"channels:     {raw.get('inputChannels', '?')} in, {raw.get('outputChannels', '?')} out",
            f"tags:         {', '.join(rec.tags) or '-'}",
            f"date:         {raw.get('date', '-')}",
            f"page:         {entry.page}"]
    facts = [(k, raw[k]) for k in TRAINING if k in raw]
    facts += [(k, v) for k, v in raw.items() if k not in TRAINING and k not in (
        "name", "author", "license", "architecture", "size", "scale", "inputChannels", "outputChannels",
        "tags", "date", "description", "resources", "images")]
    if facts:
        out.append("training:")
        out += [f"  {k}: {v}" for k, v in facts]
    out.append("resources:")
    for r in rec.resources:
        used = "  <- srzoo uses this" if entry.artifact and r.sha256 == entry.sha256 else ""
        out.append(f"  {r.type} ({r.platform}), {r.size} bytes, sha256 {r.sha256}{used}")
        for u in r.urls:
            how = "direct" if is_direct(normalise_url(u)) else "by hand"
            out.append(f"    [{how}] {u}")
    if rec.runnable == "no":
        out.append(f"srzoo:        cannot run it: {entry.unrunnable}")
    else:
        how = ("runs the published ONNX" if entry.source_format == "onnx"
               else f"converts the {entry.source_format} to ONNX on first use")
        cached = "cached" if api.is_cached(entry) else "not cached"
        where = cache.path_for(entry.artifact) if entry.artifact else "-"
        out.append(f"srzoo:        {how} ({cached}: {where})")
    out.append("description:")
    desc = str(raw.get("description", "")).strip() or "-"
    out += ["  " + ln for para in desc.splitlines() for ln in (textwrap.wrap(para, 96) or [""])]
    print("\n".join(out))
    return 0


def cmd_convert_record(args: argparse.Namespace) -> int:
    """``srzoo convert omdb:ID [-o OUT.onnx]``: the verified ONNX of a record, copied to OUT."""
    from pathlib import Path

    from srzoo import fsutil
    from srzoo.convert import derive as derived
    from srzoo.convert.files import atomic_write, check_output
    from srzoo.hub.catalog import resolve
    from srzoo.runtime.engines import model_file

    if args.manifest:
        raise SrzooError("--manifest is for local files; omdb: names need no manifest")
    entry = resolve(args.input, args.scale)
    if entry.unrunnable:
        raise SrzooError(entry.unrunnable)
    out = Path(args.output or f"{entry.record_id}.onnx")
    check_output(out, [], overwrite=args.overwrite)
    onnx = model_file(entry)
    if fsutil.kind(out) != "file" or out.resolve() != onnx.resolve():
        atomic_write(out, onnx.read_bytes())
    rec = derived.read_record(onnx.parent) if entry.source_format != "onnx" else None
    print(f"format:       {entry.source_format} (omdb:{entry.record_id} @ {entry.revision[:12]})")
    if rec:
        info, probe = rec.get("info", {}), rec.get("probe", {})
        print(f"architecture: {info.get('arch')}")
        print(f"scale:        {info.get('scale')}")
        print(f"parameters:   {info.get('params')}")
        print(f"verification: max |diff| {probe.get('max_abs_error'):.3g} against {probe.get('checked_against')}")
    else:
        print(f"scale:        {entry.scale}")
        print("verification: published ONNX, inputs inspected and run once on a probe")
    print(f"output:       {out} (sha256 {derived._sha256(out)})")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from srzoo.hub.catalog import store

    if args.action != "load" and args.file:
        raise SrzooError(f"a FILE goes with `srzoo catalog load FILE`, not with {args.action}")
    if args.action == "update":
        changes = store.update(args.revision)
        print("\n".join(changes.lines()))
        return 0
    if args.action == "load":
        from pathlib import Path

        if not args.file:
            raise SrzooError("srzoo catalog load FILE: name an OpenModelDB archive (.tar.gz, .zip) "
                             "or a catalogue .json")
        changes, how = store.load_file(Path(args.file), args.revision)
        print("\n".join(changes.lines()))
        print(f"loaded {args.file}: {how}")
        return 0
    pin = store.current_pin()
    cat = store.load(pin)
    print(f"catalogue:  openmodeldb ({store.settings()['source']['repository']})")
    print(f"revision:   {pin.revision}")
    print(f"pin:        {pin.origin}")
    print(f"file:       {cat.path} ({pin.size} bytes, sha256 {pin.sha256})")
    recs = list(cat.records.values())
    print(f"records:    {len(recs)}; srzoo runs {sum(r.runnable != 'no' for r in recs)}, "
          f"{sum(r.runnable != 'no' and r.downloadable for r in recs)} of them downloadable by a script")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "catalog", help="the OpenModelDB catalogue: show the pinned revision, update it, or load it from a file",
        epilog="offline: `srzoo catalog load open-model-database-main.zip` (the repository archive, "
               ".tar.gz or .zip, as GitHub serves it) or a catalogue .json copied from another "
               "machine's cache",
    )
    p.add_argument("action", choices=["show", "update", "load"], nargs="?", default="show")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="load: an OpenModelDB repository archive (.tar.gz, .zip) or a catalogue .json")
    p.add_argument("--revision", metavar="COMMIT",
                   help="update to this commit instead of the newest; load: the commit the archive holds "
                        "(when the archive does not say)")
    p.set_defaults(func=cmd_catalog)
