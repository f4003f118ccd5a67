"""Speed per megapixel of the converted new architectures on each engine, side by side.

Builds the ONNX of a randomly initialised network of the published shape (weights do
not change the speed) with srzoo's converter code, then runs it on ONNX Runtime (CPU),
OpenVINO (CPU) and cv2.dnn where each can import it, on the same input, in one run:

    python bench/arch_speed.py [--size 128] [--repeat 3] [--only omnisr]

Prints a Markdown table: seconds per input megapixel (median of ``--repeat`` runs after
one warm-up) and each engine's time relative to ONNX Runtime. Numbers depend on the
machine and its load; compare the ratios, not the absolute times, between machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srzoo.convert import arch as archs  # noqa: E402
from srzoo.convert.check import build  # noqa: E402


def realplksr_sd(dim: int = 64, blocks: int = 28, kernel: int = 17, scale: int = 4, dysample: bool = False,
                 layer_norm: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """A RealPLKSR state dict with the published default shape (spandrel's key names)."""
    rng = np.random.default_rng(seed)

    def conv(cout: int, cin: int, k: int) -> np.ndarray:
        return (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)

    sd: dict[str, np.ndarray] = {"feats.0.weight": conv(dim, 3, 3), "feats.0.bias": np.zeros(dim, np.float32)}
    pdim = dim // 4
    for i in range(1, blocks + 1):
        p = f"feats.{i}"
        sd.update({f"{p}.channel_mixer.0.weight": conv(2 * dim, dim, 3),
                   f"{p}.channel_mixer.0.bias": np.zeros(2 * dim, np.float32),
                   f"{p}.channel_mixer.2.weight": conv(dim, 2 * dim, 3),
                   f"{p}.channel_mixer.2.bias": np.zeros(dim, np.float32),
                   f"{p}.lk.conv.weight": conv(pdim, pdim, kernel), f"{p}.lk.conv.bias": np.zeros(pdim, np.float32),
                   f"{p}.attn.f.0.weight": conv(dim, dim, 3), f"{p}.attn.f.0.bias": np.zeros(dim, np.float32),
                   f"{p}.refine.weight": conv(dim, dim, 1), f"{p}.refine.bias": np.zeros(dim, np.float32)})
        norm = "layer_norm" if layer_norm else "norm"
        sd[f"{p}.{norm}.weight"] = np.ones(dim, np.float32)
        sd[f"{p}.{norm}.bias"] = np.zeros(dim, np.float32)
    c = 3 * scale * scale
    sd[f"feats.{blocks + 2}.weight"] = conv(c, dim, 3)
    sd[f"feats.{blocks + 2}.bias"] = np.zeros(c, np.float32)
    if dysample:
        groups = 3 if scale % 2 else 4
        n = 2 * groups * scale * scale
        sd.update({"to_img.offset.weight": conv(n, c, 1), "to_img.offset.bias": np.zeros(n, np.float32),
                   "to_img.scope.weight": conv(n, c, 1), "to_img.init_pos": np.zeros((1, n, 1, 1), np.float32),
                   "to_img.end_conv.weight": conv(3, c, 1), "to_img.end_conv.bias": np.zeros(3, np.float32)})
    return sd


def omnisr_sd(num_feat: int = 64, res_num: int = 5, window: int = 8, scale: int = 4,
              seed: int = 0) -> dict[str, np.ndarray]:
    """An OmniSR state dict of the published shape (64nf, 5 groups of one block, window 8)."""
    from srzoo.convert.arch import omnisr

    rng = np.random.default_rng(seed)
    pr = {"num_feat": num_feat, "res_num": res_num, "block_num": 1, "window": window, "pe": True, "bias": True}
    sd = {}
    for k, shape in omnisr.layout(pr, 3, 3 * scale * scale).items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        sd[k] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return sd


MODELS = {
    "realplksr 64dim 28nb 17ks x4 (GroupNorm, pixel shuffle)": lambda: realplksr_sd(),
    "realplksr 64dim 28nb 17ks x4 (LayerNorm, DySample)": lambda: realplksr_sd(dysample=True, layer_norm=True),
    "omnisr 64nf 5nr w8 x4": lambda: omnisr_sd(),
}


def engines(onnx_bytes: bytes, path: Path) -> dict:
    out = {}
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        out["onnxruntime"] = lambda x: sess.run(None, {"input": x})[0]
    except ImportError:
        pass
    try:
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU")
        out["openvino"] = lambda x: compiled([x])[0]
    except ImportError:
        pass
    import cv2

    try:
        net = cv2.dnn.readNetFromONNX(str(path))

        def run_cv(x: np.ndarray) -> np.ndarray:
            net.setInput(x)
            return net.forward()
        out["cv2.dnn"] = run_cv
    except cv2.error as e:
        out["cv2.dnn"] = f"cannot import ({str(e).strip().splitlines()[-1][:60]})"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="only the models whose name contains this (e.g. omnisr)")
    args = ap.parse_args(argv)
    x = np.random.default_rng(1).random((1, 3, args.size, args.size), dtype=np.float32)
    mp = args.size * args.size / 1e6
    import cv2

    print(f"input {args.size}x{args.size}; OpenCV {cv2.__version__}; seconds per input megapixel "
          f"(median of {args.repeat}), ratio to ONNX Runtime\n")
    print("| model | engine | s/MP | vs onnxruntime |")
    print("|---|---|---:|---:|")
    for name, make in MODELS.items():
        if args.only not in name:
            continue
        sd = make()
        a = archs.detect(sd)
        onnx_bytes, _ = build(a.forward, sd, a, a.name)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            path.write_bytes(onnx_bytes)
            base = None
            for eng, fn in engines(onnx_bytes, path).items():
                if isinstance(fn, str):
                    print(f"| {name} | {eng} | {fn} | |")
                    continue
                fn(x)  # warm-up
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    fn(x)
                    times.append(time.perf_counter() - t)
                s = statistics.median(times) / mp
                base = base or s
                print(f"| {name} | {eng} | {s:.1f} | {s / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
