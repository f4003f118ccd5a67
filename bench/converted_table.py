"""Build the table of bench/converted.md from the JSON results of bench/run_converted.sh.

Later files supersede earlier rows of the same (dataset, model, scale), so a
re-run of one model after a fix replaces its stale rows. Usage:
    python bench/converted_table.py > bench/converted_table.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RES = Path(__file__).parent / "results"
# in order: later supersedes earlier
FILES = ["converted_small", "converted_vdsr", "converted_fix", "converted_vdsr_fix", "converted_vdsr_fix14",
         "converted_rrdb"]
TARGET = {("srcnn-onnx", 2): ">= MATLAB bicubic + 1 dB (34.65)", ("vdsr-onnx", 2): ">= 37.2",
          ("vdsr-onnx", 3): ">= 33.3", ("vdsr-onnx", 4): ">= 31.0",
          ("carn-m-onnx", 2): "37.53 +- 0.3", ("carn-m-onnx", 3): "33.99 +- 0.3", ("carn-m-onnx", 4): "31.92 +- 0.3",
          ("rfdn-onnx", 4): ">= 31.8"}
FORMAT = {"srcnn": "keras-h5", "srcnn-915": "keras-h5", "vdsr": "pytorch-pth", "carn-m": "pytorch-pth",
          "rfdn": "pytorch-pth", "srresnet": "keras-h5", "srgan": "keras-h5 (GAN)",
          "realesr-animevideov3": "pytorch-pth (GAN)", "realesr-animevideov3-ncnn": "ncnn fp16 (GAN)",
          "realesrgan-x4plus-anime-ncnn": "ncnn fp16 (GAN)", "realesrgan-x4plus-ncnn": "ncnn fp16 (GAN)",
          "bicubic-matlab": "baseline", "bicubic": "baseline (cv2)"}


def main() -> None:
    rows: dict = {}
    for name in FILES:
        p = RES / f"{name}.json"
        if not p.exists():
            continue
        for r in json.loads(p.read_text())["results"]:
            if r["status"] == "ok":
                rows[(r["model"], r["scale"], r["dataset"])] = (r, name)
    models = sorted({(m, s) for m, s, _ in rows}, key=lambda k: (k[1], k[0] not in ("bicubic-matlab", "bicubic"), k[0]))
    out = ["| model | source format | scale | Set5 PSNR / SSIM | Set14 PSNR / SSIM | target (Set5) | "
           "Set5 ms/img (median) | from |",
           "|---|---|---|---|---|---|---|---|"]
    for m, s in models:
        cells = []
        src = set()
        for ds in ("set5", "set14"):
            got = rows.get((m, s, ds))
            cells.append(f"{got[0]['psnr']:.2f} / {got[0]['ssim']:.4f}" if got else "-")
            if got:
                src.add(got[1])
        ms = rows.get((m, s, "set5"))
        base = m[:-5] if m.endswith("-onnx") else m
        out.append(f"| {base} | {FORMAT.get(base, '?')} | x{s} | {cells[0]} | {cells[1]} | {TARGET.get((m, s), '')} | "
                   f"{ms[0]['ms_median']:.0f} | {', '.join(sorted(src))} |" if ms else "")
    sys.stdout.write("\n".join(line for line in out if line) + "\n")


if __name__ == "__main__":
    main()
