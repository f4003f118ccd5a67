"""Training data: (LR, HR) Y-plane pairs cut from HR images with the standard
degradation, and seeded random patch batches.

The degradation is the one of the standard protocol (``../shared/REFERENCE.md``):
modcrop, then MATLAB-bicubic downscaling (:func:`srzoo.resample.imresize`) of the
8-bit colour image, rounded to uint8. The planes fed to the network are the
full-range Y of OpenCV's ``COLOR_BGR2YCrCb`` scaled to ``[0, 1]``, what
:mod:`srzoo.runtime.pipeline` gives a ``color = "y"`` model at run time (there rounded
to whole grey levels, here not).

Batches come from a ``numpy`` generator seeded with ``(seed, epoch)``, so epoch
``e`` draws the same patches whether or not training was interrupted before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from srzoo.errors import SrzooError
from srzoo.resample import imresize, modcrop

__all__ = ["IMAGE_SUFFIXES", "list_images", "y_plane", "Pair", "make_pairs", "PatchSampler",
           "split_validation"]

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_images(folders: Iterable[str | Path]) -> list[Path]:
    """Image files directly in each folder (or the files themselves), sorted per folder."""
    out: list[Path] = []
    for f in folders:
        p = Path(f)
        if p.is_file():
            out.append(p)
            continue
        if not p.is_dir():
            raise SrzooError(f"{p}: no such folder; pass folders of HR training images with --data")
        files = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        if not files:
            raise SrzooError(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        out += files
    return out


def y_plane(img: np.ndarray) -> np.ndarray:
    """float32 full-range Y in [0, 1] of a uint8 BGR or grey image (pipeline convention).

    BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` as ``cv2.COLOR_BGR2YCrCb`` computes
    it, but unrounded: the pipeline converts uint8 images and so feeds the rounded
    value (at most half a grey level away)."""
    if img.ndim == 2:
        return img.astype(np.float32) / 255.0
    f = img[..., :3].astype(np.float32)
    y = 0.114 * f[..., 0] + 0.587 * f[..., 1] + 0.299 * f[..., 2]
    return (y / 255.0).astype(np.float32)


@dataclass
class Pair:
    """One training image: LR and HR Y planes (float32, [0,1]) and the LR
    plane bicubic-upscaled for pre-upsampling networks (or None)."""

    lr: np.ndarray
    hr: np.ndarray
    name: str


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SrzooError(f"{path}: not an image OpenCV can decode; remove it from the training folder")
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / float(np.iinfo(img.dtype).max)) \
            if np.issubdtype(img.dtype, np.integer) else np.clip(img * 255.0, 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    return img


def make_pairs(paths: Sequence[Path], scale: int, downscales: Sequence[float] = (1.0,),
               min_lr: int = 16) -> list[Pair]:
    """LR/HR pairs of every image at every extra ``downscales`` factor (data
    augmentation of SRCNN/FSRCNN: the HR image itself shrunk first)."""
    pairs: list[Pair] = []
    for path in paths:
        img = _read(path)
        for f in downscales:
            hr = img if f == 1.0 else imresize(img, f)
            hr = modcrop(hr, scale)
            if min(hr.shape[:2]) // scale < min_lr:
                continue
            lr = imresize(hr, 1.0 / scale)
            pairs.append(Pair(y_plane(lr), y_plane(hr), f"{path.name}@{f:g}"))
    if not pairs:
        raise SrzooError(f"no training image is large enough for x{scale} "
                         f"(each needs at least {min_lr * scale} px per side)")
    return pairs


def split_validation(paths: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """Hold out ``count`` images spread evenly over the list (deterministic)."""
    if count <= 0 or len(paths) < 2:
        return paths, []
    count = min(count, len(paths) // 2)
    step = len(paths) / count
    held = {int(i * step + step / 2) for i in range(count)}
    return [p for i, p in enumerate(paths) if i not in held], [p for i, p in enumerate(paths) if i in held]


class PatchSampler:
    """Random LR/HR patch batches with the 8 flips/rotations, drawn from a
    generator seeded per epoch."""

    def __init__(self, pairs: list[Pair], scale: int, patch: int, batch: int, seed: int,
                 pre_upsample: bool = False) -> None:
        self.pairs = [p for p in pairs if min(p.lr.shape) >= patch]
        if not self.pairs:
            raise SrzooError(f"no training image has an LR side of at least --patch {patch} px")
        self.scale, self.patch, self.batch, self.seed = scale, patch, batch, seed
        self.pre_upsample = pre_upsample
        areas = np.array([p.lr.size for p in self.pairs], dtype=np.float64)
        self.prob = areas / areas.sum()

    def epoch(self, epoch: int, steps: int):
        """Yield ``steps`` batches ``(lr, hr)`` as float32 N x 1 x h x w arrays."""
        rng = np.random.default_rng([self.seed, epoch])
        s, ps = self.scale, self.patch
        for _ in range(steps):
            idx = rng.choice(len(self.pairs), size=self.batch, p=self.prob)
            lrs, hrs = [], []
            for i in idx:
                pr = self.pairs[int(i)]
                y = int(rng.integers(0, pr.lr.shape[0] - ps + 1))
                x = int(rng.integers(0, pr.lr.shape[1] - ps + 1))
                lr = pr.lr[y:y + ps, x:x + ps]
                hr = pr.hr[y * s:(y + ps) * s, x * s:(x + ps) * s]
                t = int(rng.integers(0, 8))
                if t & 1:
                    lr, hr = lr[:, ::-1], hr[:, ::-1]
                if t & 2:
                    lr, hr = lr[::-1], hr[::-1]
                if t & 4:
                    lr, hr = lr.T, hr.T
                if self.pre_upsample:
                    lr = cv2.resize(np.ascontiguousarray(lr), (ps * s, ps * s), interpolation=cv2.INTER_CUBIC)
                lrs.append(lr)
                hrs.append(hr)
            yield (np.ascontiguousarray(np.stack(lrs)[:, None]),
                   np.ascontiguousarray(np.stack(hrs)[:, None]))
