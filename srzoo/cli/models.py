"""``srzoo list | fetch | cache | info``: model management commands."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

from srzoo.cli._format import print_failures, size, table
from srzoo.errors import SrzooError
from srzoo.hub import api, cache


def _runs_derived(entry: Any) -> bool:
    """Does the entry's default engine run it from a derived ONNX (PyTorch, Keras,
    ncnn; the .pb models on OpenCV 5.1)? Asked of the engine, not the manifest."""
    from srzoo.runtime.engines import (  # the runtime only for the commands that need it
        engine_for,
        plan,
    )

    try:
        how = plan(entry, engine_for(entry))
    except SrzooError:
        return False
    return bool(how and how.derived)


def _rebuild_derived(entry: Any, quiet: bool | None) -> Path:
    """``fetch --force``: delete the entry's derived ONNX and build it again now."""
    from srzoo.convert import derive as derived
    from srzoo.runtime.engines import model_file

    for folder in derived.remove_for(entry.name, entry.scale):
        print(f"removed {folder}", file=sys.stderr)
    return model_file(entry, quiet=quiet)


def cmd_list(args: argparse.Namespace) -> int:
    if args.catalog:
        from srzoo.cli.catalog import cmd_list_catalog

        return cmd_list_catalog(args)
    if args.arch or args.scale or args.runnable:
        raise SrzooError("--arch, --scale and --runnable filter a catalogue: add --catalog openmodeldb")
    models = api.list_models(args.pattern)
    if args.tag:
        want = args.tag.strip().lower()
        models = [m for m in models if want in (t.lower() for t in m.tags)]
        if not models:
            known = sorted({t for m in api.list_models() for t in m.tags})
            raise SrzooError(f"no model has the tag {args.tag!r}; tags: {', '.join(known)}")
    if args.json:
        rows = []
        for m in models:
            d = m.to_dict()
            d["cached"] = api.is_cached(m)
            d["derived"] = _runs_derived(m)
            rows.append(d)
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    # "(convert)": its engine runs it from a derived ONNX (PyTorch, Keras, ncnn; .pb on OpenCV 5.1)
    rows = [[m.name, f"x{m.scale}" if m.scale else "any", m.file or "-",
             size(m.size) if m.size else "-",
             m.format + (" (convert)" if _runs_derived(m) else ""),
             m.license,
             ("built-in" if m.artifact.bundled else "yes" if api.is_cached(m) else "no")
             if m.artifact else "-", ",".join(m.tags) or "-"] for m in models]
    print(table(rows, ["name", "scale", "file", "size", "format", "license", "cached", "tags"]))
    # one line of purpose per model name, under the table
    seen: dict[str, str] = {}
    for m in models:
        if m.description and m.name not in seen:
            seen[m.name] = m.description
    if seen:
        print()
        width = max(len(n) for n in seen)
        for n, d in seen.items():
            print(f"{n:<{width}}  {d}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.all and args.scale:
        raise SrzooError("give either --scale or --all, not both")
    names = args.names
    if args.from_file:
        if len(names) != 1 or args.all:
            raise SrzooError("--from FILE adds one file: give exactly one model name (and no --all)")
        from srzoo.hub.catalog.entries import add_from_file

        print(add_from_file(api.get_model(names[0], args.scale), args.from_file))
        return 0
    failed = 0
    for name in names:
        try:
            if args.all:
                entries = [e for e in api.get_registry().variants(name) if e.artifact]
            else:
                entries = [api.get_model(name, args.scale)]
            seen: set[str] = set()
            for entry in entries:
                if entry.file in seen:  # e.g. vdsr: one file for three scales
                    continue
                seen.add(entry.file or "")
                # without --quiet the bar shows only on a terminal (None: ask the terminal)
                path = api.fetch_entry(entry, force=args.force, quiet=True if args.quiet else None)
                if args.force and _runs_derived(entry):  # its derived ONNX is rebuilt from the new copy
                    path = _rebuild_derived(entry, quiet=True if args.quiet else None)
                print(path)
        except SrzooError as e:
            print(f"srzoo: error: {e}", file=sys.stderr)
            print_failures(e, args)
            failed += 1
    return 1 if failed else 0


def _owners() -> dict:
    """Cached path -> 'name xS' of the first model entry using that file."""
    owners: dict = {}
    for m in api.list_models():
        if m.artifact:
            owners.setdefault(cache.path_for(m.artifact), f"{m.name} x{m.scale}")
    from srzoo.hub.catalog import cached_artifacts

    for name, art in cached_artifacts().items():  # files of omdb: records
        owners.setdefault(cache.path_for(art), name.split("@")[0])
    return owners


def _owner_of(path, owners: dict) -> str:
    """'name xS' for a cached model file, or the dataset name."""
    if path in owners:
        return owners[path]
    if path.parent.parent.name == "datasets":
        return f"dataset {path.parent.name}"
    return "?"


def _selected(name: str | None) -> list:
    """Artifacts of one model or dataset name, or of everything in the registry."""
    reg = api.get_registry()
    from srzoo.hub.catalog import cached_artifacts

    if name is not None and name.lower().startswith("omdb:"):
        arts = list(cached_artifacts(name[5:].split("@")[0]).values())
    elif name is None:
        arts = [m.artifact for m in reg.models() if m.artifact]
        arts += [a for d in reg.datasets() for a in d.files]
        arts += list(cached_artifacts().values())
    elif name.lower() in [d.name for d in reg.datasets()]:
        arts = list(reg.dataset(name).files)
    else:
        arts = [m.artifact for m in reg.variants(name) if m.artifact]
    # files shipped inside the package are not in the cache: never listed, verified or removed here
    unique = {cache.path_for(a): a for a in arts if not a.bundled}
    return list(unique.values())


# ---- derived files (converted ONNX with their record), shown under their model ----
def _derived(name: str | None) -> list:
    from srzoo.convert import derive as derived

    return [d for d in derived.derived_files()
            if name is None or (d.record or {}).get("model") == name.lower()]


def _derived_rows(name: str | None) -> list:
    rows = []
    for d in _derived(name):
        rec = d.record or {}
        nbytes = d.path.stat().st_size if d.path.is_file() else 0
        owner = f"{rec.get('model', '?')} x{rec.get('scale', '?')} (derived)"
        rows.append([owner, str(d.path.relative_to(cache.cache_dir())), size(nbytes)])
    return rows


def _int8_rows(name: str | None) -> list:
    from srzoo.runtime import quantize

    rows = []
    for folder, rec in quantize.cached(name):
        f = folder / "model.onnx"
        nbytes = f.stat().st_size if f.is_file() else 0
        rows.append([f"{rec['model']} x{rec.get('scale', '?')} (int8)",
                     str(f.relative_to(cache.cache_dir())), size(nbytes)])
    return rows


def _verify_int8(name: str | None) -> tuple[int, int]:
    from srzoo.runtime import quantize

    checked = bad = 0
    for folder, rec in quantize.cached(name):
        checked += 1
        issues = quantize.problems(folder, rec)
        if issues:
            bad += 1
            print(f"CORRUPT {folder}: {'; '.join(issues)}; remove it with `srzoo cache rm "
                  f"{rec['model']}` (it is quantized again on next use)")
        else:
            print(f"ok      {folder / 'model.onnx'}")
    return checked, bad


def _verify_derived(name: str | None) -> tuple[int, int]:
    from srzoo.convert import derive as derived

    checked = bad = 0
    for d in _derived(name):
        checked += 1
        issues = derived.verify(d.folder)
        if issues:
            bad += 1
            print(f"CORRUPT {d.folder}: {'; '.join(issues)}; it is rebuilt on next use "
                  f"(or remove it with `srzoo cache rm NAME`)")
        else:
            print(f"ok      {d.path}")
    return checked, bad


def _verify_extracted() -> tuple[int, int]:
    """Members extracted from verified archives: re-hashed against their record."""
    from srzoo.hub import archive

    checked = bad = 0
    for p in archive.extracted_members():
        checked += 1
        issues = archive.member_problems(p)
        if issues:
            bad += 1
            print(f"CORRUPT {p}: {'; '.join(issues)}; it is extracted again on next use "
                  "(or run `srzoo fetch NAME --force`)")
        else:
            print(f"ok      {p}")
    return checked, bad


def _remove_derived(name: str | None) -> int:
    import shutil

    n = 0
    for d in _derived(name):
        try:
            shutil.rmtree(d.folder)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise cache.os_error(e, Path(d.folder, e.filename or ""), "delete") from None
        print(f"removed {d.folder}")
        n += 1
    return n


def cmd_cache(args: argparse.Namespace) -> int:
    action = args.action
    if action == "path":
        print(cache.cache_dir())
        return 0
    if action == "ls":
        files = list(cache.cached_files())
        if args.name:
            wanted = {cache.path_for(a) for a in _selected(args.name)}
            files = [f for f in files if f.path in wanted]
        owners = _owners()
        rows = [[_owner_of(f.path, owners), str(f.path.relative_to(cache.cache_dir())), size(f.size)]
                for f in files]
        rows += _derived_rows(args.name)
        rows += _int8_rows(args.name)
        print(table(rows, ["model", "file", "size"]) if rows else "cache is empty")
        total = sum(f.size for f in files)
        print(f"{len(files)} file(s), {size(total)} in {cache.cache_dir()}", file=sys.stderr)
        return 0
    if action == "verify":
        bad = 0
        checked = 0
        known = set()
        for art in _selected(args.name):
            path = cache.path_for(art)
            known.add(path)
            if not path.exists():
                continue
            checked += 1
            issues = cache.problems(path, art)
            if issues:
                bad += 1
                print(f"CORRUPT {path}: {'; '.join(issues)}; "
                      "repair with `srzoo fetch NAME --force` or `srzoo cache rm NAME`")
            else:
                cache.record(art)  # fully checked: later uses need not hash it again
                print(f"ok      {path}")
        if args.name is None:
            for f in cache.cached_files():
                if f.path not in known:
                    print(f"UNKNOWN {f.path}: no manifest entry describes this file")
        d_checked, d_bad = _verify_derived(args.name)
        checked, bad = checked + d_checked, bad + d_bad
        q_checked, q_bad = _verify_int8(args.name)
        checked, bad = checked + q_checked, bad + q_bad
        if args.name is None:
            x_checked, x_bad = _verify_extracted()
            checked, bad = checked + x_checked, bad + x_bad
        print(f"{checked} file(s) checked, {bad} corrupt", file=sys.stderr)
        return 1 if bad else 0
    if action == "rm":
        if args.name is None:
            targets = [f.path for f in cache.cached_files()] + cache.leftovers()
        else:
            arts = _selected(args.name)
            targets = [p for a in arts for p in (
                cache.path_for(a), cache.partial_path(a),
                cache.partial_path(a).with_name(cache.partial_path(a).name + ".json"),
                cache.record_path(a))]
        n_derived = _remove_derived(args.name)
        from srzoo.runtime import autotune, quantize

        for folder in quantize.remove(args.name):
            print(f"removed {folder}")
            n_derived += 1

        n_tuned = autotune.forget(args.name)
        if n_tuned:
            print(f"forgot {n_tuned} measured backend choice(s) of `auto` "
                  f"({autotune._store()})", file=sys.stderr)
        removed, skipped = cache.remove(targets)
        for p in removed:
            print(f"removed {p}")
        for p in skipped:
            print(f"srzoo: kept {p}: another process is downloading (its lock is held)",
                  file=sys.stderr)
        print(f"{len(removed) + n_derived} file(s) removed", file=sys.stderr)
        return 0
    raise SrzooError(f"unknown cache action {action!r}")  # pragma: no cover


def cmd_info(args: argparse.Namespace) -> int:
    if args.name:
        from srzoo.cli.catalog import cmd_info_record

        return cmd_info_record(args)
    import cv2
    import numpy

    from srzoo._version import __version__

    info: dict[str, Any] = {
        "srzoo": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "opencv": cv2.__version__,
        "numpy": numpy.__version__,
        "cache_dir": str(cache.cache_dir()),
    }
    try:
        from srzoo.runtime import backends

        info["capabilities"] = backends.capabilities()
        info["backends"] = backends.backend_table()
    except ImportError:  # pragma: no cover - backends module is part of the package
        pass
    info["auto"] = _auto_info(args)
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        print()
        return 0
    print(format_info(info, all_groups=args.all))
    return 0


def _wrap(text: str, indent: str, width: int = 80) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=False) or [indent.rstrip()]


def _opencv_line(caps: dict[str, Any]) -> list[str]:
    """What this OpenCV build can do that matters to srzoo, in words."""
    facts = []
    if not caps.get("tf_importer", True):
        facts.append("no TensorFlow importer (the .pb models run from their derived ONNX)")
    else:
        facts.append("reads TensorFlow .pb")
    if caps.get("cpu_only_engine"):
        facts.append("new DNN engine only (CPU)")
    elif caps.get("classic_engine"):
        facts.append("classic and new DNN engines")
    facts.append(f"OpenCL {'on ' + caps['opencl_device'] if caps.get('opencl') else 'not usable'}")
    facts.append(f"CUDA DNN {'yes' if caps.get('cuda_dnn') else 'no'}")
    return _wrap(f"OpenCV {caps.get('opencv_version', '?')}: " + "; ".join(facts), "", 80)


def format_info(info: dict[str, Any], all_groups: bool = False) -> str:
    """``srzoo info`` as text that reads at 80 columns: the answer for --model
    first, then versions, the usable backends in auto's order, and each
    unusable backend group once with its fix (per engine the first two groups,
    all of them with ``all_groups``)."""
    lines: list[str] = []
    auto = info.get("auto", {})
    if auto.get("model"):
        lines += _wrap(f"{auto['model']} runs on {auto['chosen']}: {auto['why']}", "", 80)
        lines.append("")
    lines.append(f"srzoo {info['srzoo']}, Python {info['python']}, numpy {info['numpy']}")
    lines.append(f"platform: {info['platform']}")
    caps = info.get("capabilities", {})
    lines += _opencv_line(caps) if caps else [f"OpenCV {info['opencv']}"]
    lines.append(f"cache: {info['cache_dir']}")
    rows = info.get("backends") or []
    usable = [r for r in rows if r["usable"]]
    if usable:
        order = [b.strip() for b in str(auto.get("static_order", "")).split(",") if b.strip()]
        usable.sort(key=lambda r: order.index(r["name"]) if r["name"] in order else len(order))
        versions = caps.get("engines", {})
        lines += ["", "usable backends (auto's order; * never picked by auto):"]
        for r in usable:
            ver = versions.get(r["engine"])
            ver = ", ".join(f"{k} {v.split('-')[0]}" for k, v in ver.items()) if isinstance(ver, dict) else ""
            mark = " " if r["name"] in order or r["engine"] == "interpolation" else "*"
            precs = r.get("precisions") or []
            if len(precs) > 1:  # reduced precisions: precision="..." or "auto"
                ver += f" [{'/'.join(precs)}]"
            lines.append(f"  {r['name'] + mark:24} {ver}"[:80].rstrip())
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if not r["usable"]:
            groups.setdefault((r["engine"], r["reason"]), []).append(r["target"])
    if groups:
        lines += ["", "not usable here:"]
        shown: dict[str, int] = {}
        more: dict[str, list[str]] = {}
        for (engine, reason), targets in groups.items():
            shown[engine] = shown.get(engine, 0) + 1
            if shown[engine] > 2 and not all_groups:
                more.setdefault(engine, []).extend(targets)
                continue
            lines.append(f"  {engine}: {', '.join(targets)}")
            lines += _wrap(reason, "      ", 80)
        for engine, targets in more.items():
            lines += _wrap(f"{engine}: also {', '.join(targets)} (srzoo info --all says why)", "  ", 80)
    lines += ["", "auto:"]
    for k in ("SRZOO_BACKEND", "trials", "static_order"):
        if auto.get(k) not in (None, ""):
            lines += _wrap(f"{k}: {auto[k]}", "  ", 80)
    for r in auto.get("remembered", []):
        lines += _wrap(f"remembered: {r['model']} x{r['scale']} {r['class']} threads={r['threads']}: "
                       f"{r['backend']} ({r['times']})", "  ", 80)
    return "\n".join(lines)


def _auto_info(args: argparse.Namespace) -> dict[str, Any]:
    """What ``auto`` means here: the override, trials on/off, the static order,
    the choices remembered in the cache, and (with --model) what it picks now."""
    from srzoo.runtime import autotune, backends

    out: dict[str, Any] = {"SRZOO_BACKEND": backends.env_backend(),
                           "trials": "on" if autotune._env_autotune() else "off (SRZOO_AUTOTUNE=0)"}
    try:
        out["static_order"] = ", ".join(str(c) for c in backends.candidates())
    except SrzooError as e:  # pragma: no cover - the CPU always works
        out["static_order"] = str(e)
    out["remembered"] = [
        {"model": v.get("model"), "scale": v.get("scale"), "class": v.get("class"),
         "threads": v.get("threads"), "backend": v.get("backend"),
         "times": ", ".join(f"{k} {t:.1f} ms" for k, t in sorted(v.get("times_ms", {}).items(),
                                                                  key=lambda kv: kv[1]))}
        for v in autotune._read().values() if isinstance(v, dict)]
    if getattr(args, "model", None):
        from srzoo.runtime.upscaler import Upscaler

        up = Upscaler(args.model, args.scale or 2, backend=args.backend, threads=args.threads)
        out.update(model=f"{up.model} x{up.scale} (backend={args.backend!r})", chosen=up.backend,
                   why=up.backend_reason)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list models (one row per file and scale)")
    p.add_argument("pattern", nargs="?", help="shell wildcard on names, e.g. 'fsrcnn*'")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--catalog", metavar="NAME", help="list a community catalogue instead: openmodeldb")
    p.add_argument("--arch", help="with --catalog: only this architecture (esrgan, compact, span, ...)")
    p.add_argument("--scale", "-s", type=int, help="with --catalog: only this scale")
    p.add_argument("--tag", "--for", dest="tag",
                   help="only models with this tag: photo, anime, video, fast, quality, "
                        "real-world... (with --catalog: the catalogue's tags)")
    p.add_argument("--runnable", action="store_true", help="with --catalog: only records srzoo runs")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("fetch", help="download and verify model files; print their paths")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--scale", "-s", type=int, help="scale (default: the lowest the model has)")
    p.add_argument("--all", action="store_true", help="every scale of the model")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="add a file you downloaded by hand, after checking its size and sha256")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("cache", help="inspect or clean the cache")
    p.add_argument("action", choices=["path", "ls", "verify", "rm"])
    p.add_argument("name", nargs="?", help="limit to one model or dataset")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("info", help="versions, cache folder, engines and backends, what auto picks; "
                                    "with omdb:ID, the whole OpenModelDB record")
    p.add_argument("name", nargs="?", metavar="omdb:ID", help="show this catalogue record")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="every unusable backend with its reason")
    p.add_argument("--model", help="also load this model and say which backend it runs on and why")
    p.add_argument("--scale", "-s", type=int, default=None, help="scale for --model (default 2)")
    p.add_argument("--backend", default="auto", help="backend for --model (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="threads for --model")
    p.set_defaults(func=cmd_info)
