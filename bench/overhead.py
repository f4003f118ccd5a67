#!/usr/bin/env python
"""How much time srzoo adds over a bare ``cv2.dnn_superres`` loop.

For each case (default: ESPCN x4 and FSRCNN x2 on Set14 monarch), the same
cached model file is loaded once by ``DnnSuperResImpl`` and once by
``srzoo.Upscaler`` (CPU backend, no tiling), both are warmed up, then timed
alternately (bare, srzoo, bare, srzoo...) so drift hits both the same. The
overhead is the ratio of the medians. The outputs are also compared.

    SRZOO_MIRROR=../shared/models/opencv,../shared/datasets/Set14 \\
        python bench/overhead.py --repeat 30

This is a benchmark, not a test: run it on a quiet machine. Exit status 1 when
a median overhead is above ``--max-overhead`` percent.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import srzoo  # noqa: E402
from srzoo.hub.registry import default_registry  # noqa: E402

CASES = [("espcn", 4), ("fsrcnn", 2)]


def load_image(path: str | None) -> tuple[np.ndarray, str]:
    if path is None:
        folder = srzoo.fetch_dataset("set14", quiet=True)
        path = str(Path(folder) / "monarch.png")
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"overhead.py: error: {path}: cannot read image")
    return img, path


def bare_upsampler(name: str, scale: int) -> Any:
    """A bare ``cv2.dnn_superres`` object for a registry model, on OpenCV's CPU
    backend: what a tutorial's loop would run. On the ``.pb`` where this OpenCV
    reads it; on OpenCV 5.1 (no TensorFlow importer) on the ONNX ``srzoo export``
    writes, the file a 5.1 user of dnn_superres would load."""
    entry = default_registry().get(name, scale)
    path = srzoo.fetch(name, scale, quiet=True)
    if not hasattr(cv2.dnn, "readNetFromTensorflow") and entry.format == "tf-graphdef":
        import tempfile

        path = srzoo.export(name, scale, Path(tempfile.mkdtemp(prefix="srzoo-bench-")), quiet=True).path
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(path))
    sr.setModel(entry.io.algorithm, scale)
    from srzoo.convert.cvcompat import quiet_opencv

    with quiet_opencv():  # 5.1 warns that its new engine ignores targets (CPU is what we ask for)
        sr.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        sr.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return sr


def bench_case(name: str, scale: int, img: np.ndarray, repeat: int, warmup: int) -> dict:
    sr = bare_upsampler(name, scale)
    up = srzoo.Upscaler(name, scale, backend="opencv:cpu", tile=0)

    ref = sr.upsample(img)
    out = up(img)
    maxdiff = int(np.abs(ref.astype(np.int16) - out.astype(np.int16)).max())
    for _ in range(warmup):
        sr.upsample(img)
        up(img)
    bare: list[float] = []
    ours: list[float] = []
    for i in range(repeat):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            t0 = time.perf_counter()
            if which == 0:
                sr.upsample(img)
                bare.append(time.perf_counter() - t0)
            else:
                up(img)
                ours.append(time.perf_counter() - t0)
    mb, mo = statistics.median(bare), statistics.median(ours)
    return {"model": name, "scale": scale, "repeat": repeat, "bare_median_ms": mb * 1e3,
            "srzoo_median_ms": mo * 1e3, "overhead_pct": (mo / mb - 1.0) * 100.0,
            "bare_min_ms": min(bare) * 1e3, "srzoo_min_ms": min(ours) * 1e3,
            "max_abs_diff": maxdiff, "backend": up.backend}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=30, help="timed runs per side (default 30)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--image", help="image to upscale (default: Set14 monarch via the registry)")
    p.add_argument("--case", action="append", metavar="MODEL:SCALE",
                   help="model and scale (repeatable; default espcn:4 and fsrcnn:2)")
    p.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's)")
    p.add_argument("--max-overhead", type=float, default=5.0, help="percent (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.case] if args.case else CASES
    img, img_path = load_image(args.image)
    rows = [bench_case(n, s, img, args.repeat, args.warmup) for n, s in cases]
    meta = {"image": img_path, "size": f"{img.shape[1]}x{img.shape[0]}", "opencv": cv2.__version__,
            "threads": cv2.getNumThreads(), "python": platform.python_version(),
            "machine": platform.machine(), "srzoo": srzoo.__version__}
    if args.json:
        print(json.dumps({"meta": meta, "results": rows}, indent=2))
    else:
        print(" ".join(f"{k}={v}" for k, v in meta.items()))
        print(f"{'case':12} {'bare median':>12} {'srzoo median':>13} {'overhead':>9} {'max diff':>9}")
        for r in rows:
            print(f"{r['model'] + ' x' + str(r['scale']):12} {r['bare_median_ms']:10.1f}ms "
                  f"{r['srzoo_median_ms']:11.1f}ms {r['overhead_pct']:+8.1f}% {r['max_abs_diff']:9d}")
    worst = max(r["overhead_pct"] for r in rows)
    return 1 if worst > args.max_overhead else 0


if __name__ == "__main__":
    sys.exit(main())
