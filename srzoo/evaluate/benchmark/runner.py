"""Running a benchmark: planning the runs, timing them, machine information."""

from __future__ import annotations

import os
import platform
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from srzoo.errors import BackendUnavailable, SrzooError
from srzoo.evaluate.benchmark.protocols import (
    DEFAULT_INTERPOLATION_SCALES,
    MATLAB_BICUBIC,
    PROTOCOLS,
    _load_images,
    _MatlabBicubic,
    _ms_ssim_score,
    _resolve_dataset,
    _Sample,
    _samples,
    _score,
)
from srzoo.evaluate.benchmark.report import BenchReport, ProgressFn
from srzoo.hub import api
from srzoo.hub.api import RESOLVERS, get_model
from srzoo.hub.registry import default_registry
from srzoo.runtime import backends, upscaler

# ---------------------------------------------------------------------------
# machine information
# ---------------------------------------------------------------------------

def _cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU, cores, Python/numpy/OpenCV versions and OpenCV's build capabilities."""
    import cv2

    try:
        usable = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        usable = os.cpu_count()
    info: dict[str, Any] = {
        "cpu": _cpu_name(), "cores": os.cpu_count(), "cores_usable": usable,
        "platform": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "opencv_version": cv2.__version__,
        "opencv_threads_default": cv2.getNumThreads(),
    }
    try:
        caps = backends.capabilities()
        info["opencv_capabilities"] = {k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict))
                                           else str(v)) for k, v in dict(caps).items()}
    except Exception as e:  # backends.py missing or failing must not sink the benchmark
        info["opencv_capabilities"] = {"error": f"{type(e).__name__}: {e}"}
    return info


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def _split(values: str | Iterable[Any] | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split(",")
    return [str(v).strip() for v in values if str(v).strip()]


def parse_threads(threads: int | str | Iterable[int | str | None] | None) -> list[int | None]:
    """``None``/``"default"`` -> OpenCV's default; ints -> cv2.setNumThreads(n)."""
    if threads is None:
        return [None]
    items: Iterable[Any] = [threads] if isinstance(threads, int) else (
        threads.split(",") if isinstance(threads, str) else threads)
    out: list[int | None] = []
    for t in items:
        if t is None or str(t).strip().lower() in ("default", "auto", ""):
            val = None
        else:
            try:
                val = int(str(t).strip())
            except ValueError:
                raise SrzooError(f"threads must be a positive integer or 'default', got {t!r}") from None
            if val < 1:
                raise SrzooError(f"threads must be a positive integer or 'default', got {t!r}")
        if val not in out:
            out.append(val)
    return out or [None]


def _plan(models: list[str], scales: list[int] | None) -> tuple[list[tuple[str, int]], list[str]]:
    """(model, scale) pairs to run, and what was skipped (a scale a model lacks)."""

    reg = default_registry()
    pairs: list[tuple[str, int]] = []
    skipped: list[str] = []
    for name in models:
        key = name.lower()
        if key == MATLAB_BICUBIC:
            have: list[int] | None = None
        elif key.split(":", 1)[0] in RESOLVERS and ":" in key:  # a catalogue name, e.g. omdb:ID
            have = [get_model(name).scale]
        else:
            reg.get(key)  # UnknownModel with suggestions
            have = reg.scales(key) or None  # None: interpolation, any scale
        wanted = scales if scales else (have or list(DEFAULT_INTERPOLATION_SCALES))
        for s in wanted:
            if have is not None and s not in have:
                skipped.append(f"{key} x{s} (no such model; it has "
                               f"{', '.join(f'x{h}' for h in have)})")
                continue
            if (key, s) not in pairs:
                pairs.append((key, s))
    return pairs, skipped


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def _run_one(up: Callable[[np.ndarray], np.ndarray], samples: list[_Sample], scale: int,
             protocol: str, repeat: int, warmup: int, tick: Callable[[], None]) -> dict[str, Any]:
    import cv2

    times: list[float] = []
    image_ms: list[float] = []
    out_pixels = 0.0
    psnrs: list[float] = []
    ssims: list[float] = []
    ms_ssims: list[float] = []
    for smp in samples:
        for _ in range(warmup):
            up(smp.lr)
        sr = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            sr = up(smp.lr)
            times.append(time.perf_counter() - t0)
        image_ms.append(1000.0 * float(np.median(times[-repeat:])))
        assert sr is not None
        sr = np.asarray(sr)
        want = (smp.lr.shape[0] * scale, smp.lr.shape[1] * scale)
        if sr.shape[:2] != want:
            raise SrzooError(f"{smp.name}: output is {sr.shape[1]}x{sr.shape[0]}, expected "
                             f"{want[1]}x{want[0]}")
        out_pixels += want[0] * want[1] * repeat
        if smp.grey:
            sr = cv2.cvtColor(sr, cv2.COLOR_BGR2GRAY) if sr.ndim == 3 else sr
        p, s = _score(smp.hr, sr, scale, protocol)
        psnrs.append(p)
        ssims.append(s)
        ms_ssims.append(_ms_ssim_score(smp.hr, sr, scale, protocol))
        tick()
    ms = [t * 1000.0 for t in times]
    return {"images": len(samples), "psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
            "ms_ssim": float(np.nanmean(ms_ssims)) if np.isfinite(ms_ssims).any() else None,
            "ms_median": _percentile(ms, 50), "ms_p95": _percentile(ms, 95),
            "mpix_per_s": out_pixels / 1e6 / sum(times) if sum(times) > 0 else None,
            "per_image": [{"image": smp.name, "psnr": p, "ssim": s, "ms_median": t}
                          for smp, p, s, t in zip(samples, psnrs, ssims, image_ms)]}


def bench(models: str | Sequence[str], scales: int | Sequence[int] | None = None,
          backends: str | Sequence[str] = ("cpu",),
          dataset: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = "set5", *,
          protocol: str = "matlab", repeat: int = 5, warmup: int = 1,
          threads: int | str | Sequence[int | str | None] | None = None,
          progress: ProgressFn | None = None, per_image: bool = False,
          precisions: str | Sequence[str | None] | None = None) -> BenchReport:
    """Benchmark models for speed and quality; see the module docstring for the protocols.

    Args:
        models: names (``"espcn,fsrcnn,bicubic"`` or a list). ``bicubic-matlab``
            is the protocol's MATLAB-imresize baseline; it is added by itself
            whenever ``bicubic`` runs under protocol ``matlab``.
        scales: scales to run (a scale a model lacks is listed in
            ``report.skipped``); ``None``: every scale each model has
            (2, 3, 4 for interpolation methods).
        backends: e.g. ``"auto,opencv:cpu,onnxruntime:cpu,openvino:cpu,onnxruntime:cuda"``.
            A backend that cannot run here gives rows with
            ``status = "unavailable: <reason>"``; each row says which backend
            ran (``backend_resolved``) and why (``backend_reason``).
        dataset: a folder of HR images, a registry dataset name (``set5``,
            ``set14``: fetched and verified), or several of those.
        protocol: ``"matlab"`` or ``"opencv"``.
        repeat, warmup: timed and untimed model calls per image.
        threads: thread counts to compare, e.g. ``[1, None]`` (``None``/``"default"``:
            each engine's default), given to every engine the same way
            (``Upscaler(threads=...)``) and to OpenCV. Restored afterwards.
        progress: called as ``progress(done, total, description)``.
        per_image: keep per-image PSNR/SSIM in each row (key ``per_image``).
        precisions: precisions to compare on every backend, e.g. ``"fp32,bf16"``
            or ``"auto"`` (``None``: the default, fp32); a row's backend then
            reads ``openvino:cpu@bf16``, and ``precision`` says what ran. A
            precision a backend cannot run, or whose quality is over budget,
            gives an ``unavailable`` row with the reason and the numbers.
    """
    import cv2

    if protocol not in PROTOCOLS:
        raise SrzooError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if int(repeat) < 1 or int(warmup) < 0:
        raise SrzooError(f"repeat must be >= 1 and warmup >= 0 (got repeat={repeat}, warmup={warmup})")
    repeat, warmup = int(repeat), int(warmup)
    model_names = [m.lower() for m in _split(models)]
    if not model_names:
        raise SrzooError("no models to benchmark")
    scale_list = None if scales is None else ([int(scales)] if isinstance(scales, int) else
                                             [int(s) for s in _split(scales)])
    if scale_list is not None and (not scale_list or min(scale_list) < 2):
        raise SrzooError(f"scales must be integers >= 2, got {scales!r}")
    backend_list = [b.lower() for b in _split(backends)] or ["cpu"]
    thread_list = parse_threads(threads)
    precision_list: list[str | None] = [None] if precisions is None else \
        [p.strip().lower() if isinstance(p, str) else p for p in
         (_split(precisions) if isinstance(precisions, str) else precisions)] or [None]
    datasets = [dataset] if isinstance(dataset, (str, os.PathLike)) else list(dataset)
    if not datasets:
        raise SrzooError("no dataset given")

    pairs, skipped = _plan(model_names, scale_list)
    if protocol == "matlab" and any(m == "bicubic" for m, _ in pairs):
        for s in sorted({s for m, s in pairs if m == "bicubic"}):
            if (MATLAB_BICUBIC, s) not in pairs:
                pairs.append((MATLAB_BICUBIC, s))
    elif protocol != "matlab" and any(m == MATLAB_BICUBIC for m, _ in pairs):
        pass  # allowed: MATLAB upsampling of an OpenCV-degraded LR, reported as such

    resolved = [_resolve_dataset(d) for d in datasets]
    loaded = {name: _load_images(folder, protocol) for name, folder in resolved}

    # fetch model files before anything is timed (download time is not load time)

    for m, s in pairs:
        if m != MATLAB_BICUBIC:
            entry = api.get_model(m, s)  # registry names and catalogue names (omdb:ID)
            if entry.artifact is not None:
                api.fetch_entry(entry)

    runs = []
    for m, s in pairs:
        for b in (["numpy"] if m == MATLAB_BICUBIC else backend_list):
            for p in ([None] if m == MATLAB_BICUBIC else precision_list):
                for t in (thread_list if m != MATLAB_BICUBIC else [None]):
                    for ds in loaded:
                        runs.append((m, s, b if p is None else f"{b}@{p}", t, ds))
    total = sum(len(loaded[r[4]]) for r in runs)
    done = 0
    desc = ""

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total, desc)

    report = BenchReport(
        protocol=protocol, protocol_description=PROTOCOLS[protocol], machine=machine_info(),
        settings={"models": model_names, "scales": scale_list, "backends": backend_list,
                  "threads": ["default" if t is None else t for t in thread_list],
                  "precisions": ["default" if p is None else p for p in precision_list],
                  "datasets": {name: str(folder) for name, folder in resolved},
                  "repeat": repeat, "warmup": warmup},
        skipped=skipped)
    sample_cache: dict[tuple[str, int], list[_Sample]] = {}
    default_threads = cv2.getNumThreads()
    try:
        for m, s, b, t, ds in runs:
            desc = f"{ds} {m} x{s} {b}" + ("" if t is None else f" t{t}")
            tick(0)
            start = done
            key = (ds, s)
            if key not in sample_cache:
                sample_cache = {k: v for k, v in sample_cache.items() if k[1] == s}
                sample_cache[key] = _samples(loaded[ds], s, protocol)
            samples = sample_cache[key]
            row: dict[str, Any] = {
                "protocol": protocol, "dataset": ds, "model": m, "scale": s, "backend": b,
                "backend_resolved": None, "threads": "default" if t is None else t,
                "images": 0, "psnr": None, "ssim": None, "ms_ssim": None, "ms_median": None, "ms_p95": None,
                "mpix_per_s": None, "load_ms": None, "repeat": repeat, "warmup": warmup,
                "status": "ok", "note": "", "backend_reason": "",
            }
            if m == MATLAB_BICUBIC:
                row["note"] = (f"{MATLAB_BICUBIC}: MATLAB imresize bicubic upsampling (numpy), the "
                               "'Bicubic' baseline of published tables; registry model 'bicubic' is "
                               "cv2.INTER_CUBIC")
            elif m == "bicubic" and protocol == "matlab":
                row["note"] = ("bicubic: registry model (cv2.INTER_CUBIC, a=-0.75); the literature's "
                               f"baseline is row {MATLAB_BICUBIC}")
            cv2.setNumThreads(default_threads if t is None else t)
            try:
                t0 = time.perf_counter()
                up: Callable[[np.ndarray], np.ndarray]
                name, _, prec = b.partition("@")
                up = _MatlabBicubic(s) if m == MATLAB_BICUBIC else \
                    upscaler.Upscaler(m, s, backend=name, threads=t, **({"precision": prec} if prec else {}))
                row["load_ms"] = (time.perf_counter() - t0) * 1000.0
                row["precision"] = getattr(up, "precision", "fp32")
                row["backend_resolved"] = getattr(up, "backend", b) + \
                    ("" if row["precision"] == "fp32" else f"@{row['precision']}")
                row["backend_reason"] = getattr(up, "backend_reason", "")
                row.update(_run_one(up, samples, s, protocol, repeat, warmup, tick=tick))
                if not per_image:
                    row.pop("per_image", None)
            except BackendUnavailable as e:
                row["status"] = f"unavailable: {e}"
            except (cv2.error, SrzooError, MemoryError) as e:
                msg = str(e).strip().splitlines()
                row["status"] = f"error: {type(e).__name__}: {msg[-1] if msg else ''}"
            tick(start + len(samples) - done)  # the rest of a run that stopped early
            report.results.append(row)
    finally:
        cv2.setNumThreads(default_threads)
    return report


__all__ = ["bench", "machine_info", "parse_threads"]
