"""Quality per multiply-add of candidate architectures for the built-in models.

Each candidate is trained the same short way (x2, T91 with 4 images held out,
L1, 6 x 250 steps of 16 patches of 32x32, seed 0, one torch thread) and scored
by validation PSNR on the held-out T91 images (never on Set5/Set14, the test
sets). Multiply-adds are per low-resolution input pixel; training seconds are
wall time on this (shared) machine and only roughly comparable.

    PYTHONPATH=. nice -n 19 python bench/train/compare_archs.py > bench/train/compare_archs.md
"""

from __future__ import annotations

import sys
import time

from srzoo.train import TrainConfig, macs_per_lr_pixel, train

CANDIDATES = ["espcn", "fsrcnn-res", "resblock", "espcn-res", "srcnn"]


def main() -> None:
    rows = []
    base = None
    for arch in CANDIDATES:
        cfg = TrainConfig(scale=2, data=["../shared/datasets/T91"], arch=arch, epochs=6,
                          steps_per_epoch=250, patch=32, batch=16, seed=0, val_count=4, threads=1)
        t0 = time.perf_counter()
        res = train(cfg, progress=False, log=lambda s: print(s, file=sys.stderr, flush=True))
        secs = time.perf_counter() - t0
        params = sum(p.numel() for p in res.model.parameters())
        rows.append((arch, res.model.spec.kind, params, macs_per_lr_pixel(res.model, 2),
                     res.history[0]["val_psnr"], res.history[-1]["val_psnr"], secs))
    print("| arch | kind | params | MACs / LR px | val PSNR after 250 steps | after 1500 steps | train s |")
    print("|---|---|---|---|---|---|---|")
    for a, k, p, m, v0, v1, s in rows:
        print(f"| {a} | {k}-upsampling | {p} | {m:.0f} | {v0:.3f} | {v1:.3f} | {s:.0f} |")


if __name__ == "__main__":
    main()
