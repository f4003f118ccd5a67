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
* Photos keep what makes them photos: :func:`read_image` applies the EXIF
  orientation to the pixels (an orientation-6 phone photo comes out upright)
  and returns the file's metadata (:class:`ImageMeta`: ICC profile, EXIF, XMP,
  PNG text) read with Pillow from the header only; ``write_image(...,
  meta=...)`` writes them into the result wherever its format can hold them
  (JPEG, PNG, WebP, TIFF), EXIF with the new pixel size and orientation 1.
  Pixels are still decoded by OpenCV (16-bit, alpha and grey as before).
"""

from __future__ import annotations

import errno
import functools
import io
import os
import re
import struct
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

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
    """(width, height) from a PFM or Radiance HDR header; None unless both numbers
    end inside ``head`` (a number cut off by its end would be read smaller)."""
    if head[:2] in (b"PF", b"Pf"):
        parts = head[2:64].split()  # width, height, then the scale: the height ended
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            return int(parts[0]), int(parts[1])
        return None
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        m = re.search(rb"\n\n?([-+])Y (\d+) ([-+])X (\d+)\s", head)
        if m:
            return int(m.group(4)), int(m.group(2))
        m = re.search(rb"\n\n?([-+])X (\d+) ([-+])Y (\d+)\s", head)
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
    return _header_size(head, str(path))


#: how much of an encoded image in memory the header parser may look at (JPEG's size comes
#: after its APP segments: EXIF, ICC, XMP)
_HEADER_SCAN = 1 << 20


def _header_size(head: bytes, source: str | io.BytesIO) -> tuple[int, int] | None:
    """(width, height) from a header: PFM/PNM/HDR text headers in ``head``, the other
    formats through imagesize reading ``source`` (a path, or the bytes' start)."""
    size = _text_header_size(head)
    if size:
        return size
    try:
        import imagesize

        w, h = imagesize.get(source)
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


# --------------------------------------------------------------------------- metadata
#: EXIF tags updated in a result: orientation (IFD0), pixel size (Exif IFD)
_ORIENTATION, _EXIF_IFD, _PIXEL_X, _PIXEL_Y = 0x0112, 0x8769, 0xA002, 0xA003
_IMAGE_WIDTH, _IMAGE_LENGTH = 0x0100, 0x0101
#: formats whose metadata Pillow writes
_META_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG",
                 ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}


@dataclass
class ImageMeta:
    """What a photo carries besides its pixels, as read from its file.

    ``icc``: the ICC colour profile; ``exif``: the raw EXIF block (TIFF
    structure, without the ``Exif\\0\\0`` prefix); ``orientation``: the EXIF
    orientation the file had (1-8; :func:`read_image` has applied it to the
    pixels); ``xmp``: the XMP packet; ``text``: PNG text chunks; ``format``:
    Pillow's name of the input format (``JPEG``, ``PNG``...)."""

    format: str | None = None
    icc: bytes | None = None
    exif: bytes | None = None
    orientation: int = 1
    xmp: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.icc or self.exif or self.xmp or self.text)

    def exif_for(self, width: int, height: int) -> bytes | None:
        """The EXIF block for a result of ``width`` x ``height`` upright pixels:
        orientation 1 (it was applied on reading), pixel dimensions updated."""
        if not self.exif:
            return None
        from PIL import Image

        ex = Image.Exif()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Corrupt EXIF data": handled below
                ex.load(self.exif)
            ex[_ORIENTATION] = 1
            for tag, v in ((_IMAGE_WIDTH, width), (_IMAGE_LENGTH, height)):
                if tag in ex:
                    ex[tag] = v
            sub = ex.get_ifd(_EXIF_IFD)
            sub[_PIXEL_X], sub[_PIXEL_Y] = width, height
            out = ex.tobytes()
        except Exception as e:  # noqa: BLE001 - a damaged EXIF block: write none rather than fail
            _note("exif", f"the input's EXIF block cannot be rewritten ({type(e).__name__}); "
                          "results are written without EXIF")
            return None
        return out[6:] if out.startswith(b"Exif\0\0") else out


def _as_bytes(v: Any) -> bytes | None:
    if isinstance(v, bytes):
        return v or None
    if isinstance(v, str):
        return v.encode("utf-8") or None
    return None


#: TIFF tags that describe how a file's own pixels are laid out (size, samples, strips,
#: tiles, compression, predictor, colour layout; ICC, XMP, IPTC and Photoshop blocks are
#: carried apart): not metadata of the picture, and wrong for any result
_TIFF_LAYOUT_TAGS = (254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281,
                     284, 288, 289, 290, 291, 292, 293, 317, 320, 322, 323, 324, 325, 338, 339,
                     340, 341, 347, 530, 531, 532, 700, 33723, 34377, 34675)


def read_meta(data: bytes | str | os.PathLike[str], what: str = "image") -> ImageMeta:
    """ICC, EXIF, orientation, XMP and PNG text of an encoded image, read with
    Pillow from the header only (no pixel is decoded). A file Pillow cannot
    parse has no metadata (an empty :class:`ImageMeta`), never an error:
    OpenCV decodes the pixels and says what is wrong with them."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return ImageMeta()
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: our own limit applies
            with Image.open(src) as im:
                info = dict(im.info)
                fmt = im.format
                text = {}
                if fmt == "PNG":  # text chunks before the pixels (those after need a decode)
                    text = {str(k): v for k, v in info.items()
                            if isinstance(v, str) and k not in ("XML:com.adobe.xmp",)}
                exif = info.get("exif")
                if exif is None and fmt == "TIFF":  # a TIFF's EXIF tags live in its first IFD
                    ex = im.getexif()
                    for tag in _TIFF_LAYOUT_TAGS:  # how the input's pixels are stored
                        ex.pop(tag, None)
                    exif = ex.tobytes() if len(ex) else None
                xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
                if xmp is None and fmt == "TIFF":
                    xmp = im.tag_v2.get(700) if hasattr(im, "tag_v2") else None
    except Image.DecompressionBombError:
        _note("meta-bomb", f"{what}: too many pixels for Pillow to read its metadata; the result "
                           "is written without ICC/EXIF and its EXIF orientation is not applied")
        return ImageMeta()
    except Exception:  # noqa: BLE001 - not a format Pillow knows, or a damaged header
        return ImageMeta()
    exif_b = _as_bytes(exif)
    if exif_b and exif_b.startswith(b"Exif\0\0"):
        exif_b = exif_b[6:]
    orientation = 1
    if exif_b:
        try:
            o = Image.Exif()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a damaged block: no orientation, no warning
                o.load(exif_b)
            orientation = int(o.get(_ORIENTATION, 1))
        except Exception:  # noqa: BLE001 - unreadable EXIF: no orientation
            orientation = 1
        if not 1 <= orientation <= 8:
            orientation = 1
    if isinstance(xmp, tuple):  # older Pillow: TIFF tag values as tuples
        xmp = bytes(xmp)
    return ImageMeta(format=fmt, icc=_as_bytes(info.get("icc_profile")), exif=exif_b,
                     orientation=orientation, xmp=_as_bytes(xmp),
                     text={k: v for k, v in text.items() if k not in ("icc_profile", "exif")})


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` turned upright for an EXIF ``orientation`` (1-8; 1: unchanged).
    2 mirrors left-right, 3 turns 180°, 4 mirrors top-bottom, 5 transposes,
    6 turns 90° clockwise, 7 transverses, 8 turns 90° counter-clockwise."""
    if orientation == 2:
        image = image[:, ::-1]
    elif orientation == 3:
        image = image[::-1, ::-1]
    elif orientation == 4:
        image = image[::-1]
    elif orientation == 5:
        image = image.swapaxes(0, 1)
    elif orientation == 6:
        image = image.swapaxes(0, 1)[:, ::-1]
    elif orientation == 7:
        image = image.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        image = image.swapaxes(0, 1)[::-1]
    else:
        return image
    return np.ascontiguousarray(image)


# --------------------------------------------------------------------------- loading
@functools.lru_cache(maxsize=None)
def _opencv_orients_tiff() -> bool:
    """Whether this OpenCV's TIFF decoder turns the pixels by the file's orientation
    tag itself, even with IMREAD_UNCHANGED (4.10 and 5.1 do, for every sample layout):
    probed once on a 2x1 TIFF tagged 6 (turned: 1x2)."""
    import cv2
    from PIL import Image

    buf = io.BytesIO()
    tags = Image.Exif()
    tags[_ORIENTATION] = 6
    Image.fromarray(np.zeros((1, 2), np.uint8)).save(buf, "TIFF", exif=tags)
    img = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_UNCHANGED)
    return img is not None and img.shape[:2] == (2, 1)


def decode(data: np.ndarray, what: str, *, scale: int = 1,
           source: str | os.PathLike[str] | None = None,
           header_checked: bool = False) -> tuple[np.ndarray, ImageMeta]:
    """Decode encoded bytes (OpenCV, unchanged: alpha, 16-bit and grey kept), turn
    the pixels upright by their EXIF orientation, and return them with their
    metadata (read from ``source``, the file ``data`` came from, when given: no
    copy of the bytes). An image whose header says it (upscaled ``scale`` times)
    would exceed ``SRZOO_MAX_PIXELS`` is refused before decoding (unless the caller
    checked it: ``header_checked``), any other one after. Raises
    :class:`srzoo.ImageError` naming ``what``."""
    import cv2

    limit = _limit()
    if not header_checked and data.size:  # bytes from a URL: refuse a bomb before decoding it
        start = data[:_HEADER_SCAN].tobytes()
        size = _header_size(start[:4096], io.BytesIO(start))
        if size and size[0] * size[1] * scale * scale > limit:
            raise _refuse(what, size[0], size[1], scale, limit, before=True)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as e:
        raise ImageError(f"{what}: cannot decode: {_cv_reason(e)}") from None
    if img is None:
        raise ImageError(f"{what}: not an image OpenCV can decode (empty, truncated or unknown format)")
    h, w = img.shape[:2]
    if w * h * scale * scale > limit:
        raise _refuse(what, w, h, scale, limit, before=False)
    meta = read_meta(source if source is not None else data.tobytes(), what)
    if meta.format == "TIFF" and meta.orientation != 1 and _opencv_orients_tiff():
        return img, meta  # already upright: turning it again put TIFFs 180 degrees off
    return orient(img, meta.orientation), meta


def read_image(src: str | os.PathLike[str], *, scale: int = 1) -> tuple[np.ndarray, ImageMeta]:
    """An image file's pixels, upright, and its metadata (:class:`ImageMeta`).

    A file whose header says it (upscaled ``scale`` times) would exceed
    ``SRZOO_MAX_PIXELS`` is refused before decoding. Raises
    :class:`srzoo.ImageError` naming the file."""
    if not isinstance(src, (str, os.PathLike)):
        raise ImageError(f"image must be a numpy array or a path, got {type(src).__name__}")
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
    return decode(data, str(path), scale=scale, source=path, header_checked=True)


def load_image(src: ImageLike, *, scale: int = 1) -> np.ndarray:
    """An image as an array: arrays pass through, paths are decoded (alpha,
    16-bit and grey are kept) and turned upright by their EXIF orientation.

    A file whose header says it (upscaled ``scale`` times) would exceed
    ``SRZOO_MAX_PIXELS`` is refused before decoding. Raises
    :class:`srzoo.ImageError` naming the file.
    """
    if isinstance(src, np.ndarray):
        return src
    return read_image(src, scale=scale)[0]


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


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_meta(png: bytes, meta: ImageMeta, exif: bytes | None) -> bytes:
    """An encoded PNG with ``meta``'s chunks (iCCP, eXIf, iTXt) inserted after
    its IHDR: for the 16-bit colour PNGs that Pillow cannot write."""
    chunks = []
    if meta.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(meta.icc)))
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif))
    texts = dict(meta.text)
    if meta.xmp:
        texts["XML:com.adobe.xmp"] = meta.xmp.decode("utf-8", "replace")
    for k, v in texts.items():
        key = k.encode("latin-1", "replace")[:79]
        chunks.append(_png_chunk(b"iTXt", key + b"\0\0\0\0\0" + v.encode("utf-8")))
    end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4  # signature, IHDR
    return png[:end] + b"".join(chunks) + png[end:]


def _pillow_encode(ext: str, image: np.ndarray, meta: ImageMeta, quality: int | None) -> bytes:
    """8-bit pixels and ``meta`` encoded by Pillow (which writes metadata; OpenCV does not)."""
    from PIL import Image, PngImagePlugin

    fmt = _META_FORMATS[ext]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        im = Image.fromarray(np.ascontiguousarray(image), "L")
    elif image.shape[2] == 4 and fmt != "JPEG":
        im = Image.fromarray(np.ascontiguousarray(image[:, :, [2, 1, 0, 3]]), "RGBA")
    else:  # JPEG holds no alpha: dropped, as OpenCV does
        im = Image.fromarray(np.ascontiguousarray(image[:, :, 2::-1]), "RGB")
    h, w = image.shape[:2]
    kw: dict[str, Any] = {}
    if meta.icc:
        kw["icc_profile"] = meta.icc
    exif = meta.exif_for(w, h)
    if exif:
        kw["exif"] = b"Exif\0\0" + exif
    if fmt == "JPEG":
        kw.update(quality=95 if quality is None else int(quality), subsampling=2)
    elif fmt == "WEBP":
        kw.update(lossless=True) if quality is None else kw.update(quality=int(quality))
    elif fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for k, v in meta.text.items():
            info.add_itxt(k, v)
        if meta.xmp:
            info.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace"))
        kw.update(pnginfo=info, compress_level=1)
    elif fmt == "TIFF" and not exif:  # libtiff (compression) cannot write the EXIF sub-IFD
        kw.update(compression="tiff_lzw")
    if meta.xmp and fmt in ("JPEG", "WEBP"):
        kw["xmp"] = meta.xmp
    elif meta.xmp and fmt == "TIFF":  # Pillow's TIFF writer ignores xmp=: tag 700 (XMLPacket)
        if exif:  # given tiffinfo, Pillow would drop the EXIF: the tag goes into the EXIF IFD0
            ex = Image.Exif()
            ex.load(exif)
            ex[700] = meta.xmp
            kw["exif"] = ex.tobytes()
        else:
            kw["tiffinfo"] = {700: meta.xmp}
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def encode(path: str | os.PathLike[str], image: np.ndarray, *, meta: ImageMeta | None = None,
           quality: int | None = None) -> bytes:
    """``image`` encoded in the format of ``path``'s extension, with ``meta``
    (ICC, EXIF, XMP, PNG text) where the format holds it; ``quality``: 1-100
    for JPEG (default 95) and WebP (default lossless). Raises :class:`ImageError`."""
    import cv2

    path = Path(path)
    ext = path.suffix.lower() or ".png"
    if quality is not None and (isinstance(quality, bool) or not 1 <= int(quality) <= 100):
        raise ImageError(f"{path}: quality must be from 1 to 100, got {quality!r}")
    image = encodable(path, image)
    if meta:
        if ext in _META_FORMATS and image.dtype == np.uint8:
            try:
                return _pillow_encode(ext, image, meta, quality)
            except Exception as e:  # noqa: BLE001 - Pillow refused: say so, write with OpenCV
                _note(f"meta-{ext}", f"{path}: metadata cannot be written ({e}); written without it")
        elif ext != ".png" or image.dtype != np.uint16:
            _note(f"meta-{ext}-{image.dtype}", f"{ext} files of {image.dtype} pixels are written "
                                               "without the input's ICC profile and EXIF")
    params: list[int] = []
    if quality is not None and ext in (".jpg", ".jpeg", ".jpe"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif quality is not None and ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    try:
        ok, buf = cv2.imencode(ext, image, params)
    except cv2.error as e:
        raise ImageError(f"{path}: cannot encode as {ext}: {_cv_reason(e)}") from None
    if not ok:
        raise ImageError(f"{path}: OpenCV cannot encode {ext} images")
    data = buf.tobytes()
    if meta and ext == ".png" and image.dtype == np.uint16:
        data = _png_with_meta(data, meta, meta.exif_for(image.shape[1], image.shape[0]))
    return data


def write_image(path: str | os.PathLike[str], image: np.ndarray, *,
                meta: ImageMeta | None = None, quality: int | None = None) -> None:
    """Encode by extension (:func:`encode`: ``meta`` and ``quality``) and write
    atomically (temp file + rename): a failed write never leaves a half-written
    file. Raises :class:`srzoo.ImageError` naming the file (encode failures,
    unwritable folder, disk full)."""
    path = Path(path)
    data = encode(path, image, meta=meta, quality=quality)
    try:  # a regular file atomically; a device, FIFO or link to one written through
        fsutil.atomic_write(path, data, fsync=False)
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


__all__ = ["FLOAT_EXTS", "ImageLike", "ImageMeta", "decode", "encodable", "encode", "header_size",
           "load_image", "orient", "read_image", "read_meta", "to_8bit", "write_image"]
