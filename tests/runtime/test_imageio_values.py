"""srzoo.runtime.imageio by value: what encode/write_image put in the file, read back
independently (Pillow, OpenCV, the PNG chunks parsed here), the exact conversions of float
and 16-bit pixels, and the exact one-line errors and notes. Direct calls on a real image
(Set14 baboon), no model: fast enough to run per mutant (docs/mutation/runtime-imageio.md)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin

import srzoo
from srzoo.runtime import imageio

MAKE = 0x010F
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


@pytest.fixture(scope="module")
def srgb() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def bgr(shared_dir) -> np.ndarray:
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))
    return np.ascontiguousarray(img[100:148, 200:272])  # 72 x 48, not square


def _exif(**ifd0: int | str) -> bytes:
    ex = Image.Exif()
    ex[MAKE] = "SRZOO"
    for k, v in ifd0.items():
        ex[int(k[1:], 16)] = v
    return ex.tobytes()[6:]  # without the Exif\0\0 prefix, as ImageMeta holds it


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every PNG chunk, parsed here, CRCs checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(png):
        n = struct.unpack(">I", png[i:i + 4])[0]
        kind, data = png[i + 4:i + 8], png[i + 8:i + 8 + n]
        assert struct.unpack(">I", png[i + 8 + n:i + 12 + n])[0] == zlib.crc32(kind + data)
        out.append((kind, data))
        i += 12 + n
    return out


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# --------------------------------------------------------------------------- ImageMeta
def test_meta_truth_is_any_of_icc_exif_xmp_text() -> None:
    assert not imageio.ImageMeta() and not imageio.ImageMeta(format="PNG", orientation=6)
    for kw in ({"icc": b"p"}, {"exif": b"e"}, {"xmp": b"x"}, {"text": {"a": "b"}}):
        assert imageio.ImageMeta(**kw), kw


def test_exif_for_sets_orientation_and_every_size_tag() -> None:
    meta = imageio.ImageMeta(exif=_exif(x0112=6, x0100=10, x0101=20))
    block = meta.exif_for(144, 96)
    assert block[:2] in (b"MM", b"II")  # the TIFF structure, no Exif\0\0 prefix
    ex = Image.Exif()
    ex.load(block)
    assert ex[MAKE] == "SRZOO" and ex[0x0112] == 1
    assert (ex[0x0100], ex[0x0101]) == (144, 96)
    sub = ex.get_ifd(0x8769)
    assert (sub[0xA002], sub[0xA003]) == (144, 96)
    # tags the input did not have are not invented in IFD0
    ex2 = Image.Exif()
    ex2.load(imageio.ImageMeta(exif=_exif()).exif_for(5, 7))
    assert 0x0100 not in ex2 and 0x0101 not in ex2 and ex2[0x0112] == 1
    assert imageio.ImageMeta().exif_for(5, 7) is None


def test_damaged_exif_gives_none_and_one_note(capsys) -> None:
    imageio._noted.clear()
    meta = imageio.ImageMeta(exif=b"garbage, not a TIFF structure")
    assert meta.exif_for(4, 4) is None and meta.exif_for(4, 4) is None
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("srzoo: note: the input's EXIF block cannot be rewritten (")
    assert err[0] == ("srzoo: note: the input's EXIF block cannot be rewritten (SyntaxError); results are "
                      "written without EXIF")


# --------------------------------------------------------------------------- conversions
def test_to_8bit_is_uint8() -> None:
    out = imageio.to_8bit(np.array([[0, 385, 65535]], np.uint16))
    assert out.dtype == np.uint8 and out.tolist() == [[0, 1, 255]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_floats_become_integers_by_format(tmp_path, dtype) -> None:
    f = np.array([[0.0, 0.5, 1.0, np.nan, -0.2, 0.25]], dtype)
    png = imageio.encodable(tmp_path / "a.png", f)
    assert png.dtype == np.uint16 and png.tolist() == [[0, 32768, 65535, 0, 0, 16384]]
    noext = imageio.encodable(tmp_path / "a", f)  # no extension: PNG
    assert noext.dtype == np.uint16 and noext.tolist() == png.tolist()
    for ext in (".jpg", ".webp", ".bmp"):
        b8 = imageio.encodable(tmp_path / f"a{ext}", f)
        assert b8.dtype == np.uint8 and b8.tolist() == [[0, 128, 255, 0, 0, 64]], ext
    for ext in (".tif", ".exr", ".pfm", ".hdr"):  # formats that keep floats: untouched
        assert imageio.encodable(tmp_path / f"a{ext}", f) is f
    assert imageio.encodable(tmp_path / "a.png", np.zeros((2, 2), np.uint8)).dtype == np.uint8


def test_floats_above_one_are_divided_by_the_largest_with_a_note(tmp_path, capsys) -> None:
    imageio._noted.clear()
    f = np.array([[0.0, 2.0, 4.0, np.inf]], np.float32)
    assert imageio.encodable(tmp_path / "h.png", f).tolist() == [[0, 32768, 65535, 65535]]
    assert imageio.encodable(tmp_path / "h.jpg", f).tolist() == [[0, 128, 255, 255]]
    err = capsys.readouterr().err
    assert f"srzoo: note: {tmp_path / 'h.png'}: float values up to 4 do not fit .png" in err
    assert "written divided by 4; write .tif, .exr or .pfm to keep them" in err


def test_16bit_to_8bit_formats_note_once_per_format(tmp_path, capsys) -> None:
    imageio._noted.clear()
    v = np.array([[0, 257, 65535]], np.uint16)
    for _ in range(2):
        assert imageio.encodable(tmp_path / "a.jpg", v).tolist() == [[0, 1, 255]]
    assert imageio.encodable(tmp_path / "a.png", v) is v
    assert imageio.encodable(tmp_path / "a.bmp", v).tolist() == [[0, 1, 255]]
    err = capsys.readouterr().err.splitlines()
    assert err == ["srzoo: note: .jpg holds 8 bits per channel: 16-bit results are written scaled to 8 bits "
                   "(use .png or .tif to keep 16 bits)",
                   "srzoo: note: .bmp holds 8 bits per channel: 16-bit results are written scaled to 8 bits "
                   "(use .png or .tif to keep 16 bits)"]


# --------------------------------------------------------------------------- errors
def test_cv_reason_is_the_last_line_cause_then_function() -> None:
    e = Exception("OpenCV(5.1.0) x.cpp:1: error: (-215:Assertion failed) a > 0 in function 'f'\n")
    assert imageio._cv_reason(e) == "a > 0 in function 'f' (Assertion failed)"
    assert imageio._cv_reason(Exception("first\n  second line  \n\n")) == "second line"
    assert imageio._cv_reason(ValueError("")) == "ValueError"


def test_encode_errors_are_one_exact_line(tmp_path, bgr) -> None:
    with pytest.raises(srzoo.ImageError) as e:
        imageio.encode(tmp_path / "a.png", np.zeros((8, 8, 7), np.uint8))
    assert str(e.value) == (f"{tmp_path / 'a.png'}: cannot encode as .png: channels == 1 || channels == 3 "
                            "|| channels == 4 in function 'imencodeWithMetadata' (Assertion failed)")
    for q in (0, 101, True, -5):
        with pytest.raises(srzoo.ImageError) as e:
            imageio.encode(tmp_path / "a.jpg", bgr, quality=q)
        assert str(e.value) == f"{tmp_path / 'a.jpg'}: quality must be from 1 to 100, got {q!r}"
    for q in (1, 100):
        assert imageio.encode(tmp_path / "a.jpg", bgr, quality=q)[:2] == b"\xff\xd8"


def test_write_errors_say_why(tmp_path, bgr) -> None:
    with pytest.raises(srzoo.ImageError) as e:
        imageio.write_image(tmp_path, bgr)
    assert str(e.value) == f"{tmp_path}: cannot write: it is a folder"
    (tmp_path / "f").write_text("x")
    with pytest.raises(srzoo.ImageError) as e:
        imageio.write_image(tmp_path / "f" / "o.png", bgr)
    assert str(e.value) == f"{tmp_path / 'f' / 'o.png'}: cannot write: a file is in the way of its folder"
    with pytest.raises(srzoo.ImageError) as e:  # a real device that is always full
        imageio.write_image("/dev/full", bgr)
    assert str(e.value) == ("/dev/full: cannot write: No space left on device (disk full: free some space "
                            "or write elsewhere)")


# --------------------------------------------------------------------------- OpenCV path
def test_quality_without_meta_is_opencvs(tmp_path, bgr) -> None:
    for ext, flag in ((".jpg", cv2.IMWRITE_JPEG_QUALITY), (".jpeg", cv2.IMWRITE_JPEG_QUALITY),
                      (".webp", cv2.IMWRITE_WEBP_QUALITY)):
        got = imageio.encode(tmp_path / f"a{ext}", bgr, quality=40)
        assert got == cv2.imencode(ext, bgr, [flag, 40])[1].tobytes(), ext
    imageio.write_image(tmp_path / "w.png", bgr)
    assert np.array_equal(cv2.imread(str(tmp_path / "w.png"), cv2.IMREAD_UNCHANGED), bgr)


# --------------------------------------------------------------------------- Pillow path (metadata)
def test_jpeg_with_meta_default_and_given_quality(tmp_path, bgr, srgb) -> None:
    meta = imageio.ImageMeta(icc=srgb, exif=_exif(x0112=6), xmp=XMP)
    rgb = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    for q, want in ((None, 95), (30, 30)):
        im = _open(imageio.encode(tmp_path / "a.jpg", bgr, meta=meta, quality=q))
        ref = io.BytesIO()
        rgb.save(ref, "JPEG", quality=want, subsampling=2)
        assert im.quantization == _open(ref.getvalue()).quantization, q
        assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0
        assert im.info["icc_profile"] == srgb and im.info["xmp"] == XMP
        assert im.getexif()[MAKE] == "SRZOO" and im.getexif()[0x0112] == 1
        assert im.size == (72, 48)
        # measured mean error on this crop (high-frequency fur, 4:2:0): 8.2 levels at q95
        assert np.abs(np.asarray(im).astype(int) - bgr[:, :, ::-1]).mean() < (12 if q is None else 25)
    # alpha has no place in a JPEG: dropped, colours kept
    bgra = np.dstack((bgr, np.full(bgr.shape[:2], 9, np.uint8)))
    im = _open(imageio.encode(tmp_path / "a.jpe", bgra, meta=meta))
    assert im.mode == "RGB" and im.info["icc_profile"] == srgb
    assert np.abs(np.asarray(im).astype(int) - bgr[:, :, ::-1]).mean() < 12


def test_png_with_meta_is_lossless_in_every_layout(tmp_path, bgr, srgb) -> None:
    meta = imageio.ImageMeta(icc=srgb, text={"Comment": "hi"})
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = np.dstack((bgr, np.arange(48 * 72, dtype=np.uint32).reshape(48, 72).astype(np.uint8)))
    for img, mode, want in ((grey, "L", grey), (grey[:, :, None], "L", grey),
                            (bgr, "RGB", bgr[:, :, ::-1]), (bgra, "RGBA", bgra[:, :, [2, 1, 0, 3]])):
        im = _open(imageio.encode(tmp_path / "a.png", img, meta=meta))
        assert im.mode == mode and im.info["icc_profile"] == srgb and im.info["Comment"] == "hi"
        assert np.array_equal(np.asarray(im), want), mode


def test_webp_with_meta_lossless_by_default_lossy_with_quality(tmp_path, bgr, srgb) -> None:
    meta = imageio.ImageMeta(icc=srgb, xmp=XMP)
    bgra = np.dstack((bgr, np.full(bgr.shape[:2], 200, np.uint8)))
    im = _open(imageio.encode(tmp_path / "a.webp", bgra, meta=meta))
    assert im.format == "WEBP" and im.info["icc_profile"] == srgb and im.info["xmp"] == XMP
    assert np.array_equal(np.asarray(im), bgra[:, :, [2, 1, 0, 3]])
    lossy = imageio.encode(tmp_path / "a.webp", bgr, meta=meta, quality=20)
    im = _open(lossy)
    assert im.info["icc_profile"] == srgb  # still written by Pillow, with the metadata
    err = np.abs(np.asarray(im.convert("RGB")).astype(int) - bgr[:, :, ::-1]).mean()
    assert 1.0 < err < 20.0


def test_tiff_with_meta_compresses_unless_exif(tmp_path, bgr, srgb) -> None:
    im = _open(imageio.encode(tmp_path / "a.tif", bgr, meta=imageio.ImageMeta(icc=srgb, xmp=XMP)))
    assert im.info["compression"] == "tiff_lzw" and im.info["icc_profile"] == srgb
    assert bytes(im.tag_v2[700]) == XMP  # XMP was silently dropped from TIFF outputs before
    assert np.array_equal(np.asarray(im), bgr[:, :, ::-1])
    data = imageio.encode(tmp_path / "a.tiff", bgr, meta=imageio.ImageMeta(icc=srgb, exif=_exif(), xmp=XMP))
    im = _open(data)
    assert im.info["compression"] == "raw" and im.getexif()[MAKE] == "SRZOO"
    assert bytes(im.tag_v2[700]) == XMP and im.info["icc_profile"] == srgb
    assert imageio.read_meta(data).xmp == XMP  # and srzoo reads it back


def test_png_xmp_and_odd_keys_through_pillow(tmp_path, bgr) -> None:
    meta = imageio.ImageMeta(xmp=XMP + b"\xff", text={"Gr\u00f6\u00dfe": "gr\u00fcn"})
    im = _open(imageio.encode(tmp_path / "a.png", bgr, meta=meta))
    assert im.info["XML:com.adobe.xmp"] == (XMP + b"\xff").decode("utf-8", "replace")
    assert im.info["Gr\u00f6\u00dfe"] == "gr\u00fcn"


# --------------------------------------------------------------------------- 16-bit PNG (chunks added here)
def test_16bit_png_chunks(tmp_path, bgr, srgb) -> None:
    img16 = bgr.astype(np.uint16) * 257 + 3
    long_key = "k" * 100
    meta = imageio.ImageMeta(icc=srgb, exif=_exif(x0112=8), xmp=XMP + b"\xfe",
                             text={"Comment": "gr\u00fcn", "Gr\u00f6\u00df\u20ac": "v", long_key: "long"})
    data = imageio.encode(tmp_path / "a.png", img16, meta=meta)
    chunks = _chunks(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert kinds[1:6] == [b"iCCP", b"eXIf", b"iTXt", b"iTXt", b"iTXt"]
    iccp = dict(chunks)[b"iCCP"]
    assert iccp.startswith(b"ICC Profile\0\0") and zlib.decompress(iccp[13:]) == srgb
    itxt = [d for k, d in chunks if k == b"iTXt"]
    keys = [d.split(b"\0", 1)[0] for d in itxt]
    assert keys == [b"Comment", b"Gr\xf6\xdf?", b"k" * 79, b"XML:com.adobe.xmp"]
    assert itxt[0] == b"Comment\0\0\0\0\0gr\xc3\xbcn"
    assert itxt[3] == b"XML:com.adobe.xmp\0\0\0\0\0" + XMP + b"\xef\xbf\xbd"
    # and independently: OpenCV reads the 16-bit pixels, Pillow the metadata
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), img16)
    im = _open(data)
    assert im.info["icc_profile"] == srgb
    ex = im.getexif()
    assert ex[MAKE] == "SRZOO" and ex[0x0112] == 1 and ex.get_ifd(0x8769)[0xA002] == 72


def test_meta_that_a_format_cannot_hold_is_noted(tmp_path, bgr, srgb, capsys) -> None:
    imageio._noted.clear()
    meta = imageio.ImageMeta(icc=srgb)
    img16 = bgr.astype(np.uint16) * 257
    data = imageio.encode(tmp_path / "a.tif", img16, meta=meta)
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), img16)
    data = imageio.encode(tmp_path / "a.bmp", bgr, meta=meta)
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), bgr)
    err = capsys.readouterr().err.splitlines()
    assert err == ["srzoo: note: .tif files of uint16 pixels are written without the input's ICC profile "
                   "and EXIF",
                   "srzoo: note: .bmp files of uint8 pixels are written without the input's ICC profile "
                   "and EXIF"]


# --------------------------------------------------------------------------- second mutation run
def test_float_scaling_boundary_and_one_note_per_format(tmp_path, capsys) -> None:
    imageio._noted.clear()
    exact = np.array([[0.0, 0.5, 1.0]], np.float64)
    assert imageio.encodable(tmp_path / "a.png", exact).tolist() == [[0, 32768, 65535]]
    edge = np.array([[0.0, 1.0 + 1e-6]], np.float64)  # within the tolerance: not divided
    assert imageio.encodable(tmp_path / "a.png", edge).tolist() == [[0, 65535]]
    assert capsys.readouterr().err == ""  # nothing said for values that fit
    nan = np.full((2, 2), np.nan, np.float32)  # no finite value at all: zeros, no error
    assert imageio.encodable(tmp_path / "a.png", nan).tolist() == [[0, 0], [0, 0]]
    over = np.array([[0.0, 0.75, 1.5]], np.float32)  # just above 1: divided by 1.5
    assert imageio.encodable(tmp_path / "b.png", over).tolist() == [[0, 32768, 65535]]
    assert imageio.encodable(tmp_path / "b.jpg", over).tolist() == [[0, 128, 255]]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "float values up to 1.5 do not fit .png" in err[0]
    assert "do not fit .jpg" in err[1]


def test_other_write_errors_give_the_system_reason(tmp_path, bgr) -> None:
    p = tmp_path / ("x" * 300 + ".png")
    with pytest.raises(srzoo.ImageError) as e:
        imageio.write_image(p, bgr)
    assert str(e.value) == f"{p}: cannot write: File name too long"


def test_png_xmp_is_read_back_as_bytes(tmp_path, bgr) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.decode() + "\u00e9")
    info.add_text("Comment", "c")
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(tmp_path / "x.png", pnginfo=info)
    meta = imageio.read_meta(tmp_path / "x.png")
    assert meta.format == "PNG" and meta.xmp == XMP + b"\xc3\xa9"
    assert meta.text == {"Comment": "c"} and meta.icc is None and meta.exif is None


def test_umask_is_read_without_changing_it() -> None:
    import os

    old = os.umask(0o027)
    try:
        assert imageio._umask() == 0o027
        assert os.umask(0o027) == 0o027  # still what it was
    finally:
        os.umask(old)


def test_as_bytes_takes_text_from_older_pillows() -> None:
    # Pillow 13 returns XMP as bytes; older versions (and TIFF tags) may give str
    assert imageio._as_bytes("<x/>\u00e9") == b"<x/>\xc3\xa9"
    assert imageio._as_bytes(b"ab") == b"ab"
    for empty in ("", b"", None, 5, (1, 2)):
        assert imageio._as_bytes(empty) is None


# --------------------------------------------------------------------------- fresh run (2026-12-05)
def _hdr(img: np.ndarray) -> bytes:
    return cv2.imencode(".hdr", img)[1].tobytes()


def test_header_numbers_cut_off_at_the_end_of_the_head_are_not_read(tmp_path) -> None:
    img = np.random.default_rng(0).random((40, 52, 3), np.float32)
    data = _hdr(img)
    line = data.index(b"\n\n-Y 40 +X 52\n")
    # a comment line long enough that the "52" of the size line straddles byte 4096
    pad = 4095 - (line + 1 + len(b"\n\n-Y 40 +X "))
    hdr = data[:line] + b"\n#" + b"c" * (pad - 1) + data[line:]
    assert hdr[4095:4097] == b"52"
    (tmp_path / "cut.hdr").write_bytes(hdr)
    assert imageio.header_size(tmp_path / "cut.hdr") is None  # was (5, 40): the 2 was never read
    assert imageio.read_image(tmp_path / "cut.hdr")[0].shape == (40, 52, 3)  # a valid file all the same
    pfm = cv2.imencode(".pfm", img[:, :, 0])[1].tobytes()
    body = pfm[pfm.index(b"-1\n") + 3:]
    # leading zeros OpenCV reads: the height's "40" straddles byte 64, the end of what is parsed
    zeros = b"Pf\n" + b"0" * 57 + b"52 40\n-1\n" + body
    assert zeros[63:65] == b"40"
    (tmp_path / "zeros.pfm").write_bytes(zeros)
    assert imageio.header_size(tmp_path / "zeros.pfm") is None  # was (52, 4)
    assert imageio.read_image(tmp_path / "zeros.pfm")[0].shape == (40, 52)


def _png_header(path, w: int, h: int):
    """A PNG whose IHDR claims w x h grey pixels (what imagesize reads; the body is not valid)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + b"\0\0\0\0IEND\xaeB`\x82")
    return path


def _tiff_exif(orientation: int) -> bytes:
    """A little-endian EXIF block laid out as no Pillow would write it (IFD0 at offset 12)."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<HH", orientation, 0)
    return b"II*\0" + struct.pack("<I", 12) + b"\0" * 4 + ifd + struct.pack("<I", 0)


def _jpeg(bgr: np.ndarray, exif: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    kw = {"exif": b"Exif\0\0" + exif} if exif is not None else {}
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def test_text_headers_every_magic_and_order(tmp_path) -> None:
    img = np.random.default_rng(1).random((40, 52, 3), np.float32)
    grey = cv2.imencode(".pfm", img[:, :, 0])[1].tobytes()
    assert grey[:3] == b"Pf\n"  # grey PFM; colour is "PF"
    (tmp_path / "g.pfm").write_bytes(grey)
    assert imageio.header_size(tmp_path / "g.pfm") == (52, 40)
    hdr = _hdr(img)
    assert hdr.startswith(b"#?RADIANCE\n")  # what OpenCV writes; other writers say #?RGBE
    (tmp_path / "rgbe.hdr").write_bytes(b"#?RGBE" + hdr[len(b"#?RADIANCE"):])
    assert imageio.header_size(tmp_path / "rgbe.hdr") == (52, 40)
    assert imageio.read_image(tmp_path / "rgbe.hdr")[0].shape == (40, 52, 3)
    # the size line in the other order (columns first): X is still the width
    (tmp_path / "cols.hdr").write_bytes(hdr.replace(b"\n-Y 40 +X 52\n", b"\n+X 52 -Y 40\n"))
    assert imageio.header_size(tmp_path / "cols.hdr") == (52, 40)
    # damaged PFM headers: no size, and an ImageError (OpenCV's verdict), never a ValueError
    body = grey[grey.index(b"-1\n") + 3:]
    for name, data in (("neg.pfm", b"Pf\n-52 40\n-1\n" + body), ("bare.pfm", b"PF"),
                       ("one.pfm", b"Pf\n52"), ("word.pfm", b"PF\nwide 40\n-1\n" + body)):
        (tmp_path / name).write_bytes(data)
        assert imageio.header_size(tmp_path / name) is None, name
        with pytest.raises(srzoo.ImageError, match=rf"^{tmp_path / name}: "):
            imageio.read_image(tmp_path / name)


def test_header_size_reads_only_the_head_and_only_positive_sizes(tmp_path) -> None:
    img = np.random.default_rng(2).random((40, 52, 3), np.float32)
    data = _hdr(img)
    line = data.index(b"\n\n-Y")
    long = data[:line] + b"\n#" + b"c" * 5000 + data[line:]  # size line past the first 4 KB
    (tmp_path / "long.hdr").write_bytes(long)
    assert imageio.header_size(tmp_path / "long.hdr") is None  # not read: checked after decoding
    assert imageio.read_image(tmp_path / "long.hdr")[0].shape == (40, 52, 3)
    for w, h in ((0, 40), (52, 0)):  # imagesize reports these as they are: no size
        assert imageio.header_size(_png_header(tmp_path / f"{w}x{h}.png", w, h)) is None
    assert imageio.header_size(_png_header(tmp_path / "1x1.png", 1, 1)) == (1, 1)
    ras = tmp_path / "x.ras"  # Sun raster: OpenCV decodes it, imagesize says (-1, -1)
    ras.write_bytes(cv2.imencode(".ras", np.zeros((40, 52, 3), np.uint8))[1].tobytes())
    assert imageio.header_size(ras) is None


def test_megapixels_in_messages() -> None:
    assert imageio.megapixels(9_999) == "9999 pixels"
    assert imageio.megapixels(10_000) == "0.01 MP"
    assert imageio.megapixels(1_050_000) == "1.1 MP"  # two significant digits, 1.05 rounded up
    assert imageio.megapixels(9_990_000) == "10 MP"
    assert imageio.megapixels(11_500_000) == "12 MP"  # whole MP from 10 MP on
    assert imageio.megapixels(1_073_741_824) == "1074 MP"  # 32768 x 32768


def test_limit_messages_before_and_after_decoding(tmp_path, bgr, monkeypatch) -> None:
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), bgr[:40, :52])  # 52 x 40 = 2080 pixels
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "2080")
    assert imageio.read_image(p)[0].shape == (40, 52, 3)  # default scale 1: exactly at the limit
    data = np.fromfile(str(p), np.uint8)
    assert imageio.decode(data, "buf")[0].shape == (40, 52, 3)
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "2079")
    with pytest.raises(srzoo.ImageError) as e:
        imageio.read_image(p)
    assert str(e.value) == (f"{p}: a 52x40 image is 2080 pixels, above the limit of 2079 pixels (refused "
                            "before decoding); downscale or crop it, or raise SRZOO_MAX_PIXELS")
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "8319")
    with pytest.raises(srzoo.ImageError) as e:  # bytes (a URL's): their header is read first too
        imageio.decode(data, "buf", scale=2)
    assert str(e.value) == ("buf: a 52x40 image gives 104x80 at x2, 8320 pixels, above the limit of "
                            "8319 pixels (refused before decoding); downscale or crop it, or raise "
                            "SRZOO_MAX_PIXELS")
    with pytest.raises(srzoo.ImageError) as e:  # the caller read the header: checked once decoded
        imageio.decode(data, "buf", scale=2, header_checked=True)
    assert str(e.value) == ("buf: a 52x40 image gives 104x80 at x2, 8320 pixels, above the limit of "
                            "8319 pixels; downscale or crop it, or raise SRZOO_MAX_PIXELS")
    ras = tmp_path / "a.ras"  # a header imagesize cannot read: the scale still counts after decoding
    ras.write_bytes(cv2.imencode(".ras", bgr[:40, :52])[1].tobytes())
    with pytest.raises(srzoo.ImageError) as e:
        imageio.read_image(ras, scale=2)
    assert str(e.value) == (f"{ras}: a 52x40 image gives 104x80 at x2, 8320 pixels, above the limit of "
                            "8319 pixels; downscale or crop it, or raise SRZOO_MAX_PIXELS")


def test_decode_bytes_errors_and_metadata(bgr) -> None:
    with pytest.raises(srzoo.ImageError) as e:
        imageio.decode(np.zeros(0, np.uint8), "buf")
    assert str(e.value) == "buf: not an image OpenCV can decode (empty, truncated or unknown format)"
    with pytest.raises(srzoo.ImageError) as e:
        imageio.decode(np.zeros((3, 3), np.uint8), "buf")  # pixels, not an encoded buffer
    assert str(e.value) == ("buf: cannot decode: buf.checkVector(1, CV_8U) > 0 in function 'imdecode_' "
                            "(Assertion failed)")
    block = _tiff_exif(6)
    data = np.frombuffer(_jpeg(bgr, block), np.uint8)
    img, meta = imageio.decode(data, "buf")  # no source file: the metadata from the bytes
    assert meta.format == "JPEG" and meta.orientation == 6 and meta.exif == block
    as_stored = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # OpenCV ignores EXIF orientation here
    assert np.array_equal(img, np.rot90(as_stored, -1))  # turned upright: 90 degrees clockwise


def test_read_image_errors_are_exact(tmp_path) -> None:
    with pytest.raises(srzoo.ImageError) as e:
        imageio.read_image(123)
    assert str(e.value) == "image must be a numpy array or a path, got int"
    with pytest.raises(srzoo.ImageError) as e:
        imageio.read_image(tmp_path)
    assert str(e.value) == f"{tmp_path}: is a folder, not an image"
    with pytest.raises(srzoo.ImageError) as e:
        imageio.read_image(tmp_path / "none.png")
    assert str(e.value) == f"{tmp_path / 'none.png'}: no such file"
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    with pytest.raises(srzoo.ImageError) as e:
        imageio.read_image(loop)
    assert str(e.value) == f"{loop}: cannot read: Too many levels of symbolic links"


def test_read_meta_exif_as_in_the_file(tmp_path, bgr) -> None:
    block = _tiff_exif(6)
    meta = imageio.read_meta(_jpeg(bgr, block))
    assert meta.exif == block  # the file's bytes, without "Exif\0\0", not Pillow's rewrite
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(buf, "WEBP", lossless=True,
                                                                exif=b"Exif\0\0" + block)
    meta = imageio.read_meta(buf.getvalue())
    assert meta.format == "WEBP" and meta.exif == block and meta.orientation == 6  # WebP: the same
    for o in (0, 9):  # out of range: upright as it is
        meta = imageio.read_meta(_jpeg(bgr, _tiff_exif(o)))
        assert meta.orientation == 1 and meta.exif == _tiff_exif(o)
        f = tmp_path / f"o{o}.jpg"
        f.write_bytes(_jpeg(bgr, _tiff_exif(o)))
        assert np.array_equal(imageio.read_image(f)[0], cv2.imread(str(f), cv2.IMREAD_UNCHANGED))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(_jpeg(bgr, b"garbage, not a TIFF structure"))
    img, meta = imageio.read_image(bad)  # Pillow cannot load the EXIF: no orientation
    assert meta.orientation == 1 and np.array_equal(img, cv2.imread(str(bad), cv2.IMREAD_UNCHANGED))


def test_read_meta_tiff_exif_and_files_without_metadata(tmp_path, bgr) -> None:
    ex = Image.Exif()
    ex[MAKE] = "SRZOO"
    ex[0x0112] = 3
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(tmp_path / "a.tif", exif=ex)
    meta = imageio.read_meta(tmp_path / "a.tif")  # TIFF: the EXIF tags are IFD0's
    got = Image.Exif()
    got.load(meta.exif)
    assert meta.format == "TIFF" and got[MAKE] == "SRZOO" and meta.orientation == 3
    for ext in (".webp", ".png"):
        cv2.imwrite(str(tmp_path / f"p{ext}"), bgr)
        meta = imageio.read_meta(tmp_path / f"p{ext}")
        assert not meta and meta.exif is None and meta.orientation == 1, ext
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()  # text chunks named like Pillow's own keys are not text
    info.add_text("icc_profile", "x")
    info.add_text("Comment", "c")
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(tmp_path / "t.png", pnginfo=info)
    assert imageio.read_meta(tmp_path / "t.png").text == {"Comment": "c"}


def test_too_many_pixels_for_pillow_is_one_note(tmp_path, bgr, capsys, monkeypatch) -> None:
    imageio._noted.clear()
    bomb = _png_header(tmp_path / "bomb.png", 20000, 20000)  # 400 MP: past Pillow's own limit
    assert imageio.read_meta(bomb) == imageio.ImageMeta()
    assert capsys.readouterr().err == ("srzoo: note: image: too many pixels for Pillow to read its metadata; "
                                       "the result is written without ICC/EXIF and its EXIF orientation is "
                                       "not applied\n")
    imageio._noted.clear()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above 2x this: 72 x 48 is
    p = tmp_path / "o6.jpg"
    p.write_bytes(_jpeg(bgr, _tiff_exif(6)))
    img, meta = imageio.read_image(p)
    assert img.shape == (48, 72, 3) and not meta  # not turned: the orientation was not read
    assert capsys.readouterr().err == (f"srzoo: note: {p}: too many pixels for Pillow to read its metadata; "
                                       "the result is written without ICC/EXIF and its EXIF orientation is "
                                       "not applied\n")


def test_encode_paths_by_extension_and_meta(tmp_path, bgr, srgb, capsys) -> None:
    imageio._noted.clear()
    im = _open(imageio.encode(tmp_path / "noext", bgr, meta=imageio.ImageMeta(icc=srgb)))
    assert im.format == "PNG" and im.info["icc_profile"] == srgb  # no extension: PNG, with its ICC
    got = imageio.encode(tmp_path / "a.jpe", bgr, quality=40)
    assert got == cv2.imencode(".jpe", bgr, [cv2.IMWRITE_JPEG_QUALITY, 40])[1].tobytes()
    webp = imageio.encode(tmp_path / "a.webp", bgr)  # no quality: OpenCV's lossless WebP
    assert np.array_equal(cv2.imdecode(np.frombuffer(webp, np.uint8), cv2.IMREAD_UNCHANGED), bgr)
    img16 = bgr.astype(np.uint16) * 257
    assert imageio.encode(tmp_path / "a.tif", img16) == cv2.imencode(".tif", img16)[1].tobytes()
    assert imageio.encode(tmp_path / "a.tif", img16, meta=imageio.ImageMeta(icc=srgb)) == \
        cv2.imencode(".tif", img16)[1].tobytes()  # (noted) nothing added to a format without room
    assert imageio.encode(tmp_path / "a.bmp", bgr, meta=imageio.ImageMeta(icc=srgb)) == \
        cv2.imencode(".bmp", bgr)[1].tobytes()
    capsys.readouterr()
    png16 = imageio.encode(tmp_path / "a.png", img16, meta=imageio.ImageMeta(icc=srgb, exif=_exif()))
    assert capsys.readouterr().err == ""  # a 16-bit PNG holds them: nothing to say
    ex = _open(png16).getexif().get_ifd(0x8769)
    assert (ex[0xA002], ex[0xA003]) == (72, 48)


def test_pillow_failure_is_noted_and_written_by_opencv(tmp_path, bgr, srgb, capsys) -> None:
    imageio._noted.clear()
    p = tmp_path / "big.jpg"  # a JPEG segment holds at most 64 KB: Pillow refuses this XMP
    data = imageio.encode(p, bgr, meta=imageio.ImageMeta(icc=srgb, xmp=b"x" * 70000))
    assert data == cv2.imencode(".jpg", bgr)[1].tobytes()
    assert capsys.readouterr().err == (f"srzoo: note: {p}: metadata cannot be written (XMP data is too "
                                       "long); written without it\n")


def test_pillow_png_is_fast_zlib_like_opencvs(bgr, tmp_path, srgb) -> None:
    def flevel(png: bytes) -> int:  # zlib's compression-level field of the first IDAT
        return dict(_chunks(png))[b"IDAT"][1] >> 6

    assert flevel(cv2.imencode(".png", bgr)[1].tobytes()) == 0
    # big upscaled results: level 1 (fastest) as OpenCV, not Pillow's default 6
    assert flevel(imageio.encode(tmp_path / "a.png", bgr, meta=imageio.ImageMeta(icc=srgb))) == 0


def test_tiff_with_meta_but_no_xmp(tmp_path, bgr, srgb) -> None:
    im = _open(imageio.encode(tmp_path / "a.tif", bgr, meta=imageio.ImageMeta(icc=srgb)))
    assert im.info["icc_profile"] == srgb and im.info["compression"] == "tiff_lzw" and 700 not in im.tag_v2
    im = _open(imageio.encode(tmp_path / "a.tif", bgr, meta=imageio.ImageMeta(icc=srgb, exif=_exif())))
    assert im.info["icc_profile"] == srgb and im.getexif()[MAKE] == "SRZOO" and 700 not in im.tag_v2
    assert np.array_equal(np.asarray(im), bgr[:, :, ::-1])


# --------------------------------------------------------------------------- orientation only from EXIF
XMP_ROTATED = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
               b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
               b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')


@pytest.mark.parametrize("fmt", ["WEBP", "JPEG"])
def test_xmp_orientation_without_exif_is_not_applied_in_any_format(fmt) -> None:
    """Browsers turn a picture by its EXIF only; a WebP whose XMP alone says 6 was turned
    (Pillow's getexif() makes an EXIF block from the XMP) while the same JPEG was not."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(buf, fmt, xmp=XMP_ROTATED,
                                                        **({"lossless": True} if fmt == "WEBP" else {}))
    meta = imageio.read_meta(buf.getvalue())
    assert meta.format == fmt and XMP_ROTATED in meta.xmp
    assert (meta.orientation, meta.exif) == (1, None)  # nothing invented into the result's EXIF


def test_tiff_exif_keeps_the_picture_tags_not_the_file_layout(tmp_path) -> None:
    """A TIFF's first IFD holds its EXIF tags and its own strip offsets, sizes and
    compression: only the first kind may travel into a result."""
    ex = Image.Exif()
    ex[MAKE] = "SRZOO"
    ex[0x0112] = 6
    ex[0x8298] = "(c) someone"  # Copyright
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(buf, "TIFF", exif=ex)
    meta = imageio.read_meta(buf.getvalue())
    got = Image.Exif()
    got.load(meta.exif)
    assert dict(got) == {MAKE: "SRZOO", 0x0112: 6, 0x8298: "(c) someone"}  # no 256-279, 284
    assert meta.orientation == 6
    # end to end: the result is the picture turned upright once (OpenCV 5.1 turns TIFFs
    # itself: they were turned twice, 180 degrees off), its EXIF the picture's tags
    ramp = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    src = tmp_path / "t.tif"
    Image.fromarray(ramp).save(src, "TIFF", exif=ex)
    from srzoo.cli import main

    assert main(["upscale", str(src), "-m", "nearest", "-s", "2", "--format", "png",
                 "-o", str(tmp_path / "out"), "-q"]) == 0
    (out,) = (tmp_path / "out").iterdir()
    res = Image.open(out)
    upright = np.rot90(ramp, k=-1)  # 6: the stored rows are the picture's columns, turned clockwise
    assert np.array_equal(np.asarray(res), upright.repeat(2, 0).repeat(2, 1))
    tags = res.getexif()
    assert (tags[MAKE], tags[0x0112]) == ("SRZOO", 1)
    assert not {0x0100, 0x0101, 0x0102, 0x0103, 0x0111, 0x0117} & set(tags)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_and_jpeg_of_one_picture_come_out_the_same_way_up(tmp_path, orientation) -> None:
    """Every orientation, TIFF against PNG with the same EXIF tag (OpenCV turns neither PNG
    nor, before 5.1, TIFF; srzoo must turn each exactly once)."""
    ramp = (np.arange(24, dtype=np.uint8).reshape(4, 6) * 10)
    ex = Image.Exif()
    ex[0x0112] = orientation
    got = {}
    for ext in ("tif", "png"):
        p = tmp_path / f"o{orientation}.{ext}"
        Image.fromarray(ramp).save(p, exif=ex)
        got[ext], meta = imageio.read_image(p)
        assert meta.orientation == orientation
    assert np.array_equal(got["tif"], got["png"])
    if orientation == 8:  # turned counter-clockwise
        assert np.array_equal(got["png"], np.rot90(ramp))
