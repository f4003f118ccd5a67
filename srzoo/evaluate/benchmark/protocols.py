"""Evaluation protocols of the benchmark (``matlab``, ``opencv``; described in
:mod:`srzoo.evaluate.benchmark`): degradation, scoring, image sets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srzoo.errors import ImageError, SrzooError
from srzoo.evaluate import metrics
from srzoo.hub import api

PROTOCOLS = {
    "matlab": ("modcrop; LR = MATLAB bicubic imresize (antialiased); PSNR/SSIM on Y of MATLAB "
               "rgb2ycbcr (grey files as they are), scale px shaved"),
    "opencv": ("modcrop; LR = cv2.resize INTER_LINEAR (OpenCV dnn_superres sample); PSNR/SSIM on "
               "all BGR channels, no shave"),
}
#: the protocol baseline that reproduces the literature's "Bicubic" row
MATLAB_BICUBIC = "bicubic-matlab"
IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}
DEFAULT_INTERPOLATION_SCALES = (2, 3, 4)


# ---------------------------------------------------------------------------
# data: images, degradation, scoring
# ---------------------------------------------------------------------------

@dataclass
class _Sample:
    name: str
    hr: np.ndarray          # modcropped ground truth as scored
    lr: np.ndarray          # model input (always 3-channel BGR uint8)
    grey: bool              # hr is one-channel: convert the output back to grey


def _resolve_dataset(spec: str | os.PathLike[str]) -> tuple[str, Path]:
    p = Path(spec).expanduser()
    if p.is_dir():
        return p.resolve().name, p
    text = str(spec)
    if os.sep in text or "/" in text or p.suffix:
        raise SrzooError(f"dataset folder not found: {text}")

    return text.lower(), api.fetch_dataset(text)


def _load_images(folder: Path, protocol: str) -> list[tuple[str, np.ndarray]]:
    import cv2

    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SrzooError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    flag = cv2.IMREAD_UNCHANGED if protocol == "matlab" else cv2.IMREAD_COLOR
    out = []
    for f in files:
        img = cv2.imread(str(f), flag)
        if img is None:
            raise ImageError(f"cannot decode {f}")
        if img.dtype != np.uint8:
            raise ImageError(f"{f}: only 8-bit images can be benchmarked, got {img.dtype}")
        if img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        out.append((f.name, img))
    return out


def _degrade(hr: np.ndarray, scale: int, protocol: str) -> np.ndarray:
    import cv2

    h, w = hr.shape[:2]
    if protocol == "matlab":
        return metrics.imresize(hr, 1.0 / scale, output_shape=(h // scale, w // scale))
    return cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_LINEAR)


def _samples(images: list[tuple[str, np.ndarray]], scale: int, protocol: str) -> list[_Sample]:
    import cv2

    out = []
    for name, img in images:
        hr = metrics.modcrop(img, scale)
        if min(hr.shape[:2]) // scale < 4:
            raise ImageError(f"{name}: {img.shape[1]}x{img.shape[0]} is too small for x{scale}")
        lr = _degrade(hr, scale, protocol)
        grey = lr.ndim == 2
        if grey:
            lr = cv2.cvtColor(lr, cv2.COLOR_GRAY2BGR)
        out.append(_Sample(name, hr, np.ascontiguousarray(lr), grey))
    return out


def _ms_ssim_score(hr: np.ndarray, sr: np.ndarray, scale: int, protocol: str) -> float:
    """MS-SSIM (Wang et al. 2003) as the protocol scores SSIM; NaN for an image
    too small for five scales (at least 176 px per side after shaving)."""
    try:
        if protocol == "matlab":
            return metrics.ms_ssim(hr, sr, shave=scale, y_channel=True)
        return metrics.ms_ssim(hr, sr)
    except ValueError:
        return float("nan")


def _score(hr: np.ndarray, sr: np.ndarray, scale: int, protocol: str) -> tuple[float, float]:
    if protocol == "matlab":
        return (metrics.psnr(hr, sr, shave=scale, y_channel=True),
                metrics.ssim(hr, sr, shave=scale, y_channel=True))
    return metrics.psnr(hr, sr), metrics.ssim(hr, sr)


class _MatlabBicubic:
    """The protocol's bicubic baseline: ``imresize(LR, scale)`` (numpy)."""

    backend = "numpy"

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        return metrics.imresize(img, self.scale, output_shape=(h * self.scale, w * self.scale))
