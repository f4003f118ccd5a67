"""Backend names: which engine runs on which target, and whether it can here.

A backend name is ``ENGINE:TARGET`` (``onnxruntime:cuda``, ``openvino:cpu``,
``opencv:cuda_fp16``), a plain target (``cpu``, ``cuda``, ``opencl``...:
the preferred engine that offers it and can run the model, in the order of
:data:`srzoo.runtime.engines.BUILTIN`), ``ENGINE:auto``, or ``auto`` (chosen by a
short measured trial, see :mod:`srzoo.runtime.autotune`; the static order of
:func:`static_auto` when trials are off). ``SRZOO_BACKEND`` replaces
``auto`` by a name of the caller's choosing.

The record, :class:`ResolvedBackend`, is engine-neutral: each engine maps its
target to its own constants. Whether a target can run is asked of the engine
(:meth:`~srzoo.runtime.engines.base.Engine.why_not`), cached per process
(:func:`refresh` forgets it). Asking for one that cannot run raises
:class:`srzoo.BackendUnavailable` with the reason and what to install;
nothing falls back silently: only ``auto`` chooses.
"""

from __future__ import annotations

import functools
from typing import Any

from srzoo import config
from srzoo.errors import BackendUnavailable, SrzooError
from srzoo.hub.manifest import ModelEntry
from srzoo.runtime import engines as _registry
from srzoo.runtime.engines import plan
from srzoo.runtime.engines.base import ResolvedBackend

#: names shown in help texts (every ENGINE:TARGET is accepted too)
NAMES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt", "opencl", "gpu", "onnxruntime:cpu",
                          "openvino:cpu", "opencv:cpu", "opencv:cuda_fp16")
#: what plain ``auto`` tries first when trials are off, fastest kind first
AUTO_TARGETS: tuple[str, ...] = ("cuda", "rocm", "migraphx", "dml", "coreml", "gpu", "opencl", "cpu")


def _engines() -> dict[str, Any]:
    return _registry.engines()


def env_backend() -> str | None:
    """``SRZOO_BACKEND``: the backend that replaces ``auto`` (None when unset)."""
    return str(config.get("SRZOO_BACKEND")).strip() or None


# --------------------------------------------------------------------------- detection
def capabilities() -> dict[str, Any]:
    """What each engine detected here (``srzoo info``): every engine's optional
    ``capabilities()`` merged (OpenCV's build facts, ONNX Runtime's providers...),
    plus every engine's versions under ``engines``."""
    caps: dict[str, Any] = {}
    for name, eng in _engines().items():
        ask = getattr(eng, "capabilities", None)
        if ask is not None:
            caps.update(ask())
        caps.setdefault("engines", {})[name] = eng.versions() or "not installed"
    return caps


@functools.lru_cache(maxsize=None)
def _why_not(engine: str, target: str) -> str:
    eng = _engines().get(engine)
    if eng is None:
        return f"unknown engine {engine!r}"
    return eng.why_not(target)


def refresh() -> None:
    """Forget cached detection (after installing drivers or packages in-process):
    ours, and each engine's through its optional ``refresh()``."""
    _why_not.cache_clear()
    for eng in _engines().values():
        forget = getattr(eng, "refresh", None)
        if forget is not None:
            forget()


def why_not(engine: str, target: str) -> str:
    """Why ``engine:target`` cannot run here ("" when it can)."""
    return _why_not(engine, target)


def precisions(engine: str, target: str) -> tuple[str, ...]:
    """The precisions ``engine:target`` runs in here, its own first (the engine's
    optional ``precisions()``; fp32 only without it)."""
    ask = getattr(_engines()[engine], "precisions", None)
    return (tuple(ask(target)) if ask is not None else ()) or ("fp32",)


def backend_table() -> list[dict[str, Any]]:
    """One row per engine target: ``name``, ``engine``, ``target``, ``usable``,
    ``reason`` ("" when usable) and ``precisions`` (those it runs in here)."""
    rows = []
    for name, eng in _engines().items():
        for target in eng.targets:
            reason = why_not(name, target)
            rows.append({"name": f"{name}:{target}", "engine": name, "target": target,
                         "usable": not reason, "reason": reason,
                         "precisions": list(precisions(name, target)) if not reason else []})
    return rows


def available() -> list[str]:
    """Names of the backends that can run here."""
    return [r["name"] for r in backend_table() if r["usable"]]


# --------------------------------------------------------------------------- names
def _valid_names() -> str:
    targets = sorted({t for e in _engines().values() for t in e.targets} - {"auto"})
    return "auto, " + ", ".join(targets) + ", or ENGINE:TARGET with ENGINE one of " + \
        ", ".join(_engines())


def parse(name: str) -> tuple[str | None, str]:
    """Split a backend name into (engine or None for "best engine", target),
    without checking usability.

    ``"cuda"`` → ``(None, "cuda")``; ``"opencv:cuda_fp16"`` →
    ``("opencv", "cuda_fp16")``; ``"auto"`` → ``(None, "auto")``.
    Raises :class:`SrzooError` for names that mean nothing.
    """
    if not isinstance(name, str) or not name.strip():
        raise SrzooError(f"backend must be a name, got {name!r}; valid: {_valid_names()}")
    raw = name.strip().lower().replace("-", "_")
    engs = _engines()
    if ":" in raw:
        engine, _, target = raw.partition(":")
        if engine not in engs:
            raise SrzooError(f"unknown engine {engine!r} in backend {name!r}; valid backends: "
                             f"{_valid_names()}")
        if target != "auto" and target not in engs[engine].targets:
            raise SrzooError(f"engine {engine} has no target {target!r} (it has: "
                             f"{', '.join(engs[engine].targets)}, auto)")
        return engine, target
    if raw == "auto":
        return None, "auto"
    if raw in engs:  # "onnxruntime" alone: that engine, its best target
        return raw, "auto"
    if not any(raw in e.targets for e in engs.values()):
        raise SrzooError(f"unknown backend {name!r}; valid backends: {_valid_names()}")
    return None, raw


def _can_run(entry: "ModelEntry | None", engine: str) -> bool:
    if entry is None:
        return engine != "interpolation"
    return plan(entry, engine) is not None


def _auto_ok(engine: str, target: str) -> bool:
    eng = _engines()[engine]
    ok = getattr(eng, "auto_ok", None)
    return bool(ok(target)) if ok is not None else True


def candidates(entry: "ModelEntry | None" = None, engine: str | None = None) -> list[ResolvedBackend]:
    """Every backend ``auto`` may choose for ``entry`` here (usable, not FP16,
    not slow-to-build), in the static order: :data:`AUTO_TARGETS` first, then
    engine preference."""
    engs = _engines()
    names = [engine] if engine else list(engs)
    out = []
    targets = list(AUTO_TARGETS) + sorted({t for n in names for t in engs[n].targets} - set(AUTO_TARGETS))
    for t in targets:
        for n in names:
            if t in engs[n].targets and _can_run(entry, n) and _auto_ok(n, t) and not why_not(n, t):
                out.append(ResolvedBackend(n, t))
    return out


def static_auto(entry: "ModelEntry | None" = None, engine: str | None = None,
                requested: str = "auto") -> ResolvedBackend:
    """The first of :func:`candidates`: what ``auto`` means without trials."""
    if entry is not None and entry.format == "interpolation":
        return ResolvedBackend("interpolation", "cpu", requested, "cv2.resize runs on the CPU")
    found = candidates(entry, engine)
    if not found:
        raise BackendUnavailable(f"no usable backend for {requested!r}: "
                                 + "; ".join(f"{r['name']}: {r['reason']}" for r in backend_table()
                                             if r["reason"] and (engine is None or r["engine"] == engine)))
    b = found[0]
    return ResolvedBackend(b.engine, b.target, requested, "static order (first usable of "
                           f"{', '.join(str(c) for c in found[:4])})")


def resolve(name: str = "auto", entry: "ModelEntry | None" = None) -> ResolvedBackend:
    """Resolve a backend name (without trials: ``auto`` takes the static order).

    A plain target takes the first engine (in :data:`srzoo.runtime.engines.BUILTIN`
    order) that offers it, can run ``entry`` and is usable; a concrete name
    that cannot run raises :class:`srzoo.BackendUnavailable` with the reason
    and the fix; it never falls back to another target.
    """
    engine, target = parse(name)
    if entry is not None and entry.format == "interpolation":
        # cv2.resize runs on the CPU whatever was asked; a backend that cannot
        # run here is still refused with its reason, as for any model
        if engine != "interpolation" and target != "auto":
            resolve(name)
        return ResolvedBackend("interpolation", "cpu", name, "cv2.resize runs on the CPU")
    if target == "auto":
        return static_auto(entry, engine, requested=name)
    if engine is not None:
        if entry is not None and not _can_run(entry, engine):
            raise BackendUnavailable(f"backend {name!r} cannot run {entry.name}: engine {engine} does "
                                     f"not load {entry.format!r} files and no converter makes ONNX "
                                     "from them")
        reason = why_not(engine, target)
        if reason:
            raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
        return ResolvedBackend(engine, target, name, "asked for")
    reasons = []
    for n, eng in _engines().items():
        if target not in eng.targets or not _can_run(entry, n):
            continue
        reason = why_not(n, target)
        if not reason:
            return ResolvedBackend(n, target, name, f"first engine with target {target} "
                                   f"(order: {', '.join(_engines())})")
        reasons.append(f"{n}:{target}: {reason}")
    raise BackendUnavailable(f"backend {name!r} is unavailable: " + ("; ".join(reasons) or
                             "no engine that can run this model offers it"))


__all__ = ["AUTO_TARGETS", "NAMES", "ResolvedBackend", "available", "backend_table", "candidates",
           "capabilities", "env_backend", "parse", "precisions", "refresh", "resolve", "static_auto",
           "why_not",
           "BackendUnavailable"]
