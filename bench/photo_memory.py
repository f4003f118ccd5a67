#!/usr/bin/env python
"""Peak memory, time, tiling and exactness of one real photo on every engine, and
what ``auto`` chooses for it, measured side by side in one run.

The image is Set14 ``baboon.png`` (500x480, a real photograph of fur and skin,
the hardest texture of the set) from ``../shared/datasets``; ``--size WxH``
takes a centred crop of it instead (for a quick run). Each case runs in a fresh
Python process (peaks do not mix), against one model cache primed first (the
ncnn -> ONNX conversion is not timed):

* ``untiled``: ``onnxruntime:cpu`` with ``memory=0`` (no budget, one run): the
  reference every other row is compared with;
* one row per engine with the default memory budget (``SRZOO_MEMORY`` unset);
* ``auto`` with measured trials on (``SRZOO_AUTOTUNE=1``) and an empty
  autotune store: its seconds include its trials and memory measurements
  (first use), then the same again with the choice remembered (``auto, cached``).

Printed per row: peak RSS of the whole process (VmHWM: model, image and run),
seconds of the ``upscale`` call, the tiles (count, network-input size WxH, how
many distinct input shapes, overlap), the backend,
and the largest / mean difference from the untiled result (grey levels).

    SRZOO_CACHE_DIR=$(mktemp -d) SRZOO_MIRROR=../shared/models/esrgan-ncnn \\
        python bench/photo_memory.py --out bench/results/photo_memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRZOO_SHARED", ROOT.parent / "shared"))

CHILD = r"""
import json, sys, time
import cv2, numpy as np
import srzoo
from srzoo.runtime import pipeline
image, model, scale, backend, memory, out = sys.argv[1:7]
img = cv2.imread(image)
up = srzoo.Upscaler(model, int(scale), backend=backend)
shapes = []
process = pipeline.ModelPipeline.process
def counting(self, color, want):  # the network inputs that really run (not the alpha pass)
    shapes.append(color.shape[:2])
    return process(self, color, want)
pipeline.ModelPipeline.process = counting
ticks = []
t0 = time.perf_counter()
res = up.upscale(img, memory=None if memory == "default" else memory,
                 progress=lambda done, total: ticks.append(total))
secs = time.perf_counter() - t0
np.save(out, res)
status = {k: int(v.split()[0]) * 1024 for k, v in
          (ln.split(":", 1) for ln in open("/proc/self/status")) if k in ("VmHWM", "VmRSS")}
print(json.dumps({"backend": up.backend, "seconds": secs, "peak": status["VmHWM"],
                  "tiles": ticks[-1] if ticks else 1,
                  "tile": None if len(shapes) < 2 else "x".join(str(v) for v in shapes[0][::-1]),
                  "shapes": len(set(shapes)),
                  "overlap": pipeline.default_overlap(up.entry),
                  "bpp": {k: v for k, v in up._bpp.items()},
                  "reason": up.backend_reason}))
"""


def child(args, image: Path, backend: str, memory: str, out: Path, env: dict) -> dict:
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, str(image), args.model, str(args.scale),
                            backend, memory, str(out)], capture_output=True, text=True,
                           timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"over {args.timeout} s"}
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:200]}
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    rec["wall"] = time.perf_counter() - t0
    return rec


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:  # pragma: no cover
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="realesrgan-x4plus-ncnn")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--size", default=None, help="WxH centred crop of the photo (default: all 500x480)")
    ap.add_argument("--engines", default="onnxruntime:cpu,openvino:cpu,opencv:cpu")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per case")
    ap.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    args = ap.parse_args()
    import cv2
    import numpy as np

    img = cv2.imread(str(SHARED / "datasets" / "Set14" / "baboon.png"))
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        img = img[y0:y0 + h, x0:x0 + w]
    tmp = Path(tempfile.mkdtemp(prefix="photo_memory-"))
    image = tmp / "photo.png"
    cv2.imwrite(str(image), img)
    env = dict(os.environ)
    env.pop("SRZOO_MEMORY", None)
    env.pop("SRZOO_BACKEND", None)
    env["SRZOO_AUTOTUNE"] = "0"
    store = Path(env.get("SRZOO_CACHE_DIR", tmp / "cache"))
    env["SRZOO_CACHE_DIR"] = str(store)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load0 = loadavg()
    print(f"{args.model} x{args.scale}, Set14 baboon {img.shape[1]}x{img.shape[0]}, "
          f"{os.cpu_count()} CPUs, load {load0}", flush=True)
    # prime: fetch and convert once on a 16x16 crop (every engine loads the converted file)
    cv2.imwrite(str(tmp / "tiny.png"), img[:16, :16])
    child(args, tmp / "tiny.png", "onnxruntime:cpu", "0", tmp / "tiny.npy", env)
    # auto first after the reference: on a busy machine a run cut short still holds
    # auto's choice next to the engine it chose
    engines = args.engines.split(",")
    cases = [("untiled", "onnxruntime:cpu", "0", {}), ("auto", "auto", "default", {"SRZOO_AUTOTUNE": "1"})]
    cases += [(e, e, "default", {}) for e in engines]
    cases += [("auto, cached", "auto", "default", {"SRZOO_AUTOTUNE": "1"})]
    rows = []
    ref = None
    for name, backend, memory, extra in cases:
        if name == "auto":
            (store / "autotune.json").unlink(missing_ok=True)  # first use: trials and memory
        out = tmp / f"{len(rows)}.npy"
        rec = child(args, image, backend, memory, out, dict(env, **extra))
        rec.update(case=name, memory=memory, load=loadavg())
        if "error" not in rec:
            res = np.load(out).astype(np.int16)
            if ref is None:
                ref = res
            d = np.abs(res - ref)
            rec["maxdiff"], rec["meandiff"] = int(d.max()), float(d.mean())
            out.unlink()
        rows.append(rec)
        print(fmt(rec), flush=True)
        if args.out:  # after every row: a long run stopped half-way keeps what it measured
            report(args, img, started, load0, rows)
    print(report(args, img, started, load0, rows))
    return 0


def report(args, img, started: str, load0: str, rows: list[dict]) -> str:
    lines = [f"{args.model} x{args.scale} on Set14 baboon ({img.shape[1]}x{img.shape[0]}), "
             f"{os.cpu_count()} CPUs, started {started}, load average at start {load0}",
             "", "| case | backend | memory | peak RSS | seconds | tiles | vs untiled (max / mean) | load after |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [row(r) for r in rows]
    lines += ["", "auto's reasons:"] + [f"* {r['case']}: {r.get('reason', r.get('error'))}"
                                        for r in rows if r["case"].startswith("auto")]
    lines += ["", "command: " + " ".join(["python", "bench/photo_memory.py"] + sys.argv[1:])]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out + ".md").write_text(text)
        Path(args.out + ".json").write_text(json.dumps(rows, indent=1) + "\n")
    return text


def fmt(r: dict) -> str:
    if "error" in r:
        return f"{r['case']:14} error: {r['error']}"
    return (f"{r['case']:14} {r['backend']:16} peak {r['peak'] / 2**20:6.0f} MB  {r['seconds']:7.1f} s  "
            f"tiles {r['tiles']} (input {r['tile']}, {r.get('shapes')} shape(s), overlap {r['overlap']})  "
            f"max diff {r['maxdiff']} mean {r['meandiff']:.3f}  load {r['load']}")


def row(r: dict) -> str:
    if "error" in r:
        return f"| {r['case']} | | {r['memory']} | | | | {r['error']} | {r['load']} |"
    tiles = "1 (untiled)" if r["tiles"] == 1 else \
        f"{r['tiles']}, inputs {r['tile']} ({r.get('shapes')} shape), overlap {r['overlap']}"
    return (f"| {r['case']} | {r['backend']} | {r['memory']} | {r['peak'] / 2**20:.0f} MB | "
            f"{r['seconds']:.1f} | {tiles} | {r['maxdiff']} / {r['meandiff']:.3f} | {r['load']} |")


if __name__ == "__main__":
    sys.exit(main())
