"""DAT's and RGT's published shapes converted by srzoo: conversion-time check and speed per megapixel
on each engine, side by side in one run.

Random networks of the published shapes (DAT-light, DAT-S, DAT-2, DAT, RGT-S, RGT; weights do not
change the speed) come from spandrel's modules (needs torch, spandrel 0.4.2 and einops:
``pip install --no-deps spandrel==0.4.2 einops``); srzoo's converter builds the ONNX, then
the NumPy reference (the check a machine without PyTorch runs at conversion time) is timed
on its probe, and ONNX Runtime (CPU), OpenVINO (CPU, f32 as srzoo's engine compiles it) and
cv2.dnn, where it can import the graph, run the same input:

    python bench/dat_speed.py [--size 256] [--repeat 2] [--models light,s,2,full,rgt-s,rgt]

Prints a Markdown table: seconds per input megapixel (median of ``--repeat`` runs after
one warm-up) and each engine's time relative to ONNX Runtime. Numbers depend on the
machine and its load; compare the ratios, not the absolute times, between machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import arch_speed  # noqa: E402
from srzoo.convert import arch as archs  # noqa: E402
from srzoo.convert import reference  # noqa: E402
from srzoo.convert.check import build  # noqa: E402
from srzoo.convert.onnxbuild import probe  # noqa: E402

#: spandrel's DAT keyword arguments of the published models (the DAT repository's options)
MODELS = {
    "light": ("DAT-light x4", dict(embed_dim=60, split_size=[8, 32], depth=[18], num_heads=[6], expansion_factor=2.0,
                                   upscale=4, upsampler="pixelshuffledirect", resi_connection="3conv")),
    "s": ("DAT-S x4", dict(embed_dim=180, split_size=[8, 16], depth=[6] * 6, num_heads=[6] * 6,
                           expansion_factor=2.0, upscale=4)),
    "2": ("DAT-2 x4", dict(embed_dim=180, split_size=[8, 32], depth=[6] * 6, num_heads=[6] * 6,
                           expansion_factor=2.0, upscale=4)),
    "full": ("DAT x4", dict(embed_dim=180, split_size=[8, 32], depth=[6] * 6, num_heads=[6] * 6,
                            expansion_factor=4.0, upscale=4)),
    "rgt-s": ("RGT-S x4", dict(embed_dim=180, split_size=[8, 32], depth=[6] * 6, num_heads=[6] * 6, mlp_ratio=2.0,
                                upscale=4)),
    "rgt": ("RGT x4", dict(embed_dim=180, split_size=[8, 32], depth=[6] * 8, num_heads=[6] * 8, mlp_ratio=2.0,
                            upscale=4)),
}


def state_dict(kw: dict, module: str = "dat") -> dict[str, np.ndarray]:
    import torch

    import spandrel_src

    class DropPath(torch.nn.Module):
        def __init__(self, p: float = 0.0) -> None:
            super().__init__()

        def forward(self, x):
            return x
    if module == "rgt":
        net = spandrel_src.load("RGT/__arch/rgt.py", DropPath=DropPath)["RGT"]
    else:
        net = spandrel_src.load("DAT/__arch/DAT.py", DropPath=DropPath, trunc_normal_=torch.nn.init.trunc_normal_)["DAT"]
    return {k: v.numpy() for k, v in net(**kw).eval().state_dict().items()}


def engines(onnx_bytes: bytes, path: Path) -> dict:
    """bench/arch_speed.py's runners (f32 everywhere), named as srzoo names its backends."""
    names = {"onnxruntime": "onnxruntime:cpu", "openvino": "openvino:cpu", "cv2.dnn": "opencv:cpu"}
    return {names[k]: v for k, v in arch_speed.engines(onnx_bytes, path).items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args(argv)
    x = np.random.default_rng(1).random((1, 3, args.size, args.size), dtype=np.float32)
    mp = args.size * args.size / 1e6
    import cv2

    print(f"input {args.size}x{args.size}; OpenCV {cv2.__version__}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; seconds per input megapixel (median of {args.repeat}), ratio to ONNX Runtime\n")
    print("| model | params | numpy check (32x32 probe) | engine | s/MP | vs onnxruntime |")
    print("|---|---:|---:|---|---:|---:|")
    for key in args.models.split(","):
        name, kw = MODELS[key]
        sd = state_dict(kw, "rgt" if key.startswith("rgt") else "dat")
        a = archs.detect(sd)
        onnx_bytes, params = build(a.forward, sd, a, a.name)
        ops = reference.NumpyOps()
        t = time.perf_counter()
        ops.output(a.forward(ops, sd, a, ops.input(probe(3, 32))))
        check_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            path.write_bytes(onnx_bytes)
            base = None
            for eng, fn in engines(onnx_bytes, path).items():
                head = f"| {name} | {params / 1e6:.2f} M | {check_s:.1f} s | {eng} |"
                if isinstance(fn, str):
                    print(f"{head} {fn} | |", flush=True)
                    continue
                fn(x)  # warm-up
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    fn(x)
                    times.append(time.perf_counter() - t)
                s = statistics.median(times) / mp
                base = base or s
                print(f"{head} {s:.1f} | {s / base:.2f} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
