"""Quality per multiply-add of candidate architectures for the built-in models.

Each candidate is trained the same short way (x2, T91 with 4 images held out,
L1, 3 x 200 steps of 16 patches of 32x32, seed 0, one torch thread) and scored
by validation PSNR on the held-out T91 images (never on Set5/Set14, the test
sets). Multiply-adds are per low-resolution input pixel; training seconds are
wall time on this (shared) machine and only roughly comparable.

    PYTHONPATH=. nice -n 19 python bench/train/compare_archs.py > bench/train/compare_archs.md
"""

from __future__ import annotations

import sys
import time

from srzoo.train import TrainConfig, macs_per_lr_pixel, train

CANDIDATES = ["espcn", "fsrcnn-res", "espcn-res", "srcnn"]
EPOCHS, STEPS = 3, 200


def main() -> None:
    rows = []
    base = None
    for arch in CANDIDATES:
        cfg = TrainConfig(scale=2, data=["../shared/datasets/T91"], arch=arch, epochs=EPOCHS,
                          steps_per_epoch=STEPS, patch=32, batch=16, seed=0, val_count=4, threads=1)
        t0 = time.perf_counter()
        res = train(cfg, progress=False, log=lambda s: print(s, file=sys.stderr, flush=True))
        secs = time.perf_counter() - t0
        params = sum(p.numel() for p in res.model.parameters())
        rows.append((arch, res.model.spec.kind, params, macs_per_lr_pixel(res.model, 2),
                     res.history[0]["val_psnr"], res.history[-1]["val_psnr"], secs))
    # the bicubic baseline on the same held-out images, same PSNR definition
    import numpy as np

    from srzoo.evaluate.metrics import imresize
    from srzoo.train.data import list_images, make_pairs, split_validation
    from srzoo.train.trainer import _psnr_y

    _, held = split_validation(list_images(["../shared/datasets/T91"]), 4)
    bic = float(np.mean([_psnr_y(imresize(p.lr.astype(np.float64), 2), p.hr, 2)
                         for p in make_pairs(held, 2)]))
    print(f"Validation: {len(held)} held-out T91 images ({', '.join(p.name for p in held)}); "
          f"MATLAB bicubic scores {bic:.3f} dB on them.\n")
    print(f"| arch | kind | params | MACs / LR px | val PSNR after {STEPS} steps | after {EPOCHS * STEPS} "
          "steps | gain over bicubic | dB gain per 10k MACs | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for a, k, p, m, v0, v1, s in rows:
        print(f"| {a} | {k}-upsampling | {p} | {m:.0f} | {v0:.3f} | {v1:.3f} | {v1 - bic:+.3f} | "
              f"{(v1 - bic) / (m / 1e4):.3f} | {s:.0f} |")


if __name__ == "__main__":
    main()
