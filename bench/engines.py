#!/usr/bin/env python
"""srzoo's engines against a bare ``cv2.dnn_superres`` loop, in one run.

Three measurements, all in one process, same image and thread count, the
contenders alternated (bare, srzoo backend 1, srzoo backend 2, bare...) so
drift and other load hit them alike:

1. end to end: ``srzoo.upscale(img, model, scale, backend=B)`` against
   ``DnnSuperResImpl.upsample(img)`` on Set14 monarch (768x512; LapSRN on a
   384x256 crop to keep the run short): median ms, spread, speed-up;
2. pre/post share: srzoo end to end against the same loaded runner's bare
   network call on the same tensor (ESPCN x4 by default);
3. achieved GFLOP/s of the network (2 x multiply-adds of the convolutions,
   counted from the graph by srzoo.convert.graphdef) against this CPU's peak:
   the theoretical one from lscpu (cores x FMA units x SIMD lanes x 2 x clock)
   and a measured float32 GEMM (numpy) with the same threads.

    python bench/engines.py                       # auto, 2 threads, 15 repeats
    python bench/engines.py --backends auto,opencv:cpu,onnxruntime:cpu,openvino:cpu
    python bench/engines.py --backends onnxruntime:cuda,onnxruntime:tensorrt,opencv:cuda

Backends that cannot run here are rows that say why. Model files come from
the srzoo cache (``SRZOO_MIRROR=../shared/models/opencv,../shared/datasets/Set14``
serves them locally). This is a benchmark, not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import srzoo  # noqa: E402
from srzoo import backends  # noqa: E402
from overhead import bare_upsampler  # noqa: E402  (bench/ is on sys.path when run as a script)

DEFAULT_CASES = "espcn:4,fsrcnn:4,lapsrn:4"
TARGETS = {"espcn": 2.5, "fsrcnn": 2.5, "lapsrn": 1.5}


def load_image(path: str | None) -> tuple[np.ndarray, str]:
    if path is None:
        shared = Path(__file__).resolve().parents[2] / "shared/datasets/Set14/monarch.png"
        path = str(shared) if shared.is_file() else str(Path(srzoo.fetch_dataset("set14", quiet=True))
                                                          / "monarch.png")
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"engines.py: error: {path}: cannot read image")
    return img, path


def stats(ts: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in ts)
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return {"median": statistics.median(ms), "min": ms[0], "p25": q[0], "p75": q[2], "max": ms[-1],
            "n": len(ms)}


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- peak
def cpu_peak(threads: int) -> dict[str, Any]:
    """Theoretical FP32 peak from lscpu (and how it was derived), and a measured sgemm."""
    flags = ""
    model = platform.processor()
    mhz = None
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1)  # type: ignore[union-attr]
        model = re.search(r"^model name\s*:\s*(.*)$", text, re.M).group(1)  # type: ignore[union-attr]
        m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
        mhz = float(m.group(1)) if m else None
    except (OSError, AttributeError):
        pass
    fl = set(flags.split())
    lanes = 16 if "avx512f" in fl else (8 if "avx2" in fl or "avx" in fl else 4)
    fma = "fma" in fl
    # Xeon (Skylake-SP and later) cores with AVX-512 have two 512-bit FMA ports;
    # AVX2 cores two 256-bit ones. An assumption lscpu cannot show: stated in the output.
    fma_units = 2
    ghz = (mhz or 2000.0) / 1000.0
    per_cycle = fma_units * lanes * (2 if fma else 1)
    theo = threads * per_cycle * ghz
    n = 1024
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    a @ b
    ts = [timed(lambda: a @ b) for _ in range(7)]
    gemm = 2 * n ** 3 / min(ts) / 1e9
    return {"cpu": model, "threads": threads, "simd_lanes_fp32": lanes, "fma": fma,
            "fma_units_assumed": fma_units, "clock_ghz": ghz,
            "flop_per_cycle_per_core": per_cycle, "theoretical_gflops": theo,
            "measured_sgemm_gflops": gemm,
            "derivation": f"{threads} cores x {fma_units} FMA units x {lanes} fp32 lanes x 2 flop x "
                          f"{ghz:.2f} GHz (cpu MHz of /proc/cpuinfo; turbo not counted)"}


# --------------------------------------------------------------------------- measurements
def end_to_end(name: str, scale: int, img: np.ndarray, names: list[str], threads: int,
               repeat: int, warmup: int) -> dict[str, Any]:
    sr = bare_upsampler(name, scale)
    ups: dict[str, Any] = {}
    rows: dict[str, Any] = {}
    for b in names:
        try:
            t0 = time.perf_counter()
            ups[b] = srzoo.Upscaler(name, scale, backend=b, threads=threads)
            rows[b] = {"backend": ups[b].backend, "why": ups[b].backend_reason,
                       "load_s": time.perf_counter() - t0}
        except srzoo.SrzooError as e:
            rows[b] = {"unavailable": str(e)}
    ref = sr.upsample(img)  # the reference for the diff columns (also works with --warmup 0)
    for _ in range(warmup):
        sr.upsample(img)
        for up in ups.values():
            up(img)
    t_bare: list[float] = []
    t_sr: dict[str, list[float]] = {b: [] for b in ups}
    for _ in range(repeat):
        t_bare.append(timed(lambda: sr.upsample(img)))
        for b, up in ups.items():
            t_sr[b].append(timed(lambda up=up: up(img)))
    bare_s = stats(t_bare)
    for b, up in ups.items():
        out = up(img)
        s = stats(t_sr[b])
        ratios = sorted(x / y for x, y in zip(t_bare, t_sr[b]))
        rows[b].update(ms=s, speedup=bare_s["median"] / s["median"],
                       speedup_pairs_p25_p75=[ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]],
                       max_abs_diff_vs_upsample=int(np.abs(out.astype(int) - ref.astype(int)).max()),
                       pixels_differing=float((out != ref).mean()))
    return {"model": name, "scale": scale, "input": f"{img.shape[1]}x{img.shape[0]}",
            "upsample_ms": bare_s, "srzoo": rows}


@functools.lru_cache(maxsize=None)
def conv_macs_per_pixel(name: str, scale: int) -> int:
    """Multiply-adds of the convolutions per input pixel, counted from the graph
    (once per model, however many backends are measured)."""
    from srzoo.convert.graphdef import graphdef_to_onnx

    entry = srzoo.get_model(name, scale)
    _, info = graphdef_to_onnx(srzoo.fetch(name, scale, quiet=True).read_bytes(),
                               "IteratorGetNext", list(entry.io.outputs))
    return info["conv_macs_per_pixel"]


def pre_post(name: str, scale: int, img: np.ndarray, backend: str, threads: int, repeat: int,
             warmup: int) -> dict[str, Any]:
    from srzoo.runtime.pipeline import prepare

    up = srzoo.Upscaler(name, scale, backend=backend, threads=threads)
    pipe = up.pipeline
    p = prepare(img)
    ycc = cv2.cvtColor(p.color, cv2.COLOR_BGR2YCrCb)
    y = ycc[:, :, 0].astype(np.float32) / 255.0
    blob = pipe.blob(y)
    runner = up.runner
    for _ in range(warmup):
        up(img)
        runner.run(blob)
    t_e2e: list[float] = []
    t_net: list[float] = []
    for _ in range(repeat):
        t_e2e.append(timed(lambda: up(img)))
        t_net.append(timed(lambda: runner.run(blob)))
    e, n = stats(t_e2e), stats(t_net)
    macs = conv_macs_per_pixel(name, scale) * img.shape[0] * img.shape[1]
    return {"model": name, "scale": scale, "asked": backend, "backend": up.backend, "why": up.backend_reason,
            "end_to_end_ms": e, "network_ms": n,
            "pre_post_share": (e["median"] - n["median"]) / e["median"],
            "gflop": 2 * macs / 1e9, "network_gflops": 2 * macs / 1e9 / (n["median"] / 1000)}


# --------------------------------------------------------------------------- report
def fmt_ms(s: dict[str, float]) -> str:
    return f"{s['median']:.0f} ({s['min']:.0f}-{s['max']:.0f})"


def markdown(res: dict[str, Any]) -> str:
    lines = [f"Machine: {res['machine']['cpu']}, {res['machine']['cpus']} CPUs, threads={res['threads']}, "
             f"{res['repeat']} alternated repeats; ms as median (min-max).", "",
             "| model | input | upsample() ms | srzoo backend | chosen | srzoo ms | speed-up (median) | "
             "pairwise p25-p75 | max diff | target |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for c in res["end_to_end"]:
        for b, r in c["srzoo"].items():
            if "unavailable" in r:
                lines.append(f"| {c['model']} x{c['scale']} | {c['input']} | {fmt_ms(c['upsample_ms'])} | "
                             f"{b} | unavailable [{len(notes) + 1}] | | | | | |")
                notes.append(r["unavailable"])
                continue
            tgt = TARGETS.get(c["model"])
            ok = "" if tgt is None else (f"≥ {tgt}× {'met' if r['speedup'] >= tgt else 'NOT met'}")
            lines.append(f"| {c['model']} x{c['scale']} | {c['input']} | {fmt_ms(c['upsample_ms'])} | {b} | "
                         f"{r['backend']} | {fmt_ms(r['ms'])} | {r['speedup']:.2f}× | "
                         f"{r['speedup_pairs_p25_p75'][0]:.2f}-{r['speedup_pairs_p25_p75'][1]:.2f} | "
                         f"{r['max_abs_diff_vs_upsample']} | {ok} |")
    for i, n in enumerate(notes, 1):
        lines.append(f"\n[{i}] {n}")
    for pp in res.get("pre_post", []):
        outside = pp["end_to_end_ms"]["median"] - pp["network_ms"]["median"]
        lines += ["", f"Pre/post share, {pp['model']} x{pp['scale']} on {pp['backend']} ({pp['asked']}): "
                  f"end to end {fmt_ms(pp['end_to_end_ms'])} ms, network alone {fmt_ms(pp['network_ms'])} ms "
                  f"-> {outside:.0f} ms outside the network = {100 * pp['pre_post_share']:.1f} % of end to "
                  f"end (target ≤ 15 %: {'met' if pp['pre_post_share'] <= 0.15 else 'NOT met'})."]
    peak = res.get("peak")
    if peak:
        lines += ["", "| network | backend | GFLOP per image | network ms | GFLOP/s | % of theoretical | "
                      "% of measured sgemm |", "|---|---|---|---|---|---|---|"]
        for g in res.get("gflops", []):
            lines.append(f"| {g['model']} x{g['scale']} | {g['backend']} | {g['gflop']:.1f} | "
                         f"{g['network_ms']['median']:.0f} | {g['network_gflops']:.0f} | "
                         f"{100 * g['network_gflops'] / peak['theoretical_gflops']:.0f} % | "
                         f"{100 * g['network_gflops'] / peak['measured_sgemm_gflops']:.0f} % |")
        lines += ["", f"Peak: theoretical {peak['theoretical_gflops']:.0f} GFLOP/s = {peak['derivation']}; "
                      f"measured float32 GEMM (numpy, 1024³) {peak['measured_sgemm_gflops']:.0f} GFLOP/s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="auto", help="comma-separated srzoo backends (default: auto)")
    ap.add_argument("--cases", default=DEFAULT_CASES, help=f"model:scale list (default {DEFAULT_CASES})")
    ap.add_argument("--image", help="input image (default: Set14 monarch.png)")
    ap.add_argument("--lapsrn-crop", default="384x256", help="LapSRN input WxH crop ('' for full)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pre-post", default="espcn:4", help="model:scale for measurement 2 ('' to skip)")
    ap.add_argument("--no-gflops", action="store_true", help="skip measurement 3")
    ap.add_argument("--json", help="write the full results here")
    ap.add_argument("--markdown", help="write the tables here")
    args = ap.parse_args(argv)
    cv2.setNumThreads(args.threads)
    img, path = load_image(args.image)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    from srzoo.runtime.autotune import machine_identity

    res: dict[str, Any] = {"image": path, "threads": args.threads, "repeat": args.repeat,
                           "machine": machine_identity(), "opencv": cv2.__version__,
                           "engines": {n: v for n, v in backends.capabilities().get("engines", {}).items()},
                           "end_to_end": [], "pre_post": [], "gflops": []}
    for case in [c for c in args.cases.split(",") if c.strip()]:
        name, _, scale = case.partition(":")
        x = img
        if name == "lapsrn" and args.lapsrn_crop:
            w, h = (int(v) for v in args.lapsrn_crop.split("x"))
            y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
            x = np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])
        print(f"... {name} x{scale} on {x.shape[1]}x{x.shape[0]}", file=sys.stderr, flush=True)
        res["end_to_end"].append(end_to_end(name, int(scale), x, names, args.threads, args.repeat,
                                            args.warmup))
    usable = [b for b in names if not any("unavailable" in c["srzoo"].get(b, {})
                                          for c in res["end_to_end"])]
    if not res["end_to_end"]:  # --cases '': measurements 2 and 3 only
        usable = names
    if args.pre_post and usable:
        name, _, scale = args.pre_post.partition(":")
        for b in usable:
            print(f"... pre/post {name} x{scale} on {b}", file=sys.stderr, flush=True)
            res["pre_post"].append(pre_post(name, int(scale), img, b, args.threads,
                                            args.repeat, args.warmup))
    if not args.no_gflops and res["pre_post"]:
        print("... peak", file=sys.stderr, flush=True)
        res["peak"] = cpu_peak(args.threads)
        res["gflops"] = [{k: pp[k] for k in ("model", "scale", "backend", "gflop", "network_ms",
                                             "network_gflops")} for pp in res["pre_post"]]
    text = markdown(res)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
