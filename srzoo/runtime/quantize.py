"""INT8 by post-training static quantization (``precision="int8"``).

The fp32 ONNX model is quantized by ONNX Runtime's own tool
(``onnxruntime.quantization.quantize_static``): QDQ format (QuantizeLinear /
DequantizeLinear pairs around each Conv, which ONNX Runtime fuses into int8
kernels and OpenVINO reads as FakeQuantize and runs in int8 on VNNI/AMX),
weights int8 per output channel (SR networks' filters differ widely in range),
activations uint8 calibrated with min/max over the calibration images. The
first and last convolutions stay fp32: they read and write pixels, and
quantizing them cost the built-in x4 model 0.08 dB on Set5 where keeping them
costs 0.02 (measured; the middle layers hold nearly all the work).

Calibration uses training-style images only: crops of **T91** (the training
set of SRCNN/FSRCNN/ESPCN), fetched like every srzoo file (the registry's
``t91`` dataset: the cache, ``SRZOO_MIRROR``, then its pinned URLs, checked
against its sha256). The evaluation sets (Set5, Set14) are refused as
calibration sets. Each crop is shrunk with the MATLAB bicubic of the SR
protocol and goes through the model's own pre-processing
(:class:`~srzoo.runtime.pipeline.ModelPipeline`, recorded at the network
input), so the ranges are those the network sees in use.

The quantized model is cached as ``<cache>/quantized/<key>/model.onnx`` with
``record.json`` (what was calibrated on, with which tool); ``key`` hashes the
fp32 model file's sha256, the calibration set (name, files, crops) and the
tool versions, so a new model file, calibration or onnxruntime makes a new
one and a cached one is used as is. Whether the int8 model is good enough is
not decided here: :mod:`srzoo.runtime.precision` measures it against fp32 on
its probe like every reduced precision, and refuses it over budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import cv2
import numpy as np

from srzoo import fsutil
from srzoo.errors import PrecisionError, SrzooError
from srzoo.hub import cache, download, registry
from srzoo.resample import imresize
from srzoo.runtime.pipeline import ModelPipeline

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry

#: the registry dataset calibration crops come from (a training set)
CALIBRATION_SET = "t91"
#: sets srzoo evaluates on: never calibrated on
EVALUATION_SETS = frozenset({"set5", "set14", "bsd100", "urban100", "manga109"})
#: images used (spread evenly over the set, in name order) and the low-resolution crop side
CROPS = 12
CROP_LR = 32
#: bumped when the recipe (format, options, crops) changes: part of the cache key
RECIPE_VERSION = 1
#: what quantize_static is asked for (recorded)
RECIPE: dict[str, Any] = {"format": "QDQ", "weights": "QInt8 per-channel", "activations": "QUInt8",
                          "calibration": "MinMax", "fp32_layers": "first and last conv",
                          "crops": CROPS, "crop_lr": CROP_LR,
                          "version": RECIPE_VERSION}


def root() -> Path:
    """``<cache>/quantized``."""
    return cache.cache_dir() / "quantized"


def tool_versions() -> dict[str, str]:
    """The quantization tool's versions (``{}`` when it is not installed). Read
    from the installed packages' metadata: nothing is imported (a cached int8
    model is used without loading onnxruntime's quantization modules)."""
    try:
        if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
            return {}
        return {"onnxruntime": _dist_version("onnxruntime"), "onnx": _dist_version("onnx")}
    except (ImportError, ValueError):
        return {}


def _dist_version(module: str) -> str:
    """The version of the distribution that provides ``module`` (onnxruntime-gpu... too)."""
    for dist in (module, f"{module}-gpu", f"{module}-openvino", f"{module}-directml"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def calibration_files(name: str = CALIBRATION_SET) -> list[Path]:
    """The calibration images: ``CROPS`` files of the registry dataset ``name``
    spread evenly over it (in name order), each fetched and verified like a
    model file (the cache, ``SRZOO_MIRROR``, its URLs); never an evaluation set."""
    if name.lower() in EVALUATION_SETS:
        raise PrecisionError(f"{name} is an evaluation set: int8 is calibrated on training images "
                             f"only (the default {CALIBRATION_SET!r})")
    try:
        arts = sorted(registry.default_registry().dataset(name).files, key=lambda a: a.file)
        if not arts:
            raise PrecisionError(f"the {name} calibration set lists no images")
        step = max(len(arts) / CROPS, 1.0)
        return [download.fetch_artifact(arts[int(i * step)], quiet=True, what=f"dataset {name}")
                for i in range(min(CROPS, len(arts)))]
    except PrecisionError:
        raise
    except SrzooError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PrecisionError(
            f"int8 needs the {name.upper()} calibration images, which are not available ({first}); "
            f"fetch them once with srzoo.fetch_dataset({name!r}) where there is a network (or set "
            "SRZOO_MIRROR), or use precision='fp32'/'bf16'") from None


def crops(files: list[Path], scale: int) -> Iterator[np.ndarray]:
    """One low-resolution BGR uint8 crop per file: a centred high-resolution
    crop (``CROP_LR × scale`` a side, at most the image) shrunk by ``scale``
    with the MATLAB bicubic."""
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise PrecisionError(f"{p}: calibration image cannot be read; delete it and try again")
        side = min(CROP_LR * scale, img.shape[0] // scale * scale, img.shape[1] // scale * scale)
        y0, x0 = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        hr = img[y0:y0 + side, x0:x0 + side].astype(np.float64)
        yield np.clip(np.round(imresize(hr, 1.0 / scale)), 0, 255).astype(np.uint8)


class _Recording:
    """A tensor runner that keeps a copy of each network input it runs."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner
        self.backend = runner.backend
        self.input_name = runner.input_name
        self.input_layout = runner.input_layout
        self.output_names = runner.output_names
        self.blobs: list[np.ndarray] = []

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        self.blobs.append(np.array(blob, np.float32, copy=True))
        return self._runner.run(blob)


def calibration_blobs(entry: "ModelEntry", fp32_runner: Any, files: list[Path],
                      threads: int | None = None) -> tuple[str, list[np.ndarray]]:
    """(input name, the network inputs the model's pipeline makes from the calibration crops)."""
    rec = _Recording(fp32_runner)
    pipe = ModelPipeline(entry, rec, threads)
    s = int(entry.scale or 1)
    for lr in crops(files, s):
        pipe.run(lr, (s,), tile=0)
    return rec.input_name, rec.blobs


def _kept_fp32(path: Path) -> list[str]:
    """The nodes left in fp32 (``RECIPE["fp32_layers"]``): the first and last
    convolutions, where SR networks read and write pixels and int8's error
    shows most."""
    import onnx

    convs = [n.name for n in onnx.load(str(path), load_external_data=False).graph.node
             if n.op_type in ("Conv", "ConvTranspose") and n.name]
    return sorted({convs[0], convs[-1]}) if convs else []


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Without onnxruntime's advice to pre-process (logged on the root logger)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def describe() -> dict[str, Any]:
    """What an int8 model is made with (kept with its quality record)."""
    return {"calibration": CALIBRATION_SET, "recipe": RECIPE, "tools": tool_versions()}


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over recorded blobs."""

    def __init__(self, name: str, blobs: list[np.ndarray]) -> None:
        self._it = iter([{name: b} for b in blobs])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax
        pass


def cache_key(model_sha256: str, files: list[Path], versions: dict[str, str]) -> str:
    blob = {"model": model_sha256, "calibration": CALIBRATION_SET,
            "files": [(p.name, os.path.getsize(p)) for p in files], "recipe": RECIPE, "tools": versions}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]


def read_record(folder: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads((folder / "record.json").read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def cached(name: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """The int8 models in the cache (folder, record), of the model ``name`` or
    all; only folders holding a record of ours count (``srzoo cache ls``)."""
    top = root()
    if not top.is_dir():
        return []
    found = []
    for folder in sorted(top.iterdir()):
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        rec = read_record(folder)
        if rec is None or not isinstance(rec.get("model"), str):
            continue
        if name is None or rec["model"] == name.lower():
            found.append((folder, rec))
    return found


def problems(folder: Path, rec: dict[str, Any]) -> list[str]:
    """What is wrong with a cached int8 model (``[]``: its file matches its record)."""
    out = folder / "model.onnx"
    if not out.is_file():
        return ["model.onnx is missing"]
    if rec.get("sha256") != _sha256(out):
        return ["model.onnx does not match the sha256 in its record.json"]
    return []


def remove(name: str | None = None) -> list[Path]:
    """Delete the cached int8 models of ``name`` (all when None; then also the
    unfinished ``.tmp`` folders left by a killed process). Returns the folders
    removed; only folders of ours (with our record, or our temporary names) go."""
    targets = [folder for folder, _ in cached(name)]
    top = root()
    if name is None and top.is_dir():
        targets += [p for p in top.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")
                    and p.is_dir() and not p.is_symlink()]
    removed = []
    for folder in targets:
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise cache.os_error(e, folder, "delete") from None
        removed.append(folder)
    return removed


#: quantizations made by this process (cache misses), for tests and benches
made = 0


def quantized(entry: "ModelEntry", path: Path, fp32_runner: Callable[[], Any],
              threads: int | None = None) -> Path:
    """The int8 (QDQ) ONNX model of ``path`` (an fp32 ONNX of ``entry``),
    made once and then taken from the cache. ``fp32_runner()`` loads the fp32
    model (its inputs on the calibration crops are recorded)."""
    global made
    versions = tool_versions()
    if not versions:
        raise PrecisionError("int8 needs onnxruntime's quantization tool: pip install "
                             "'srzoo[onnxruntime]' (onnxruntime and onnx)")
    files = calibration_files()
    model_sha = _sha256(path)
    folder = root() / f"{entry.name}-x{entry.scale}-{cache_key(model_sha, files, versions)}"
    out = folder / "model.onnx"
    rec = read_record(folder)
    if rec is not None and out.is_file() and rec.get("sha256") == _sha256(out):
        return out
    name, blobs = calibration_blobs(entry, fp32_runner(), files, threads)
    cache.ensure_dir(root())
    tmp = root() / f".{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        t0 = time.perf_counter()
        with _quiet():
            quantize_static(str(path), str(tmp / "model.onnx"), _Reader(name, blobs),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax,
                            nodes_to_exclude=_kept_fp32(path),
                            extra_options={"CalibTensorRangeSymmetric": False})
        record = {"model": entry.name, "scale": entry.scale, "source": str(path),
                  "source_sha256": model_sha, "calibration": CALIBRATION_SET,
                  "calibration_files": [p.name for p in files], "recipe": RECIPE, "tools": versions,
                  "seconds": round(time.perf_counter() - t0, 2),
                  "sha256": _sha256(tmp / "model.onnx"),
                  "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        fsutil.atomic_write(tmp / "record.json", json.dumps(record, indent=1))
    except PrecisionError:
        raise
    except OSError as e:
        raise cache.os_error(e, tmp, "writing the int8 model") from None
    except Exception as e:  # onnxruntime's own exceptions: a model it cannot quantize
        text = str(e).strip().splitlines()
        raise PrecisionError(f"{entry.name} x{entry.scale}: onnxruntime cannot quantize it to int8 "
                             f"({text[-1] if text else type(e).__name__}); use precision='fp32' "
                             "or 'bf16'") from None
    else:
        _install(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    made += 1
    return out


def _install(tmp: Path, folder: Path) -> None:
    """Rename the finished ``tmp`` folder to ``folder`` (only ever a folder of
    ours with no valid record is replaced; another process may have finished
    the same model first, which is as good)."""
    rec = read_record(folder)
    done = folder / "model.onnx"
    if rec is not None and done.is_file() and rec.get("sha256") == _sha256(done):
        return
    shutil.rmtree(folder, ignore_errors=True)
    try:
        os.replace(tmp, folder)
    except OSError as e:
        rec = read_record(folder)
        if rec is None or not (folder / "model.onnx").is_file():
            raise cache.os_error(e, folder, "installing the int8 model") from None


__all__ = ["CALIBRATION_SET", "CROPS", "CROP_LR", "EVALUATION_SETS", "RECIPE", "cached", "calibration_blobs",
           "calibration_files", "crops", "describe", "problems", "quantized", "remove", "root",
           "tool_versions"]
