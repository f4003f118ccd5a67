"""The benchmark harness behind ``srzoo bench`` and :func:`srzoo.bench`.

For every model x scale x backend x dataset it measures

* quality -- mean PSNR and SSIM over the images, under a named protocol;
* speed -- model load time, then per image ``warmup`` untimed and ``repeat``
  timed calls of the model alone (decoding, degradation and scoring are not
  timed): median and 95th percentile milliseconds per image, and output
  megapixels per second.

Protocols
---------
``matlab`` (default; the protocol of the SR literature, see REFERENCE.md):
    HR cropped to a multiple of the scale; LR = MATLAB-compatible bicubic
    :func:`srzoo.metrics.imresize` with antialiasing; PSNR/SSIM on the Y of
    MATLAB ``rgb2ycbcr`` (one-channel files as they are), ``scale`` pixels
    shaved from every border. Under this protocol the literature's "Bicubic"
    baseline is ``imresize(LR, scale)``, which is *not* the registry model
    ``bicubic`` (``cv2.INTER_CUBIC``, a = -0.75, what ``srzoo.upscale`` does).
    Both are reported: whenever ``bicubic`` is benchmarked under ``matlab``,
    the harness adds a row for the pseudo-model ``bicubic-matlab`` (backend
    ``numpy``: MATLAB ``imresize`` upsampling, the number to compare with
    published tables). ``bicubic-matlab`` may also be asked for by name.
``opencv`` (what OpenCV's ``dnn_superres_benchmark_quality`` sample does):
    HR cropped to a multiple of the scale, loaded as 3-channel BGR; LR =
    ``cv2.resize(HR, 1/scale)`` with its default ``INTER_LINEAR``; PSNR over
    all channels (``cv2.PSNR``) and SSIM averaged over channels, no shave.
    (OpenCV's quality module pads the SSIM window at the border; here the
    'valid' window is used in both protocols.)

Every result row carries the protocol name, and so does the report.

A one-channel image is fed to every model as 3-channel BGR (grey replicated)
and the output converted back with ``cv2.COLOR_BGR2GRAY`` before scoring, so
all models see the same input layout.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import metrics
from .errors import BackendUnavailable, ImageError, SrzooError

PROTOCOLS = {
    "matlab": ("modcrop; LR = MATLAB bicubic imresize (antialiased); PSNR/SSIM on Y of MATLAB "
               "rgb2ycbcr (grey files as they are), scale px shaved"),
    "opencv": ("modcrop; LR = cv2.resize INTER_LINEAR (OpenCV dnn_superres sample); PSNR/SSIM on "
               "all BGR channels, no shave"),
}
#: the protocol baseline that reproduces the literature's "Bicubic" row
MATLAB_BICUBIC = "bicubic-matlab"
IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}
DEFAULT_INTERPOLATION_SCALES = (2, 3, 4)

#: progress(done, total, description)
ProgressFn = Callable[[int, int, str], None]

CSV_FIELDS = ["protocol", "dataset", "model", "scale", "backend", "backend_resolved", "threads",
              "images", "psnr", "ssim", "ms_ssim", "ms_median", "ms_p95", "mpix_per_s", "load_ms", "repeat",
              "warmup", "status", "note"]


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------

@dataclass
class BenchReport:
    """Results of one :func:`bench` call; JSON-able via :meth:`to_dict`.

    ``results`` holds one dict per model x scale x backend x threads x dataset
    (keys: :data:`CSV_FIELDS`). ``status`` is ``"ok"``, ``"unavailable: <why>"``
    (the backend cannot run here) or ``"error: <what>"`` (the run failed).
    """

    protocol: str
    protocol_description: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        return {"srzoo_version": __version__, "created": self.created, "protocol": self.protocol,
                "protocol_description": self.protocol_description, "machine": self.machine,
                "settings": self.settings, "results": self.results, "skipped": self.skipped}

    @staticmethod
    def _write(text: str, path: str | os.PathLike[str] | None) -> str:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as JSON (non-finite numbers as ``null``); also written to ``path``."""
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v
        return self._write(json.dumps(clean(self.to_dict()), indent=2) + "\n", path)

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """One line per result row (columns :data:`CSV_FIELDS`); also written to ``path``."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in self.results:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
        return self._write(buf.getvalue(), path)

    def _ordered(self) -> list[dict[str, Any]]:
        """Rows grouped for reading: dataset, then scale, then run order (model, backend)."""
        ds_order = {d: i for i, d in enumerate(dict.fromkeys(r["dataset"] for r in self.results))}
        idx = {id(r): i for i, r in enumerate(self.results)}
        return sorted(self.results, key=lambda r: (ds_order[r["dataset"]], r["scale"], idx[id(r)]))

    def to_markdown(self, path: str | os.PathLike[str] | None = None) -> str:
        """A table for humans, with the protocol and machine above it."""
        m = self.machine
        s = self.settings
        lines = [
            f"Protocol: **{self.protocol}** ({self.protocol_description}).",
            "",
            f"Machine: {m.get('cpu', '?')}, {m.get('cores_usable', '?')} usable cores; OpenCV "
            f"{m.get('opencv_version', '?')}; Python {m.get('python', '?')}. Timing: "
            f"{s.get('warmup')} warm-up + {s.get('repeat')} timed runs per image, model call only.",
            "",
            "| dataset | model | scale | backend | threads | PSNR (dB) | SSIM | MS-SSIM | ms/img median | "
            "ms/img p95 | Mpix/s | load ms | status |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]

        reasons: dict[str, int] = {}

        def num(v: Any, fmt: str) -> str:
            return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)

        for r in self._ordered():
            backend = r["backend"]
            if r.get("backend_resolved") and r["backend_resolved"] != r["backend"]:
                backend += f" → {r['backend_resolved']}"
            status = str(r["status"]).replace("|", "\\|").replace("\n", " ")
            if status != "ok" and len(status) > 40:  # the full reason goes below the table
                kind, _, why = status.partition(": ")
                reasons.setdefault(why, len(reasons) + 1)
                status = f"{kind} [{reasons[why]}]"
            lines.append(
                f"| {r['dataset']} | {r['model']} | x{r['scale']} | {backend} | {r['threads']} | "
                f"{num(r.get('psnr'), '.2f')} | {num(r.get('ssim'), '.4f')} | {num(r.get('ms_ssim'), '.4f')} | "
                f"{num(r.get('ms_median'), '.2f')} | {num(r.get('ms_p95'), '.2f')} | "
                f"{num(r.get('mpix_per_s'), '.2f')} | {num(r.get('load_ms'), '.1f')} | {status} |")
        notes = sorted({r["note"] for r in self.results if r.get("note")})
        if notes or self.skipped or reasons:
            lines.append("")
        for why, n in reasons.items():
            lines.append(f"- [{n}] {why}")
        for n in notes:
            lines.append(f"- {n}")
        for sk in self.skipped:
            lines.append(f"- skipped: {sk}")
        return self._write("\n".join(lines) + "\n", path)

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Speed (ms per image, log scale) against PSNR, one panel per dataset x scale,
        one colour per model and one marker per backend. Needs matplotlib
        (``pip install 'srzoo[plot]'``)."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise SrzooError("--plot needs matplotlib: pip install 'srzoo[plot]'") from None
        rows = [r for r in self.results if r["status"] == "ok" and r.get("psnr") is not None
                and r.get("ms_median") and math.isfinite(r["psnr"])]
        panels = list(dict.fromkeys((r["dataset"], r["scale"]) for r in self._ordered() if r in rows))
        if not panels:
            raise SrzooError("nothing to plot: no successful results")
        ncol = min(3, len(panels))
        nrow = math.ceil(len(panels) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.2 * nrow), squeeze=False)
        models = sorted({r["model"] for r in rows})
        backends = sorted({r["backend"] + ("" if r["threads"] == "default" else f" t{r['threads']}")
                           for r in rows})
        cmap = plt.get_cmap("tab10")
        colours = {m: cmap(i % 10) for i, m in enumerate(models)}
        markers = dict(zip(backends, "osD^v<>ph*"))
        for ax, (ds, sc) in zip(axes.flat, panels):
            for r in rows:
                if (r["dataset"], r["scale"]) != (ds, sc):
                    continue
                b = r["backend"] + ("" if r["threads"] == "default" else f" t{r['threads']}")
                ax.scatter(r["ms_median"], r["psnr"], color=colours[r["model"]],
                           marker=markers.get(b, "o"), s=40)
                ax.annotate(r["model"], (r["ms_median"], r["psnr"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_title(f"{ds} x{sc}")
            ax.set_xlabel("ms per image (median, log)")
            ax.set_ylabel("PSNR (dB)")
            ax.grid(True, alpha=0.3)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        handles = [plt.Line2D([], [], color="grey", marker=markers[b], linestyle="", label=b)
                   for b in backends]
        fig.legend(handles=handles, loc="lower right", title="backend")
        fig.suptitle(f"srzoo bench, protocol {self.protocol}")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out


# ---------------------------------------------------------------------------
# machine information
# ---------------------------------------------------------------------------

def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
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
        from . import backends

        caps = backends.capabilities()
        info["opencv_capabilities"] = {k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict))
                                           else str(v)) for k, v in dict(caps).items()}
    except Exception as e:  # backends.py missing or failing must not sink the benchmark
        info["opencv_capabilities"] = {"error": f"{type(e).__name__}: {e}"}
    return info


# ---------------------------------------------------------------------------
# data: images, degradation, scoring
# ---------------------------------------------------------------------------

@dataclass
class _Sample:
    name: str
    hr: np.ndarray          # modcropped ground truth as scored
    lr: np.ndarray          # model input (always 3-channel BGR uint8)
    grey: bool              # hr is one-channel: convert the output back to grey


def _resolve_dataset(spec: str | os.PathLike[str]) -> tuple[str, Path]:
    p = Path(spec).expanduser()
    if p.is_dir():
        return p.resolve().name, p
    text = str(spec)
    if os.sep in text or "/" in text or p.suffix:
        raise SrzooError(f"dataset folder not found: {text}")
    from . import api

    return text.lower(), api.fetch_dataset(text)


def _load_images(folder: Path, protocol: str) -> list[tuple[str, np.ndarray]]:
    import cv2

    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SrzooError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    flag = cv2.IMREAD_UNCHANGED if protocol == "matlab" else cv2.IMREAD_COLOR
    out = []
    for f in files:
        img = cv2.imread(str(f), flag)
        if img is None:
            raise ImageError(f"cannot decode {f}")
        if img.dtype != np.uint8:
            raise ImageError(f"{f}: only 8-bit images can be benchmarked, got {img.dtype}")
        if img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        out.append((f.name, img))
    return out


def _degrade(hr: np.ndarray, scale: int, protocol: str) -> np.ndarray:
    import cv2

    h, w = hr.shape[:2]
    if protocol == "matlab":
        return metrics.imresize(hr, 1.0 / scale, output_shape=(h // scale, w // scale))
    return cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_LINEAR)


def _samples(images: list[tuple[str, np.ndarray]], scale: int, protocol: str) -> list[_Sample]:
    import cv2

    out = []
    for name, img in images:
        hr = metrics.modcrop(img, scale)
        if min(hr.shape[:2]) // scale < 4:
            raise ImageError(f"{name}: {img.shape[1]}x{img.shape[0]} is too small for x{scale}")
        lr = _degrade(hr, scale, protocol)
        grey = lr.ndim == 2
        if grey:
            lr = cv2.cvtColor(lr, cv2.COLOR_GRAY2BGR)
        out.append(_Sample(name, hr, np.ascontiguousarray(lr), grey))
    return out


def _ms_ssim_score(hr: np.ndarray, sr: np.ndarray, scale: int, protocol: str) -> float:
    """MS-SSIM (Wang et al. 2003) as the protocol scores SSIM; NaN for an image
    too small for five scales (more than 160 px per side after shaving)."""
    try:
        if protocol == "matlab":
            return metrics.ms_ssim(hr, sr, shave=scale, y_channel=True)
        return metrics.ms_ssim(hr, sr)
    except ValueError:
        return float("nan")


def _score(hr: np.ndarray, sr: np.ndarray, scale: int, protocol: str) -> tuple[float, float]:
    if protocol == "matlab":
        return (metrics.psnr(hr, sr, shave=scale, y_channel=True),
                metrics.ssim(hr, sr, shave=scale, y_channel=True))
    return metrics.psnr(hr, sr), metrics.ssim(hr, sr)


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
    from .api import RESOLVERS, get_model
    from .registry import default_registry

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


class _MatlabBicubic:
    """The protocol's bicubic baseline: ``imresize(LR, scale)`` (numpy)."""

    backend = "numpy"

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        return metrics.imresize(img, self.scale, output_shape=(h * self.scale, w * self.scale))


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
          progress: ProgressFn | None = None, per_image: bool = False) -> BenchReport:
    """Benchmark models for speed and quality; see the module docstring for the protocols.

    Args:
        models: names (``"espcn,fsrcnn,bicubic"`` or a list). ``bicubic-matlab``
            is the protocol's MATLAB-imresize baseline; it is added by itself
            whenever ``bicubic`` runs under protocol ``matlab``.
        scales: scales to run (a scale a model lacks is listed in
            ``report.skipped``); ``None``: every scale each model has
            (2, 3, 4 for interpolation methods).
        backends: e.g. ``"cpu,cuda,opencl"``. A backend that cannot run here
            gives rows with ``status = "unavailable: <reason>"``.
        dataset: a folder of HR images, a registry dataset name (``set5``,
            ``set14``: fetched and verified), or several of those.
        protocol: ``"matlab"`` or ``"opencv"``.
        repeat, warmup: timed and untimed model calls per image.
        threads: OpenCV thread settings to compare, e.g. ``[1, None]``
            (``None``/``"default"``: OpenCV's default). Restored afterwards.
        progress: called as ``progress(done, total, description)``.
        per_image: keep per-image PSNR/SSIM in each row (key ``per_image``).
    """
    import cv2

    from .upscaler import Upscaler

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
    from . import api

    for m, s in pairs:
        if m != MATLAB_BICUBIC:
            entry = api.get_model(m, s)  # registry names and catalogue names (omdb:ID)
            if entry.artifact is not None:
                api.fetch_entry(entry)

    runs = []
    for m, s in pairs:
        for b in (["numpy"] if m == MATLAB_BICUBIC else backend_list):
            for t in (thread_list if m != MATLAB_BICUBIC else [None]):
                for ds in loaded:
                    runs.append((m, s, b, t, ds))
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
                "status": "ok", "note": "",
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
                up = _MatlabBicubic(s) if m == MATLAB_BICUBIC else Upscaler(m, s, backend=b)
                row["load_ms"] = (time.perf_counter() - t0) * 1000.0
                row["backend_resolved"] = getattr(up, "backend", b)
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


__all__ = ["bench", "BenchReport", "PROTOCOLS", "MATLAB_BICUBIC", "machine_info", "parse_threads"]
