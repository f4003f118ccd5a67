"""The built-in models against every OpenCV-distributed model of their scale.

Quality: `srzoo.bench` under the standard protocol (``matlab``: MATLAB-bicubic
degradation, Y, ``scale`` px shaved) on Set5 and Set14 at x2/x3/x4, PSNR / SSIM /
MS-SSIM. Time: the built-in model and ESPCN of the same scale upscale the same
768x512 input (Set14 monarch) through ``srzoo.Upscaler``, alternating, ``REPEAT``
times each after a warm-up; the median of each and their ratio are reported, so
both are measured side by side under the same machine load.

    SRZOO_MIRROR=../shared/models/opencv,../shared/datasets/Set5,../shared/datasets/Set14 \
        PYTHONPATH=. nice -n 19 python bench/builtin.py > bench/builtin.md
"""

from __future__ import annotations

import statistics
import sys
import time

import cv2

import srzoo

OPENCV = ["espcn", "fsrcnn", "fsrcnn-small", "lapsrn"]
SCALES = [2, 3, 4]
REPEAT = 9


def timing(img) -> list[tuple[int, float, float]]:
    out = []
    for s in SCALES:
        ours, espcn = srzoo.Upscaler("default", s, backend="cpu"), srzoo.Upscaler("espcn", s, backend="cpu")
        ours.upscale(img), espcn.upscale(img)
        t_ours, t_espcn = [], []
        for _ in range(REPEAT):
            for up, acc in ((ours, t_ours), (espcn, t_espcn)):
                t0 = time.perf_counter()
                up.upscale(img)
                acc.append(time.perf_counter() - t0)
        out.append((s, statistics.median(t_ours), statistics.median(t_espcn)))
    return out


def main() -> None:
    rep = srzoo.bench(["default", *OPENCV, "bicubic"], SCALES, "cpu", ["set5", "set14"],
                      protocol="matlab", repeat=1, warmup=0)
    rows = {(r["dataset"], r["model"], r["scale"]): r for r in rep.results if r["status"] == "ok"}
    print("# Built-in models (`default`) vs OpenCV's models\n")
    print("Produced by `bench/builtin.py` (command in its docstring). Protocol: "
          f"**matlab** ({rep.protocol_description}). Machine: {rep.machine.get('cpu')}, "
          f"{rep.machine.get('cores_usable')} usable cores, OpenCV {rep.machine.get('opencv_version')}.\n")
    print("## Quality\n")
    print("| dataset | scale | default PSNR / SSIM / MS-SSIM | best OpenCV model | its PSNR | margin (dB) | >= 1 dB |")
    print("|---|---|---|---|---|---|---|")
    for ds in ("set5", "set14"):
        for s in SCALES:
            d = rows.get((ds, "default", s))
            cands = [(rows[(ds, m, s)]["psnr"], m) for m in OPENCV if (ds, m, s) in rows]
            if d is None or not cands:
                print(f"| {ds} | x{s} | missing | | | | |")
                continue
            best, name = max(cands)
            ok = "yes" if d["psnr"] - best >= 1.0 else "**no**"
            print(f"| {ds} | x{s} | {d['psnr']:.2f} / {d['ssim']:.4f} / {d['ms_ssim']:.4f} | {name} | "
                  f"{best:.2f} | {d['psnr'] - best:+.2f} | {ok} |")
    print("\nEvery model, for reference (PSNR dB / SSIM / MS-SSIM):\n")
    print("| dataset | model | x2 | x3 | x4 |")
    print("|---|---|---|---|---|")
    for ds in ("set5", "set14"):
        for m in ["default", *OPENCV, "bicubic-matlab", "bicubic"]:
            cells = []
            for s in SCALES:
                r = rows.get((ds, m, s))
                cells.append("-" if r is None else f"{r['psnr']:.2f} / {r['ssim']:.4f} / {r['ms_ssim']:.4f}")
            print(f"| {ds} | {m} | " + " | ".join(cells) + " |")
    img = cv2.imread("../shared/datasets/Set14/monarch.png")
    print(f"\n## Time\n\nInput {img.shape[1]}x{img.shape[0]} (Set14 monarch) through `srzoo.Upscaler(..., "
          f"backend='cpu')`, OpenCV threads: {cv2.getNumThreads()}; median of {REPEAT} alternating runs.\n")
    print("| scale | default (s) | ESPCN (s) | ratio | <= 2x |")
    print("|---|---|---|---|---|")
    for s, a, b in timing(img):
        print(f"| x{s} | {a:.3f} | {b:.3f} | {a / b:.2f} | {'yes' if a / b <= 2 else '**no**'} |")
    print("\nMultiply-adds per input pixel: default 38.9k / 40.5k / 42.7k (x2/x3/x4), ESPCN "
          "21.2k / 22.6k / 24.6k.", file=sys.stdout)


if __name__ == "__main__":
    main()
