#!/usr/bin/env python
"""Peak memory of reduced precision against fp32: one fresh process per case.

Each case runs in its own Python process (so peaks do not mix): load
``srzoo.Upscaler(model, scale, backend, precision)`` and upscale one image,
then report the process's peak resident memory (``ru_maxrss``). Each
precision runs twice against the same cache: ``first use`` (the reduced
precision is measured against fp32 on the probe, so the fp32 network is
loaded too for a moment; for int8 the model is also quantized then, its
calibration crops run through the fp32 network) and ``measured`` (the
measurement comes from the autotune store, the int8 model from the cache;
only the reduced network is loaded).

    SRZOO_CACHE_DIR=$(mktemp -d) \\
    SRZOO_MIRROR=../shared/models/esrgan-ncnn,../shared/models/carn,../shared/models/opencv,../shared/datasets/T91 \\
        python bench/precision_memory.py --out bench/results/precision_memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import resource, sys, time
import numpy as np
import srzoo
model, scale, backend, precision, side = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
if sys.argv[6] == "forget":  # first use: no measurement kept yet
    from srzoo.runtime import autotune
    autotune.forget(model)
img = (np.random.default_rng(0).random((side, side, 3)) * 255).astype(np.uint8)
t0 = time.perf_counter()
up = srzoo.Upscaler(model, scale, backend=backend, precision=precision, threads=2)
out = up(img, tile=0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, up.precision, round(time.perf_counter() - t0, 2))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="realesrgan-x4plus-ncnn:4:96,carn-m:4:128,default:4:256",
                    help="MODEL:SCALE:SIDE,...")
    ap.add_argument("--backend", default="openvino:cpu")
    ap.add_argument("--precisions", default="fp32,bf16,int8")
    ap.add_argument("--out", default=None, metavar="PREFIX")
    args = ap.parse_args()
    rows = []
    for case in args.cases.split(","):
        model, scale, side = case.split(":")
        # an unrecorded run first: it fetches and converts the model into the cache
        subprocess.run([sys.executable, "-c", CHILD, model, scale, args.backend, "fp32", "32", "keep"],
                       capture_output=True, text=True)
        for p in args.precisions.split(","):
            for when in (("first use", "measured") if p != "fp32" else ("fp32",)):
                forget = "forget" if when == "first use" else "keep"
                got = subprocess.run([sys.executable, "-c", CHILD, model, scale, args.backend, p, side,
                                      forget], capture_output=True, text=True)
                if got.returncode != 0:
                    rows.append({"model": model, "precision": p, "when": when,
                                 "error": got.stderr.strip().splitlines()[-1]})
                    continue
                kb, ran, secs = got.stdout.split()
                rows.append({"model": model, "scale": int(scale), "input": f"{side}x{side}", "precision": p,
                             "ran": ran, "when": when, "peak_mib": round(int(kb) / 1024, 1),
                             "seconds": float(secs)})
                print(rows[-1], flush=True)
    load = [round(v, 2) for v in os.getloadavg()]
    md = [f"# Peak memory, fp32 against reduced precision ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
          "", f"Command: `python bench/precision_memory.py --cases {args.cases} --backend {args.backend} "
          f"--precisions {args.precisions}`; backend {args.backend}, 2 threads, one fresh process per row "
          f"(peak resident memory of the whole process, Python and libraries included); load at the end {load}.",
          "", "| model | input | precision | when | peak MiB | load+run s |", "|---|---|---|---|---:|---:|"]
    for r in rows:
        if "error" in r:
            md.append(f"| {r['model']} | | {r['precision']} | {r['when']} | error: {r['error']} | |")
        else:
            md.append(f"| {r['model']} | {r['input']} | {r['ran']} | {r['when']} | {r['peak_mib']} | {r['seconds']} |")
    text = "\n".join(md) + "\n"
    print(text)
    if args.out:
        Path(args.out + ".md").write_text(text)
        Path(args.out + ".json").write_text(json.dumps({"rows": rows, "load_end": load}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
