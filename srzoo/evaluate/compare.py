"""Look rather than read: the same crop from several models side by side.

:func:`compare` upscales one image with each model and lays the same region of
every result out in a labelled grid. By default the image is used as the
**high-resolution reference** (the standard protocol: modcrop, MATLAB-bicubic
downscaling, scores on Y with ``scale`` px shaved): each tile is labelled with
the model's PSNR / SSIM over the whole image, and the grid starts with the
reference and the MATLAB-bicubic baseline. With ``reference=False`` the image
itself is upscaled (no scores) -- for photos that have no ground truth.

:func:`gallery` writes one such grid per image of a dataset folder
(``srzoo bench --gallery DIR``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from srzoo.errors import SrzooError
from srzoo.evaluate import metrics
from srzoo.evaluate.benchmark import IMAGE_SUFFIXES
from srzoo.runtime.imageio import write_image
from srzoo.runtime.pipeline import load_image
from srzoo.runtime.upscaler import Upscaler

__all__ = ["Tile", "Comparison", "compare", "gallery", "pick_crop"]

BICUBIC_MATLAB = "bicubic-matlab"
_LABEL_H = 34
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class Tile:
    """One model's result: name, the crop shown, scores over the whole image."""

    name: str
    crop: np.ndarray
    psnr: float | None = None
    ssim: float | None = None
    seconds: float | None = None


@dataclass
class Comparison:
    """A :func:`compare` result: the grid image and the tiles it shows."""

    grid: np.ndarray
    tiles: list[Tile] = field(default_factory=list)
    box: tuple[int, int, int, int] = (0, 0, 0, 0)   # x, y, w, h in output pixels
    scale: int = 2
    reference: bool = True

    def table(self) -> str:
        """A plain-text table of the tiles (name, PSNR, SSIM, seconds)."""
        lines = [f"{'model':<18} {'PSNR dB':>8} {'SSIM':>7} {'seconds':>8}"]
        for t in self.tiles:
            p = f"{t.psnr:8.2f}" if t.psnr is not None and np.isfinite(t.psnr) else f"{'-':>8}"
            s = f"{t.ssim:7.4f}" if t.ssim is not None else f"{'-':>7}"
            sec = f"{t.seconds:8.3f}" if t.seconds is not None else f"{'-':>8}"
            lines.append(f"{t.name:<18} {p} {s} {sec}")
        return "\n".join(lines)


def _split(models: str | Sequence[str]) -> list[str]:
    items = models.split(",") if isinstance(models, str) else list(models)
    return [m.strip() for m in items if m and m.strip()]


def pick_crop(img: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window with the most edges
    (Sobel magnitude of the grey image, summed over the window)."""
    h, w = img.shape[:2]
    size = min(size, h, w)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    g = grey.astype(np.float32)
    mag = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
    ii = cv2.integral(mag)
    sums = ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]
    step = max(1, size // 8)  # a coarse grid is enough, and stable
    sub = sums[::step, ::step]
    y, x = np.unravel_index(int(np.argmax(sub)), sub.shape)
    return int(x * step), int(y * step)


def _label(tile: np.ndarray, lines: list[str]) -> np.ndarray:
    bar = np.full((_LABEL_H, tile.shape[1], 3), 255, np.uint8)
    for i, text in enumerate(lines[:2]):
        scale = 0.45
        (tw, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
        while tw > tile.shape[1] - 6 and scale > 0.25:
            scale -= 0.05
            (tw, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
        cv2.putText(bar, text, (4, 14 + 16 * i), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def _grid(tiles: list[np.ndarray], cols: int, pad: int = 4) -> np.ndarray:
    rows = [tiles[i:i + cols] for i in range(0, len(tiles), cols)]
    th, tw = tiles[0].shape[:2]
    H = len(rows) * th + (len(rows) + 1) * pad
    W = cols * tw + (cols + 1) * pad
    out = np.full((H, W, 3), 200, np.uint8)
    for r, row in enumerate(rows):
        for c, t in enumerate(row):
            y, x = pad + r * (th + pad), pad + c * (tw + pad)
            out[y:y + th, x:x + tw] = t
    return out


def _bgr(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def compare(image: str | os.PathLike[str] | np.ndarray, models: str | Sequence[str] = "default",
            scale: int = 2, *, reference: bool = True, crop: int = 96,
            box: tuple[int, int] | None = None, zoom: int | None = None, cols: int | None = None,
            backend: str = "auto") -> Comparison:
    """Upscale ``image`` with each model; a grid of the same crop from each.

    Args:
        image: a path or an 8-bit BGR/grey array.
        models: names (``"default,espcn,fsrcnn"`` or a list); ``bicubic-matlab``
            (the protocol's baseline) is added first when ``reference``.
        scale: upscaling factor.
        reference: use ``image`` as the HR ground truth (degrade it, score every
            model); otherwise upscale ``image`` itself and show no scores.
        crop: side of the shown region in *output* pixels.
        box: its top-left corner ``(x, y)`` in output pixels (default: the
            window with the most edges).
        zoom: nearest-neighbour enlargement of the crops (default: up to 256 px).
        cols: tiles per row (default: up to 4).
    """

    names = _split(models)
    if not names:
        raise SrzooError("compare needs at least one model (-m a,b,c)")
    for what, v, none_ok in (("scale", scale, False), ("crop", crop, False), ("zoom", zoom, True),
                             ("cols", cols, True)):
        if not (none_ok and v is None) and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                            or v < 1):
            raise SrzooError(f"--{what} must be a whole number >= 1, got {v!r}")
    img = _bgr(load_image(image) if not isinstance(image, np.ndarray) else image)
    if img.dtype != np.uint8:
        raise SrzooError(f"compare works on 8-bit images, got {img.dtype}")
    s = int(scale)
    if reference:
        hr = metrics.modcrop(img, s)
        if min(hr.shape[:2]) // s < 8:
            raise SrzooError(f"the image ({img.shape[1]}x{img.shape[0]}) is too small for x{s}")
        lr = metrics.imresize(hr, 1.0 / s)
    else:
        hr, lr = None, img
    out_h, out_w = lr.shape[0] * s, lr.shape[1] * s
    side = max(8, min(int(crop), out_h, out_w))
    if box is None:
        x0, y0 = pick_crop(hr if hr is not None else cv2.resize(lr, (out_w, out_h)), side)
    else:
        x0 = min(max(0, int(box[0])), out_w - side)
        y0 = min(max(0, int(box[1])), out_h - side)
    z = int(zoom) if zoom else max(1, 256 // side)

    def cut(a: np.ndarray) -> np.ndarray:
        c = a[y0:y0 + side, x0:x0 + side]
        return cv2.resize(c, (side * z, side * z), interpolation=cv2.INTER_NEAREST) if z > 1 else c.copy()

    tiles: list[Tile] = []
    if hr is not None:
        tiles.append(Tile("HR (reference)", cut(hr)))
        names = [BICUBIC_MATLAB] + [n for n in names if n != BICUBIC_MATLAB]
    for name in names:
        t0 = time.perf_counter()
        if name == BICUBIC_MATLAB:
            sr = metrics.imresize(lr, s)
        else:
            sr = _bgr(Upscaler(name, s, backend=backend).upscale(lr))
        dt = time.perf_counter() - t0
        tile = Tile(name, cut(sr), seconds=dt)
        if hr is not None:
            tile.psnr = metrics.psnr(hr, sr, shave=s, y_channel=True)
            tile.ssim = metrics.ssim(hr, sr, shave=s, y_channel=True)
        tiles.append(tile)
    labelled = []
    for t in tiles:
        lines = [f"{t.name} x{s}" if t.name != "HR (reference)" else t.name]
        if t.psnr is not None:
            lines.append(f"{t.psnr:.2f} dB / {t.ssim:.4f}")
        elif t.name == "HR (reference)":
            lines.append("PSNR / SSIM on Y")
        labelled.append(_label(t.crop, lines))
    ncols = int(cols) if cols else min(len(labelled), 4)
    return Comparison(_grid(labelled, max(1, ncols)), tiles, (x0, y0, side, side), s, hr is not None)


def gallery(folder: str | os.PathLike[str], out_dir: str | os.PathLike[str],
            models: str | Sequence[str], scales: Sequence[int], *, crop: int = 96,
            backend: str = "auto") -> list[Path]:
    """One :func:`compare` grid (image as HR reference) per image in ``folder``
    and scale, written as ``OUT_DIR/<dataset>/<image>_x<scale>.png``."""

    folder = Path(folder)
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SrzooError(f"no images in {folder}")
    dest = Path(out_dir) / folder.name.lower()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise SrzooError(f"cannot decode {f}")
        for s in scales:
            res = compare(img, models, s, crop=crop, backend=backend)
            path = dest / f"{f.stem}_x{s}.png"
            write_image(path, res.grid)
            written.append(path)
    return written
