"""Reduced precision as a measured choice: ``precision="fp32" | "bf16" | "fp16" | "int8" | "auto"``.

Each engine says which precisions it can run a target in here (the optional
``precisions(target)`` of :class:`~srzoo.runtime.engines.base.Engine`: the
target's own first) and maps the one asked for (``ResolvedBackend.precision``)
to its own switch: OpenVINO's ``INFERENCE_PRECISION_HINT`` (bf16 on CPUs with
AVX512_BF16/AMX, f16 on GPUs), TensorRT's FP16 flag, an FP16 model on CUDA,
OpenCV's ``*_FP16`` DNN targets. This module stays engine-neutral.

Quality is checked, not assumed. Before a reduced precision is used for a
model, the model runs in it and in fp32 on srzoo's probe image (a synthetic,
deterministic 192×192 picture: smooth colour fields, hard-edged shapes, text
and noise; no evaluation set), through the whole pipeline, shrunk first with
the MATLAB bicubic of the SR protocol. What is measured (:class:`Quality`):

* the PSNR of the output against fp32's output, and their largest difference;
* for PSNR-oriented models, the PSNR change against the probe's original
  (how much of the model's accuracy the precision costs);
* NaN/inf in the network's output, and flat (black) outputs where fp32 has
  detail (FP16 overflow).

The budget (documented defaults, settable): PSNR-oriented models may lose at
most ``SRZOO_PRECISION_MAX_DROP`` = 0.05 dB; GAN models (manifest tag
``gan``; their PSNR says little) must give an output within
``SRZOO_PRECISION_MIN_PSNR`` = 40 dB of fp32's; NaN/inf or a black frame is
always refused. A precision over budget is never chosen by ``auto`` and is
refused with the measured numbers (:class:`srzoo.errors.PrecisionError`) when
asked for by name. Measurements are kept in the autotune store
(``<cache>/autotune.json``, :mod:`srzoo.runtime.autotune`), keyed by model
file, backend, precision, engine versions and machine, so each is made once.

The default is ``fp32`` (``SRZOO_PRECISION``): results then stay identical on
every engine and machine, and nothing is measured at load time. ``auto`` is
the opt-in that picks the fastest precision within budget (it times the
in-budget candidates in :mod:`srzoo.runtime.autotune`'s trial).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import cv2
import numpy as np

from srzoo import config
from srzoo.errors import ArgumentError, BackendUnavailable, ModelLoadError, PrecisionError, SrzooError
from srzoo.resample import imresize
from srzoo.runtime import autotune, backends, quantize
from srzoo.runtime.engines import engines, get_engine
from srzoo.runtime.engines.base import ResolvedBackend
from srzoo.runtime.pipeline import ModelPipeline

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry

#: every precision name, widest first
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "int8")
#: what ``precision=`` accepts
CHOICES: tuple[str, ...] = PRECISIONS + ("auto",)
#: high-resolution side of the probe image (a multiple of 2, 3, 4 and 8)
PROBE_SIZE = 192
#: bumped when the probe or the measurement changes (part of the record key)
PROBE_VERSION = 1


# --------------------------------------------------------------------------- names
def requested(precision: Any = None) -> str:
    """The precision asked for: ``precision`` checked, or ``SRZOO_PRECISION``
    when None; "" for the default fp32, which means "the target's own" (so
    ``opencv:cuda_fp16`` keeps its fp16)."""
    if precision is None:
        value = str(config.get("SRZOO_PRECISION"))
        return "" if value == "fp32" else value
    if not isinstance(precision, str) or precision.strip().lower() not in CHOICES:
        raise ArgumentError(f"precision must be one of {', '.join(CHOICES)}, got {precision!r:.40}")
    return precision.strip().lower()


def supported(backend: ResolvedBackend) -> tuple[str, ...]:
    """The precisions ``backend``'s engine can run its target in here, the
    target's own first (engines without ``precisions()``: fp32 only)."""
    get_engine(backend.engine)  # an unknown engine: a clear error
    return backends.precisions(backend.engine, backend.target)


def effective(backend: ResolvedBackend) -> str:
    """The precision ``backend`` runs in."""
    return backend.precision or supported(backend)[0]


def at(backend: ResolvedBackend, precision: str) -> ResolvedBackend:
    """``backend`` set to run in ``precision`` ("" : its own); raises
    :class:`PrecisionError` when its engine cannot do that here."""
    have = supported(backend)
    if not precision or precision == have[0]:
        return dataclasses.replace(backend, precision="")
    if precision not in have:
        raise PrecisionError(
            f"backend {backend.name} cannot run in {precision} here: it runs "
            f"{', '.join(have)} on {get_engine(backend.engine).device(backend.target)}; ask for "
            f"precision={have[0]!r} or 'auto', or another backend (see `srzoo info`)")
    return dataclasses.replace(backend, precision=precision)


def reference(entry: "ModelEntry", backend: ResolvedBackend) -> ResolvedBackend:
    """The fp32 run ``backend``'s reduced precision is compared with: the same
    engine and target in fp32, else the same engine's CPU, else ``auto``'s static pick."""
    if "fp32" in supported(backend):
        return at(backend, "fp32")
    cpu = ResolvedBackend(backend.engine, "cpu", "fp32 reference")
    if "cpu" in get_engine(backend.engine).targets and not backends.why_not(backend.engine, "cpu") \
            and supported(cpu)[0] == "fp32":
        return cpu
    return backends.static_auto(entry)


# --------------------------------------------------------------------------- the probe
def probe_image(size: int = PROBE_SIZE) -> np.ndarray:
    """srzoo's probe: a deterministic size×size BGR uint8 picture with smooth
    colour fields, hard-edged shapes, thin lines, text and sensor-like noise."""
    rng = np.random.default_rng(20260)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    field = np.zeros((size, size, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(0.3, 2.5, 2)
            field[..., c] += np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
    field = (field - field.min()) / max(float(field.max() - field.min()), 1e-6) * 150 + 50
    img = np.ascontiguousarray(field.astype(np.uint8))
    for _ in range(5):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = (int(v) for v in rng.integers(0, size - size // 4, 2))
        x1, y1 = x0 + int(rng.integers(size // 10, size // 4)), y0 + int(rng.integers(size // 10, size // 4))
        cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
        cv2.circle(img, (int(rng.integers(0, size)), int(rng.integers(0, size))),
                   int(rng.integers(size // 16, size // 6)), color[::-1], -1, cv2.LINE_AA)
    for i in range(8):
        cv2.line(img, (size // 2 + 3 * i, size // 2), (size - 1, size // 2 + 6 * i), (235, 235, 235), 1,
                 cv2.LINE_AA)
    cv2.putText(img, "srzoo 2026", (6, size - 12), cv2.FONT_HERSHEY_SIMPLEX, size / 400, (250, 245, 240),
                1, cv2.LINE_AA)
    noisy = img.astype(np.float32) + rng.normal(0, 2.0, img.shape).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


class _Counting:
    """A tensor runner that counts the NaN/inf values its network returns."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner
        self.backend = runner.backend
        self.input_name = runner.input_name
        self.input_layout = runner.input_layout
        self.output_names = runner.output_names
        self.nonfinite = 0

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        outs = self._runner.run(blob)
        self.nonfinite += sum(int(np.size(o) - np.count_nonzero(np.isfinite(o))) for o in outs)
        return outs


@dataclass
class Quality:
    """A reduced precision measured against fp32 on the probe image."""

    backend: str  #: e.g. ``openvino:cpu@bf16``
    precision: str
    reference: str  #: the fp32 run it was compared with
    kind: str  #: ``psnr`` (PSNR-oriented model) or ``gan``
    psnr_vs_fp32: float  #: dB, PSNR of the output against fp32's output (inf: identical)
    psnr_drop: float  #: dB, fp32's PSNR to the probe minus this one's (< 0: better)
    max_diff: float  #: largest difference to fp32's output, fraction of full scale
    nonfinite: int = 0  #: NaN/inf values in the network output
    flat: bool = False  #: a flat (black) output where fp32's has detail
    probe: str = ""

    def problem(self, max_drop: float | None = None, min_psnr: float | None = None) -> str:
        """Why this is over budget, with the measured numbers ("" when within)."""
        max_drop = float(config.get("SRZOO_PRECISION_MAX_DROP")) if max_drop is None else max_drop
        min_psnr = float(config.get("SRZOO_PRECISION_MIN_PSNR")) if min_psnr is None else min_psnr
        if self.nonfinite:
            return f"{self.nonfinite} NaN/inf values in the network output (overflow)"
        if self.flat:
            return "a flat (black) output where fp32's has detail (overflow)"
        if self.kind == "gan" and self.psnr_vs_fp32 < min_psnr:
            return (f"output PSNR against fp32 {self.psnr_vs_fp32:.2f} dB < {min_psnr:g} dB "
                    "(budget of GAN models, SRZOO_PRECISION_MIN_PSNR)")
        if self.kind == "psnr" and self.psnr_drop > max_drop:
            return (f"PSNR drop {self.psnr_drop:.3f} dB > {max_drop:g} dB (budget of PSNR-oriented "
                    "models, SRZOO_PRECISION_MAX_DROP)")
        return ""

    @property
    def ok(self) -> bool:
        return not self.problem()

    def summary(self) -> str:
        """The measured numbers, in words."""
        vs = "identical" if math.isinf(self.psnr_vs_fp32) else f"{self.psnr_vs_fp32:.1f} dB"
        return (f"{self.precision} on {self.backend.split('@')[0]} against fp32 "
                f"({self.reference}) on {self.probe}: output {vs}, max diff {self.max_diff:.4f}, "
                f"PSNR change {-self.psnr_drop:+.3f} dB")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "Quality | None":
        if not isinstance(d, dict):
            return None
        try:
            return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})
        except TypeError:
            return None


def kind_of(entry: "ModelEntry") -> str:
    """``gan`` for GAN-trained models (manifest tag), else ``psnr``."""
    return "gan" if "gan" in {str(t).lower() for t in (entry.tags or ())} else "psnr"


def _probe_lr(s: int) -> tuple[np.ndarray, np.ndarray]:
    hr = probe_image()
    return hr, np.clip(np.round(imresize(hr.astype(np.float64), 1.0 / s)), 0, 255).astype(np.uint8)


def probe_run(entry: "ModelEntry", runner: Any, threads: int | None = None) -> tuple[np.ndarray, int]:
    """``runner``'s output on the probe (through the whole pipeline) and the
    NaN/inf values its network returned."""
    s = int(entry.scale or 1)
    _, lr = _probe_lr(s)
    c = _Counting(runner)
    with np.errstate(invalid="ignore", over="ignore"):
        out = ModelPipeline(entry, c, threads).run(lr, (s,), tile=0)[s]
    return out, c.nonfinite


def compare(entry: "ModelEntry", backend: ResolvedBackend, got: np.ndarray, nonfinite: int,
            reference: ResolvedBackend, ref: np.ndarray) -> Quality:
    """The :class:`Quality` of ``backend``'s probe output ``got`` against fp32's ``ref``."""
    s = int(entry.scale or 1)
    hr, _ = _probe_lr(s)
    if ref.shape != hr.shape or got.shape != hr.shape:  # pragma: no cover - a pipeline gives x``scale``
        raise SrzooError(f"{entry.name} x{s}: probe output {got.shape} is not {hr.shape}")
    core = (slice(s, -s), slice(s, -s))  # shave the border, as the SR protocol does
    flat = float(got.std()) < 2.0 and float(ref.std()) > 8.0
    return Quality(backend=str(backend), precision=effective(backend), reference=str(reference),
                   kind=kind_of(entry), psnr_vs_fp32=_psnr(got, ref),
                   psnr_drop=_psnr(ref[core], hr[core]) - _psnr(got[core], hr[core]),
                   max_diff=float(np.abs(got.astype(np.int16) - ref.astype(np.int16)).max()) / 255.0,
                   nonfinite=nonfinite, flat=flat,
                   probe=f"probe v{PROBE_VERSION} {PROBE_SIZE // s}x{PROBE_SIZE // s}")


def measure(entry: "ModelEntry", runner: Any, ref_runner: Any, threads: int | None = None) -> Quality:
    """Run ``runner`` (reduced precision) and ``ref_runner`` (fp32) on the probe
    image through the whole pipeline and compare (see :class:`Quality`)."""
    ref, _ = probe_run(entry, ref_runner, threads)
    got, bad = probe_run(entry, runner, threads)
    return compare(entry, runner.backend, got, bad, ref_runner.backend, ref)


def record_key(entry: "ModelEntry", backend: ResolvedBackend, ref: ResolvedBackend) -> str:
    """Where the measurement of ``backend`` for ``entry`` is kept in the autotune store."""
    engs = engines()
    blob = {"what": "precision", "model": entry.name, "scale": entry.scale,
            "file": entry.sha256 or entry.file or "", "backend": str(backend), "reference": str(ref),
            "versions": {n: engs[n].versions() for n in sorted({backend.engine, ref.engine})},
            "device": engs[backend.engine].device(backend.target),
            "machine": autotune.machine_identity(), "probe": PROBE_VERSION}
    if effective(backend) == "int8":  # a new calibration, recipe or tool makes another model
        blob["quantize"] = quantize.describe()
    return "precision-" + hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]


def checked(entry: "ModelEntry", backend: ResolvedBackend, load: Callable[[ResolvedBackend], Any],
            threads: int | None = None,
            release: Callable[[ResolvedBackend], None] | None = None) -> Quality:
    """``backend``'s precision measured for ``entry`` (once; then from the store).
    ``load(backend)`` returns a loaded tensor runner; ``release(backend)``, when
    given, unloads the fp32 reference once its probe output is kept (so the two
    networks are not in memory together)."""
    ref = reference(entry, backend)
    key = record_key(entry, backend, ref)
    rec = autotune.recall(key)
    q = Quality.from_dict(rec.get("quality") if isinstance(rec, dict) else None)
    if q is not None:
        return q
    ref_out, _ = probe_run(entry, load(ref), threads)
    if release is not None:
        release(ref)
    got, bad = probe_run(entry, load(backend), threads)
    q = compare(entry, backend, got, bad, ref, ref_out)
    rec = {"model": entry.name, "scale": entry.scale, "quality": q.as_dict(),
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if q.precision == "int8":
        rec["quantize"] = quantize.describe()
    autotune.remember(key, rec)
    return q


def candidates(entry: "ModelEntry", bases: Sequence[ResolvedBackend], want: str,
               load: Callable[[ResolvedBackend], Any], threads: int | None = None,
               release: Callable[[ResolvedBackend], None] | None = None
               ) -> tuple[list[ResolvedBackend], dict[str, str], dict[str, Quality]]:
    """The (backend, precision) pairs to choose among for ``want``, each reduced
    one measured first: (in budget, refused with why, measurements).

    ``want="auto"``: every precision each base runs, those over budget
    dropped; a named precision: every base that runs it, and
    :class:`PrecisionError` with the measured numbers when none is within
    budget (or none runs it); "": each base in its own precision.
    """
    out: list[ResolvedBackend] = []
    refused: dict[str, str] = {}
    measured: dict[str, Quality] = {}
    unsupported: list[str] = []
    for base in bases:
        have = supported(base)
        if want == "auto":
            precs: Sequence[str] = have
        elif want:
            if want not in have:
                unsupported.append(f"{base.name} runs {', '.join(have)}")
                continue
            precs = (want,)
        else:
            precs = (have[0],)
        for p in precs:
            b = at(base, p)
            if effective(b) != "fp32":
                try:
                    q = checked(entry, b, load, threads, release if want != "auto" else None)
                except PrecisionError as e:  # int8 without its calibration images or tool
                    if want != "auto":
                        raise
                    refused[str(b)] = f"could not be made: {str(e).splitlines()[0]}"
                    continue
                except (BackendUnavailable, ModelLoadError) as e:  # the engine failed, not the file
                    refused[str(b)] = f"could not be measured: {str(e).splitlines()[0]}"
                    continue
                measured[str(b)] = q
                if not q.ok:
                    refused[str(b)] = f"{q.problem()}; {q.summary()}"
                    continue
            out.append(b)
    if not out and want != "auto":
        what = f"{entry.name} x{entry.scale}"
        if refused:
            raise PrecisionError(f"{what}: {want or 'the asked precision'} is refused: "
                                 + "; ".join(f"{k}: {v}" for k, v in refused.items())
                                 + "; use precision='fp32' (or 'auto', which keeps to the budget)")
        raise PrecisionError(f"{what}: no backend runs {want} here ({'; '.join(unsupported) or 'none'}); "
                             "use precision='fp32' or 'auto', or another backend (see `srzoo info`)")
    return out, refused, measured


__all__ = ["CHOICES", "PRECISIONS", "PROBE_SIZE", "Quality", "at", "candidates", "checked", "compare",
           "effective", "kind_of", "measure", "probe_image", "probe_run", "record_key", "reference",
           "requested", "supported"]
