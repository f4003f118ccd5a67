"""Reading and writing image files, safely.

* :func:`load_image` reads the image's size from its header first and refuses
  one whose result would exceed ``SRZOO_MAX_PIXELS`` *before* decoding it (a
  400 KB PNG can claim 20000x20000 pixels and take gigabytes to decode). The
  header is read with the small ``imagesize`` library (PNG, JPEG, BMP, WebP,
  TIFF, JPEG 2000, Netpbm...) and here for PFM and Radiance HDR; other formats
  are checked right after decoding.
* No ``cv2.error`` escapes: every decode or encode failure is an
  :class:`srzoo.ImageError` naming the file.
* :func:`write_image` writes atomically (temp file + rename) and converts what
  a format cannot hold: 16-bit or float results written to JPEG, WebP or BMP
  are scaled to 8 bits (``value / 257``, rounded) with one note on stderr.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path
from typing import Union

import numpy as np

from srzoo import config, fsutil
from srzoo.errors import ImageError

ImageLike = Union[np.ndarray, str, "os.PathLike[str]"]

#: formats that keep float pixels
FLOAT_EXTS = {".exr", ".hdr", ".pfm", ".tif", ".tiff"}
#: formats that hold only 8 bits per channel
EIGHT_BIT_EXTS = {".jpg", ".jpeg", ".jpe", ".webp", ".bmp"}

_noted: set[str] = set()


def _limit() -> int:
    return int(config.get("SRZOO_MAX_PIXELS"))


def _cv_reason(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    text = lines[-1] if lines else type(e).__name__
    m = re.search(r"error: \(-?\d+:([^)]*)\) (.*)", text)
    return f"{m.group(2)} ({m.group(1).strip()})" if m else text


# --------------------------------------------------------------------------- header sizes
def _text_header_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PFM or Radiance HDR header."""
    if head[:2] in (b"PF", b"Pf"):
        parts = head[2:64].split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return int(parts[0]), int(parts[1])
        return None
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        m = re.search(rb"\n\n?([-+])Y (\d+) ([-+])X (\d+)", head)
        if m:
            return int(m.group(4)), int(m.group(2))
        m = re.search(rb"\n\n?([-+])X (\d+) ([-+])Y (\d+)", head)
        if m:
            return int(m.group(2)), int(m.group(4))
    return None


def header_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) read from the file's header without decoding it, or None
    when the format is not one we can read that way."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    size = _text_header_size(head)
    if size:
        return size
    try:
        import imagesize

        w, h = imagesize.get(str(path))
    except Exception:  # noqa: BLE001 - a header it cannot parse: decode and check after
        return None
    return (int(w), int(h)) if w > 0 and h > 0 else None


def megapixels(n: int) -> str:
    """A pixel count for messages: ``7680 pixels``, ``1.5 MP``, ``1074 MP`` (never "0 MP")."""
    if n < 10_000:
        return f"{n} pixels"
    return f"{n / 1e6:.2g} MP" if n < 10_000_000 else f"{n / 1e6:.0f} MP"


def _refuse(what: str, w: int, h: int, scale: int, limit: int, before: bool) -> ImageError:
    n = w * h * scale * scale
    at = f" gives {w * scale}x{h * scale} at x{scale}," if scale > 1 else " is"
    when = " (refused before decoding)" if before else ""
    return ImageError(f"{what}: a {w}x{h} image{at} {megapixels(n)}, above the limit of "
                      f"{megapixels(limit)}{when}; downscale or crop it, or raise SRZOO_MAX_PIXELS")


# --------------------------------------------------------------------------- loading
def load_image(src: ImageLike, *, scale: int = 1) -> np.ndarray:
    """An image as an array: arrays pass through, paths are decoded unchanged
    (alpha, 16-bit and grey are kept).

    A file whose header says it (upscaled ``scale`` times) would exceed
    ``SRZOO_MAX_PIXELS`` is refused before decoding. Raises
    :class:`srzoo.ImageError` naming the file.
    """
    if isinstance(src, np.ndarray):
        return src
    if not isinstance(src, (str, os.PathLike)):
        raise ImageError(f"image must be a numpy array or a path, got {type(src).__name__}")
    import cv2

    path = Path(src)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    limit = _limit()
    size = header_size(path)
    if size and size[0] * size[1] * scale * scale > limit:
        raise _refuse(str(path), size[0], size[1], scale, limit, before=True)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as e:
        raise ImageError(f"{path}: cannot decode: {_cv_reason(e)}") from None
    if img is None:
        raise ImageError(f"{path}: not an image OpenCV can decode (empty, truncated or unknown format)")
    h, w = img.shape[:2]
    if w * h * scale * scale > limit:
        raise _refuse(str(path), w, h, scale, limit, before=False)
    return img


# --------------------------------------------------------------------------- writing
def _note(key: str, text: str) -> None:
    if key not in _noted:
        _noted.add(key)
        print(f"srzoo: note: {text}", file=sys.stderr, flush=True)


def to_8bit(image: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 by ``value / 257`` rounded (65535 -> 255, 257 -> 1)."""
    return np.rint(image.astype(np.float32) / np.float32(257.0)).astype(np.uint8)


def encodable(path: Path, image: np.ndarray) -> np.ndarray:
    """``image`` converted to what the format of ``path`` can hold."""
    ext = path.suffix.lower() or ".png"
    if image.dtype in (np.float32, np.float64) and ext not in FLOAT_EXTS:
        top = 255.0 if ext in EIGHT_BIT_EXTS else 65535.0
        image = _fit_unit(path, image, ext)
        image = np.rint(np.clip(np.nan_to_num(image, nan=0.0), 0.0, 1.0) * top).astype(
            np.uint8 if top == 255.0 else np.uint16)
    if image.dtype == np.uint16 and ext in EIGHT_BIT_EXTS:
        _note(f"16->8{ext}", f"{ext} holds 8 bits per channel: 16-bit results are written "
                             "scaled to 8 bits (use .png or .tif to keep 16 bits)")
        image = to_8bit(image)
    return image


def _fit_unit(path: Path, image: np.ndarray, ext: str) -> np.ndarray:
    """Float pixels for an integer format, which holds 0..1: values above 1 (HDR,
    a .pfm of 0..1000) are mapped to 0..1 by dividing by the largest, with a note;
    never clipped silently. Formats that keep floats (.tif, .exr, .pfm, .hdr) never get here."""
    finite = image[np.isfinite(image)]
    hi = float(finite.max()) if finite.size else 0.0
    if hi <= 1.0 + 1e-6:
        return image
    _note(f"float>1{ext}", f"{path}: float values up to {hi:.6g} do not fit {ext} (which holds "
                           f"0..1): written divided by {hi:.6g}; write .tif, .exr or .pfm to keep them")
    return image / np.float32(hi)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Encode by extension and write atomically (temp file + rename): a failed
    write never leaves a half-written file. Raises :class:`srzoo.ImageError`
    naming the file (encode failures, unwritable folder, disk full)."""
    import cv2

    path = Path(path)
    ext = path.suffix.lower() or ".png"
    image = encodable(path, image)
    try:
        ok, buf = cv2.imencode(ext, image)
    except cv2.error as e:
        raise ImageError(f"{path}: cannot encode as {ext}: {_cv_reason(e)}") from None
    if not ok:
        raise ImageError(f"{path}: OpenCV cannot encode {ext} images")
    try:  # a regular file atomically; a device, FIFO or link to one written through
        fsutil.atomic_write(path, buf.tobytes(), fsync=False)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            why = f"{e.strerror} (disk full: free some space or write elsewhere)"
        elif e.errno in (errno.ENOTDIR, errno.EEXIST):
            why = "a file is in the way of its folder"
        elif e.errno == errno.EISDIR:
            why = "it is a folder"
        else:
            why = e.strerror or str(e)
        raise ImageError(f"{path}: cannot write: {why}") from None


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


__all__ = ["FLOAT_EXTS", "ImageLike", "encodable", "header_size", "load_image", "to_8bit",
           "write_image"]
