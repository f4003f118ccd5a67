"""``backend="auto"``: a short measured trial, once, remembered in the cache.

On first use of a model for an input-size class, every backend ``auto`` may
choose (:func:`srzoo.runtime.backends.candidates`) loads the model and runs the
network alone on synthetic inputs (pre/post-processing is the same on every
engine, so it is left out), one warm-up run and then timed runs within a small
time budget. The class is that of the network input that really runs: the
whole image, or one tile with its overlap on both sides when the image is tiled
(for size or for memory). A heavy model is timed at two small sizes and its
time is extrapolated to that size (a + b x pixels, per backend), so an engine
that is quick on a tiny input but slow per pixel is not chosen for a large one.
Memory counts: where a run at that size could exceed the memory budget, each
backend's memory per pixel is measured (:func:`memory_per_pixel`) and one that
would exceed it ranks after every backend that fits. The fastest then wins. The choice is stored in
``<cache>/autotune.json`` under a key made of the model file, scale, size
class, thread count, the engines' versions and the CPU/GPU identity, so a new
onnxruntime, another machine or other threads measure again.

Memory is measured the same way, once per model and backend
(:func:`memory_per_pixel`): the peak resident memory one network run adds per
input pixel, from two runs of a freshly loaded network at two sizes. The
pipeline sizes tiles from it so that a run stays under ``SRZOO_MEMORY``.

``SRZOO_AUTOTUNE=0`` turns trials off (the static order of
:func:`srzoo.runtime.backends.static_auto`); ``SRZOO_BACKEND`` replaces ``auto``
entirely. :class:`Choice` says what was chosen and why.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from srzoo import config, fsutil
from srzoo.errors import SrzooError
from srzoo.hub.untrusted import json_loads
from srzoo.hub import cache
from srzoo.runtime import backends, pipeline
from srzoo.runtime.engines import engines

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry
    from srzoo.runtime.engines.base import ResolvedBackend

FILE = "autotune.json"
#: input-size classes: name -> (largest input pixels in the class, trial height, trial width)
SIZE_CLASSES: dict[str, tuple[int, int, int]] = {
    "small": (256 * 256, 128, 128),
    "medium": (1024 * 1024, 256, 384),
    "large": (1 << 62, 512, 512),  # above the automatic tiling budget: 512 px tiles
}
#: seconds one candidate may spend in timed runs (after one warm-up)
TRIAL_BUDGET = 0.6
#: timed runs per candidate at most
TRIAL_RUNS = 5


def _env_autotune() -> bool:
    """``SRZOO_AUTOTUNE``: 0/false/no/off turns measured trials off (default on)."""

    return bool(config.get("SRZOO_AUTOTUNE"))


def size_class(h: int, w: int) -> str:
    """The class of an h×w network input."""
    px = h * w
    for name, (limit, _, _) in SIZE_CLASSES.items():
        if px <= limit:
            return name
    return "large"  # pragma: no cover - the last class has no limit


@dataclass
class Choice:
    """What ``auto`` chose, and why."""

    backend: "ResolvedBackend"
    how: str  # "measured", "cached", "static", "env", "only"
    size_class: str = "medium"
    times_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    trial: str = ""
    #: bytes one run at the trial's target size would take, by backend (where measured)
    memory: dict[str, int] = field(default_factory=dict)
    #: backends whose run would exceed the memory budget (ranked last)
    over_budget: list[str] = field(default_factory=list)
    #: backends over the budget whose time is that of their tiled run: the number of tiles
    tiles: dict[str, int] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        if self.how in ("measured", "cached"):
            ranked = sorted(self.times_ms.items(), key=lambda kv: (kv[0] in self.over_budget, kv[1]))
            shown = ", ".join(f"{k} {v:.1f} ms" + (f" {self.memory[k] / 2**20:.0f} MB" if k in
                                                  self.memory else "") +
                              (" (over the memory budget)" if k in self.over_budget else "") +
                              (f" ({self.tiles[k]} tiles)" if k in self.tiles else "")
                              for k, v in ranked)
            when = "measured now" if self.how == "measured" else "measured earlier (cached)"
            return f"fastest in a {self.trial} {self.size_class}-input trial, {when}: {shown}"
        return self.backend.reason


def machine_identity() -> dict[str, Any]:
    """CPU model, logical CPU count and OS: part of every autotune key."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "os": platform.system()}


def key_for(entry: "ModelEntry", cls: str, threads: int | None,
            cands: list["ResolvedBackend"]) -> str:
    engs = engines()
    blob = {
        "model": entry.name, "scale": entry.scale, "file": entry.sha256 or entry.file or "",
        "class": cls, "threads": threads, "machine": machine_identity(),
        "candidates": [str(c) for c in cands],
        "versions": {n: engs[n].versions() for n in sorted({c.engine for c in cands})},
        "devices": {str(c): engs[c.engine].device(c.target) for c in cands if c.target != "cpu"},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]


def _store() -> Path:
    return cache.cache_dir() / FILE


def _read() -> dict[str, Any]:
    try:
        data = json_loads(_store().read_bytes(), _store(), "autotune.json")  # depth-checked
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, RecursionError, SrzooError):  # unreadable or hostile: measure again
        return {}


def _save(data: dict[str, Any]) -> None:
    fsutil.atomic_write(_store(), json.dumps(data, indent=1, sort_keys=True) + "\n", fsync=False)


#: seconds to wait for another process updating the store (it holds the lock for milliseconds)
LOCK_WAIT = 10.0


def _write(key: str, value: dict[str, Any]) -> bool:
    """Add one choice to the store (atomic replace, under a bounded file lock).
    Where the cache cannot be written (read-only, full, ``/proc``, a lock held
    too long) the choice is simply not remembered: False, no error."""
    path = _store()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with fsutil.bounded_lock(str(path) + ".lock", LOCK_WAIT):
            data = _read()
            data[key] = value
            _save(data)
    except OSError:
        return False
    return True


def forget(model: str | None = None) -> int:
    """Drop remembered choices, all of them or those of one model name
    (``srzoo cache rm [NAME]``, tests); returns how many were dropped."""
    path = _store()
    if not path.exists():
        return 0
    try:
        with fsutil.bounded_lock(str(path) + ".lock", LOCK_WAIT):
            data = _read()
            if model is None:
                path.unlink(missing_ok=True)
                return len(data)
            keep = {k: v for k, v in data.items()
                    if not (isinstance(v, dict) and str(v.get("model", "")).lower() == model.lower())}
            if len(keep) != len(data):
                _save(keep)
            return len(data) - len(keep)
    except OSError as e:
        raise cache.os_error(e, path, "update" if model else "delete") from None


#: seconds one trial run of the first candidate should take at most (heavy
#: models get a smaller trial input than their class)
RUN_BUDGET = 0.12


def trial_size(runner: Any, cls: "str | tuple[int, int]", channels: int) -> tuple[int, int]:
    """The trial input size for ``cls`` (a class name or an (h, w) size), shrunk
    (not below 32x32) so that one run of ``runner`` takes about
    :data:`RUN_BUDGET` at most."""
    h, w = SIZE_CLASSES[cls][1:] if isinstance(cls, str) else (int(cls[0]), int(cls[1]))
    x = trial_input(runner, 32, 32, channels)
    runner.run(x)
    t0 = time.perf_counter()
    runner.run(x)
    t32 = max(time.perf_counter() - t0, 1e-6)
    px_budget = 32 * 32 * RUN_BUDGET / t32
    if h * w > px_budget:
        f = (px_budget / (h * w)) ** 0.5
        h, w = max(32, int(h * f) // 8 * 8), max(32, int(w * f) // 8 * 8)
    return h, w


def trial_input(runner: Any, h: int, w: int, channels: int) -> np.ndarray:
    """A synthetic h×w input in the runner's layout."""
    rng = np.random.default_rng(0)
    x = rng.random((h, w, channels), dtype=np.float32)
    if runner.input_layout == "nhwc":
        return np.ascontiguousarray(x[None])
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def measure(runner: Any, x: np.ndarray, budget: float = TRIAL_BUDGET,
            runs: int = TRIAL_RUNS) -> float:
    """Median seconds of ``runner.run(x)``: one warm-up, then up to ``runs``
    timed runs while within ``budget`` seconds."""
    runner.run(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs and (not times or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        runner.run(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def counts_memory(size: tuple[int, int] | None, budget: int | None) -> bool:
    """Whether a run at ``size`` could exceed ``budget`` bytes (at
    :data:`MAX_BYTES_PER_PIXEL`): then ``auto`` measures and counts memory."""
    return bool(size and budget and int(size[0]) * int(size[1]) * MAX_BYTES_PER_PIXEL > budget)


def choose(entry: "ModelEntry", cls: str, threads: int | None,
           load: Callable[["ResolvedBackend"], Any], channels: int,
           engine: str | None = None, cands: list["ResolvedBackend"] | None = None,
           refused: dict[str, str] | None = None, size: tuple[int, int] | None = None,
           memory: Callable[["ResolvedBackend"], float | None] | None = None,
           budget: int | None = None,
           unload: Callable[["ResolvedBackend"], None] | None = None,
           tileable: bool = False) -> tuple[Choice, dict[str, Any]]:
    """What ``auto`` (or ``ENGINE:auto``) runs ``entry`` on for inputs of class ``cls``.

    ``load(backend)`` returns a loaded tensor runner. Returns the choice and the
    runners loaded on the way (by backend name), so the winner is not loaded twice.
    ``cands``: the backends to choose among (default
    :func:`srzoo.runtime.backends.candidates`; with precisions when
    ``precision="auto"``, see :mod:`srzoo.runtime.precision`); ``refused``:
    candidates left out and why (kept with the record).

    ``size``: the network input that will run, (h, w) -- the image, or a tile
    with its overlap (default: the class's own size, :data:`SIZE_CLASSES`,
    for a choice made before any image is seen: memory is not counted then).
    Only the leading candidate's runner is kept while the others are tried (one
    engine's memory pools at a time): ``unload(backend)`` forgets a runner that
    ``load`` keeps elsewhere. Every candidate is timed at the first run's trial size and at twice its
    sides (four times its pixels, within ``size``); the time at ``size`` is extrapolated from the two (a + b x pixels,
    per candidate), or measured there directly when ``size`` is no larger than
    the trial. ``memory(backend)``: its bytes per network-input pixel
    (:func:`memory_per_pixel`); asked only when a ``size`` run could exceed
    ``budget`` bytes at :data:`MAX_BYTES_PER_PIXEL`: a candidate whose run
    at ``size`` would need more than ``budget`` ranks after every one that fits.
    It is asked before the candidate's own trial runner loads, so at most two
    runners (the leader and the probe's) are held at once, and what a dropped
    runner held is handed back (:func:`release_memory`) before the next loads.
    A choice that counted memory is remembered apart from one that did not
    (the class key gets ``/memory``); the memory is kept with it and ranked
    again under the budget of the moment when it is reused.

    ``tileable``: the run will be cut into tiles that fit the budget (automatic
    tiling), so an engine over the budget is not ranked last but by the time of
    its own tiled run: the windows :func:`srzoo.runtime.pipeline.budget_tile` and
    :func:`~srzoo.runtime.pipeline.tiles` give for its memory per pixel (an engine
    that needs more memory runs more, smaller windows, each with the overlap), each
    timed on the candidate's line (a + b x pixels). Kept apart in the store
    (``/tiled``). Measured on realesrgan-x4plus, a 500x480 photo in tiles: the
    untiled predictions of the three engines were within 20 % and their order
    flipped between runs, while the tiled runs took 139 s (OpenCV, 6 windows),
    427 s (onnxruntime, 12) and 470 s (OpenVINO, 16).
    """
    requested = f"{engine}:auto" if engine else "auto"
    if entry.format == "interpolation":
        return Choice(backends.resolve("auto", entry), "static", cls), {}
    cands = backends.candidates(entry, engine) if cands is None else list(cands)
    if not _env_autotune() or len(cands) <= 1:
        return _first_that_loads(entry, engine, requested, cls, cands, load)
    target = tuple(size) if size else SIZE_CLASSES[cls][1:]
    px = int(target[0]) * int(target[1])
    counted = memory is not None and counts_memory(target, budget)
    tileable = bool(tileable and counted and budget)
    key = key_for(entry, cls + ("/memory" if counted else "") + ("/tiled" if tileable else ""), threads, cands)
    rec = _read().get(key)
    byname = {str(c): c for c in cands}
    if isinstance(rec, dict) and rec.get("backend") in byname:
        times_ms = {str(k): float(v) for k, v in dict(rec.get("times_ms", {})).items()
                    if isinstance(v, (int, float)) and str(k) in byname}
        mem = {str(k): int(v) for k, v in dict(rec.get("memory") or {}).items()
               if isinstance(v, (int, float))}
        best = rec["backend"]
        over: list[str] = []
        tiled = {str(k): int(v) for k, v in dict(rec.get("tiles") or {}).items()
                 if isinstance(v, int) and str(k) in times_ms}
        if counted and mem and times_ms:  # the budget may differ from the trial's: rank again
            over = sorted(k for k, v in mem.items() if budget and v > budget and k not in tiled)
            best = min(times_ms, key=lambda k: (k in over, times_ms[k]))
        c = byname[best]
        ch = Choice(dataclasses.replace(c, requested=requested, reason=""), "cached", cls,
                    times_ms, dict(rec.get("errors", {})), str(rec.get("trial", "")), mem, over, tiled)
        return _with_reason(ch), {}
    times: dict[str, float] = {}
    errors: dict[str, str] = dict(refused or {})
    loaded: dict[str, Any] = {}
    mem: dict[str, float] = {}
    hw: tuple[int, int] | None = None
    hw2: tuple[int, int] | None = None
    lines: dict[str, tuple[float, float]] = {}  # seconds = a + b x pixels, per candidate
    for c in cands:
        try:
            if counted:  # first, while only the leader is loaded: the probe loads its own
                assert memory is not None  # runner, dropped before this one's trial loads
                bpp = memory(c)
                if bpp is not None:
                    mem[str(c)] = bpp * px
                release_memory()
            runner = load(c)
            loaded[str(c)] = runner
            if hw is None:
                hw = trial_size(runner, target, channels)
                hw2 = None
                if hw[0] * hw[1] < px:
                    # both sides doubled (within the target): 4x the pixels, a wide enough
                    # base for the line. With one side doubled, LapSRN x4's trial under load
                    # (64x40 and 128x40 to 384x256) ranked three engines within 6 % whose runs
                    # differed 1.5x; at 4x the predictions were within 3-10 % and right
                    # (bench/results/engines_auto_loaded.md, docs/photos-and-memory.md)
                    # (a side already at the target stays: the other one, smaller, grows)
                    hw2 = (min(2 * hw[0], max(hw[0], int(target[0]))), min(2 * hw[1], max(hw[1], int(target[1]))))
            t1 = measure(runner, trial_input(runner, *hw, channels))
            if hw2 is None:
                times[str(c)] = 1000.0 * t1
                lines[str(c)] = (0.0, t1 / float(hw[0] * hw[1]))
            else:  # extrapolated: a + b * pixels through the two trial sizes
                t2 = measure(runner, trial_input(runner, *hw2, channels))
                b = max(t2 - t1, 0.0) / float(hw2[0] * hw2[1] - hw[0] * hw[1])
                a = max(t1 - b * hw[0] * hw[1], 0.0)
                times[str(c)] = 1000.0 * (a + b * px)
                lines[str(c)] = (a, b)
        except SrzooError as e:
            errors[str(c)] = str(e).splitlines()[0] if str(e) else type(e).__name__
        # keep only the best runner so far: every engine's pools held at once made a
        # first auto run of realesrgan-x4plus on a 500x480 photo peak at 2.6 GB
        lead = min(times, key=lambda k: (bool(budget) and mem.get(k, 0) > budget, times[k])) if times else None
        for k in [k for k in loaded if k != lead]:
            del loaded[k]
            if unload is not None:
                unload(byname[k])
        runner = None
        release_memory()
    if not times:
        raise SrzooError(f"{entry.name} x{entry.scale}: every backend failed its trial: "
                         + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    tiled: dict[str, int] = {}
    if tileable:  # over the budget untiled: its tiled run is what would run
        h, w = int(target[0]), int(target[1])
        ov = pipeline.default_overlap(entry)
        for k, need in mem.items():
            side = pipeline.budget_tile(h, w, need / px, int(budget or 0), ov) if k in lines else None
            if need <= (budget or 0) or side is None:
                continue
            wins = [(y1 - y0) * (x1 - x0) for _, (y0, y1, x0, x1) in pipeline.tiles(h, w, side, ov)]
            a, b = lines[k]
            times[k] = 1000.0 * sum(a + b * n for n in wins)
            tiled[k] = len(wins)
    over = {k for k, v in mem.items() if budget and v > budget and k not in tiled}
    best = min(times, key=lambda k: (k in over, times[k]))
    c = byname[best]
    trial = (f"{hw[1]}x{hw[0]}" if hw2 is None or hw is None else
             f"{hw[1]}x{hw[0]} and {hw2[1]}x{hw2[0]}, extrapolated to {target[1]}x{target[0]}")
    ch = Choice(dataclasses.replace(c, requested=requested, reason=""), "measured", cls,
                times, errors, trial)
    ch.memory = {k: int(v) for k, v in mem.items()}
    ch.over_budget = sorted(over)
    ch.tiles = tiled
    _write(key, {"backend": best, "times_ms": {k: round(v, 3) for k, v in times.items()},
                 "errors": errors, "trial": ch.trial, "class": cls, "model": entry.name,
                 "size": [int(target[0]), int(target[1])], "memory": ch.memory,
                 "over_budget": ch.over_budget, "tiles": tiled, "budget": budget,
                 "scale": entry.scale, "threads": threads,
                 "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return _with_reason(ch), loaded


def release_memory() -> None:
    """Free what dropped runners held: a garbage collection (engines' objects in
    reference cycles), then glibc's ``malloc_trim`` so the freed heap goes back
    to the system instead of staying in the process's resident memory (no-op
    where the C library has no ``malloc_trim``)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


_trim: list[Any] = []


def _malloc_trim() -> Any:
    if not _trim:
        fn = None
        try:
            import ctypes
            import ctypes.util

            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            fn = getattr(lib, "malloc_trim", None)
            if fn is not None:
                fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):  # pragma: no cover - not glibc
            fn = None
        _trim.append(fn)
    return _trim[0]


def _first_that_loads(entry: "ModelEntry", engine: str | None, requested: str, cls: str,
                      cands: list["ResolvedBackend"],
                      load: Callable[["ResolvedBackend"], Any]) -> tuple[Choice, dict[str, Any]]:
    """The static order without trials: the first candidate that loads (a
    conversion that fails moves on to the next engine); the first error when
    none does."""
    b = backends.static_auto(entry, engine, requested)  # raises when nothing is usable
    first: BaseException | None = None
    skipped = []
    for c in cands:
        try:
            runner = load(c)
        except SrzooError as e:
            first = first or e
            skipped.append(f"{c}: {str(e).splitlines()[0]}")
            continue
        why = "the only usable backend" if len(cands) == 1 else \
            ("static order, trials off (SRZOO_AUTOTUNE=0)" if not _env_autotune() else "static order")
        if skipped:
            why += "; skipped " + "; ".join(skipped)
        how = "only" if len(cands) == 1 else "static"
        return Choice(dataclasses.replace(c, requested=requested, reason=why), how, cls), \
            {str(c): runner}
    if first is not None:
        raise first
    return Choice(b, "static", cls), {}  # pragma: no cover - cands was empty


#: (height, width) of the two runs that measure memory per pixel: a warm-up, then the measured run
MEMORY_PROBES = ((64, 64), (128, 128))
#: what the measured run's growth per pixel is multiplied by (an engine's pool kept from the
#: warm-up hides up to a quarter of the need; see memory_per_pixel)
MEMORY_MARGIN = 1.25
#: the least memory per input pixel assumed (bytes): the input and output tensors
MIN_BYTES_PER_PIXEL = 64.0
#: bytes per network-input pixel no model is expected to exceed (realesrgan-x4plus
#: on opencv:cpu: ~10-25 KB): a run this size is checked against the budget only above it
MAX_BYTES_PER_PIXEL = 64 * 1024
#: memory measurements of this process, by key (also kept on disk when the cache exists)
_memory: dict[str, float] = {}


def _status() -> dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, in bytes; empty where unknown."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return out


def _reset_peak() -> bool:
    """Reset this process's peak resident memory to its current one (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_per_pixel(entry: "ModelEntry", backend: "ResolvedBackend", threads: int | None,
                     fresh: Callable[[], Any], channels: int) -> float | None:
    """Bytes of resident memory one run of ``runner`` takes per network-input pixel,
    measured once per model, backend and machine and remembered beside the
    autotune choices (in this process only while the cache folder does not
    exist); None where it cannot be measured (not Linux).

    ``fresh()`` loads a new runner (used only when nothing is remembered, then
    dropped). It runs once at the smaller :data:`MEMORY_PROBES` size (one-time
    allocations: packed weights, thread pools, an engine's first pool), then
    once at the larger, whose peak growth per pixel, times
    :data:`MEMORY_MARGIN`, is the answer. An engine that frees everything after
    a run grows by its whole need; one that keeps a pool grows by what the
    larger input needs beyond the smaller one, at least three quarters of it,
    which the margin covers. Measured on realesrgan-x4plus (KB per pixel,
    probe vs a 192x192 run): onnxruntime 8.4 vs 8.9, opencv 5.5 vs 6.3,
    openvino 16.5 vs 12.1. (Dividing the growth by the pixel difference
    instead, as before, over-estimated onnxruntime twice and OpenVINO four
    times: tiles of 64 px.)"""
    key = "memory-" + key_for(entry, "memory", threads, [backend])
    if key in _memory:
        return _memory[key]
    rec = _read().get(key)
    if isinstance(rec, dict) and isinstance(rec.get("bytes_per_pixel"), (int, float)):
        _memory[key] = float(rec["bytes_per_pixel"])
        return _memory[key]
    if not _status() or not _reset_peak():
        return None
    runner = fresh()
    grown = []
    for h, w in MEMORY_PROBES:
        x = trial_input(runner, h, w, channels)
        release_memory()
        before = _status().get("VmRSS", 0)
        _reset_peak()
        runner.run(x)
        grown.append(max(0, _status().get("VmHWM", 0) - before))
    del runner
    release_memory()
    h2, w2 = MEMORY_PROBES[1]
    bpp = round(max(MIN_BYTES_PER_PIXEL * channels, MEMORY_MARGIN * grown[1] / float(h2 * w2)), 1)
    _memory[key] = bpp
    if not cache.cache_dir().is_dir():  # a model that needs no cache (the built-in one) makes none
        return bpp
    _write(key, {"bytes_per_pixel": round(bpp, 1), "backend": str(backend), "model": entry.name,
                 "scale": entry.scale, "threads": threads, "probes": grown,
                 "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return bpp


def _with_reason(ch: Choice) -> Choice:
    b = ch.backend
    ch.backend = dataclasses.replace(b, reason=ch.reason)
    return ch


def recall(key: str) -> Any:
    """A record kept under ``key`` in the store (None when there is none)."""
    return _read().get(key)


def remember(key: str, value: dict[str, Any]) -> None:
    """Keep ``value`` under ``key`` in the store (e.g. a precision's measured
    quality, :mod:`srzoo.runtime.precision`); ``forget`` drops it with its model."""
    _write(key, value)


__all__ = ["Choice", "SIZE_CLASSES", "choose", "counts_memory", "forget", "machine_identity", "measure",
           "memory_per_pixel", "recall", "release_memory", "remember", "size_class"]
