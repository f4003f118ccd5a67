"""Which model should I use: quality and time per megapixel of registry models, measured here.

Quality: ``srzoo.bench`` under the standard protocol (``matlab``: MATLAB-bicubic
degradation, PSNR on Y with ``scale`` px shaved) on Set5 and Set14 at x4, for the
PSNR-oriented models only; a GAN-trained model (tag ``gan``) aims at plausible
texture, not PSNR, so its PSNR is not a verdict on it and is not shown.
Time: every model upscales the same input (Set14 ``monarch`` shrunk to 192x128,
INTER_AREA) x4 through ``srzoo.Upscaler`` on the backend ``auto`` picks; one
warm-up, then ``ROUNDS`` rounds that run each model once in turn (so all models
see the same machine load), median per model, reported as seconds per output
megapixel. The machine is shared: its load average before and after is printed.

    SRZOO_MIRROR=../shared SRZOO_OFFLINE=1 SRZOO_CACHE_DIR=/tmp/srzoo-choose \\
        PYTHONPATH=. nice -n 10 python bench/choose_model.py > bench/results/choose_model.md
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import cv2

import srzoo
from srzoo.evaluate.benchmark.runner import machine_info

#: (model, what it is for) at x4, fastest families first
MODELS = [
    ("bicubic", "baseline: no network"),
    ("espcn", "photos, video: the fastest network"),
    ("fsrcnn", "photos, video: fast"),
    ("default", "photos: built into srzoo, no download"),
    ("carn-m", "photos: best PSNR for its speed"),
    ("rfdn", "photos: best PSNR here"),
    ("realesr-animevideov3-ncnn", "anime, video: GAN, fast"),
    ("realesrgan-x4plus-anime-ncnn", "anime, illustrations: GAN"),
    ("realesrgan-x4plus-ncnn", "real-world photos (noise, JPEG): GAN, slow"),
]
SCALE = 4
ROUNDS = 3


def quality(names: list[str]) -> dict[str, tuple[float, float]]:
    rep = srzoo.bench(names, SCALE, backends="cpu", dataset=["set5", "set14"], repeat=1, warmup=0)
    got: dict[str, dict[str, float]] = {}
    for row in rep.results:
        if row.get("psnr") is not None:
            got.setdefault(row["model"], {})[str(row["dataset"]).lower()] = row["psnr"]
    return {m: (d.get("set5", float("nan")), d.get("set14", float("nan"))) for m, d in got.items()}


def timing(names: list[str], img) -> dict[str, tuple[float, str]]:
    ups = {}
    for m in names:
        up = srzoo.Upscaler(m, SCALE)
        up.upscale(img)  # warm-up (and the conversion, the first time)
        ups[m] = up
    times: dict[str, list[float]] = {m: [] for m in names}
    for _ in range(ROUNDS):
        for m, up in ups.items():
            t0 = time.perf_counter()
            up.upscale(img)
            times[m].append(time.perf_counter() - t0)
    out_mpix = img.shape[0] * img.shape[1] * SCALE * SCALE / 1e6
    return {m: (statistics.median(t) / out_mpix, ups[m].backend) for m, t in times.items()}


def main() -> int:
    load0 = os.getloadavg()
    names = [m for m, _ in MODELS]
    gan = {m for m in names if "gan" in srzoo.get_model(m, SCALE).tags}
    hr = cv2.imread(str(srzoo.fetch_dataset("set14") / "monarch.png"), cv2.IMREAD_COLOR)
    img = cv2.resize(hr, (192, 128), interpolation=cv2.INTER_AREA)
    q = quality([m for m in names if m not in gan])
    t = timing(names, img)
    load1 = os.getloadavg()
    info = machine_info()
    print(f"# Which model should I use (x{SCALE}, measured by bench/choose_model.py)\n")
    print(f"Machine: {info.get('cpu') or platform.processor()}, {os.cpu_count()} cores, "
          f"OpenCV {cv2.__version__}, srzoo {srzoo.__version__}; load average "
          f"{load0[0]:.1f} before, {load1[0]:.1f} after (a shared machine: times are "
          "comparable within this table, not across machines).\n")
    print("| model | for | Set5 PSNR | Set14 PSNR | s per output Mpix | vs espcn | backend |")
    print("|---|---|---|---|---|---|---|")
    base = t["espcn"][0]
    for m, purpose in MODELS:
        if m in gan:
            p5 = p14 = "GAN (not PSNR)"
        else:
            p5, p14 = (f"{v:.2f}" for v in q[m])
        sec, backend = t[m]
        print(f"| {m} | {purpose} | {p5} | {p14} | {sec:.2f} | {sec / base:.1f}x | {backend} |")
    print(f"\nPSNR: dB on Y, MATLAB-bicubic x{SCALE} degradation, {SCALE} px shaved (srzoo.bench, "
          f"protocol matlab). Time: median of {ROUNDS} rounds on a 192x128 input "
          f"({192 * SCALE}x{128 * SCALE} output), after one warm-up.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
