"""Photos keep what makes them photos: EXIF orientation applied on reading, ICC
profile, EXIF (camera, date; new pixel size, orientation 1), XMP and PNG text
carried into the result. The photos are made here with Pillow from a real
image (Set14), and read back with Pillow, independently of srzoo's reader."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

import srzoo
from srzoo.cli import main
from srzoo.runtime import imageio

MAKE, MODEL, DATE = 0x010F, 0x0110, 0x9003
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
       b'22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
       b'dc:creator="srzoo test"/></rdf:RDF></x:xmpmeta>')


@pytest.fixture(scope="module")
def srgb() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def upright(shared_dir) -> np.ndarray:
    """What the camera saw (BGR, 72 wide x 48 high: not square, so a turn shows)."""
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))
    return np.ascontiguousarray(img[100:148, 200:272])


def camera_jpeg(path, upright: np.ndarray, icc: bytes, orientation: int = 6):
    """A JPEG as a phone writes it: the sensor's pixels (turned 90° counter-clockwise
    from upright) with EXIF orientation 6, camera and date, an sRGB profile and XMP."""
    stored = np.rot90(upright, 1)  # counter-clockwise: orientation 6 turns it back
    ex = Image.Exif()
    ex[MAKE], ex[MODEL], ex[0x0112] = "SRZOO", "Test Camera 1", orientation
    sub = ex.get_ifd(0x8769)
    sub[DATE] = "2024:05:01 12:34:56"
    sub[0xA002], sub[0xA003] = stored.shape[1], stored.shape[0]
    Image.fromarray(np.ascontiguousarray(stored[:, :, ::-1])).save(
        path, "JPEG", quality=95, icc_profile=icc, exif=ex.tobytes(), xmp=XMP)
    return path


def exif_of(im: Image.Image) -> tuple[Image.Exif, dict]:
    ex = im.getexif()
    return ex, dict(ex.get_ifd(0x8769))


def test_read_applies_orientation_like_pillow(tmp_path, upright, srgb):
    src = camera_jpeg(tmp_path / "photo.jpg", upright, srgb)
    with Image.open(src) as im:
        ref = np.asarray(ImageOps.exif_transpose(im))[:, :, ::-1]  # Pillow's upright, BGR
    img, meta = imageio.read_image(src)
    assert img.shape == (48, 72, 3) == ref.shape
    assert np.abs(img.astype(int) - ref).mean() < 1.0  # two JPEG decoders: within a level
    err = np.abs(img.astype(int) - upright).mean()  # what the camera saw, through JPEG q95
    assert err < 12.0 and np.abs(img.astype(int) - upright[::-1, ::-1]).mean() > 3 * err
    sideways = cv2.imdecode(np.fromfile(str(src), np.uint8), cv2.IMREAD_UNCHANGED)
    assert sideways.shape == (72, 48, 3)  # OpenCV alone leaves it lying on its side
    assert meta.orientation == 6 and meta.icc == srgb and meta.xmp == XMP
    # srzoo.upscale(path) is upright too
    assert srzoo.upscale(src, "nearest", 2).shape == (96, 144, 3)


@pytest.mark.parametrize("o", range(1, 9))
def test_every_orientation_matches_pillow(tmp_path, upright, srgb, o):
    src = tmp_path / f"o{o}.png"  # lossless, so the pixels must be equal
    ex = Image.Exif()
    ex[0x0112] = o
    Image.fromarray(np.ascontiguousarray(upright[:, :, ::-1])).save(src, "PNG", exif=ex.tobytes())
    with Image.open(src) as im:
        ref = np.asarray(ImageOps.exif_transpose(im))[:, :, ::-1]
    assert np.array_equal(imageio.load_image(src), ref)


def test_cli_jpeg_keeps_format_orientation_icc_exif_xmp(models_env, tmp_path, upright, srgb):
    src = camera_jpeg(tmp_path / "in.jpg", upright, srgb)
    out = tmp_path / "out"
    assert main(["upscale", str(src), "-m", "nearest", "-s", "2", "-o", str(out), "-q"]) == 0
    dst = out / "in_nearest_x2.jpg"  # JPEG in, JPEG out; model and scale in the name
    assert sorted(p.name for p in out.iterdir()) == [dst.name]
    with Image.open(dst) as im:
        assert im.format == "JPEG" and im.size == (144, 96)  # upright: wider than high
        assert im.info["icc_profile"] == srgb
        assert im.info.get("xmp") == XMP
        ex, sub = exif_of(im)
        got = np.asarray(im.convert("RGB"))[:, :, ::-1]
    assert ex[MAKE] == "SRZOO" and ex[MODEL] == "Test Camera 1" and sub[DATE] == "2024:05:01 12:34:56"
    assert ex[0x0112] == 1  # applied to the pixels, so no longer asked of viewers
    assert (sub[0xA002], sub[0xA003]) == (144, 96)
    ref = cv2.resize(imageio.load_image(src), (144, 96), interpolation=cv2.INTER_NEAREST)
    assert np.abs(got.astype(int) - ref).mean() < 4.0  # upright pixels, through JPEG twice
    assert np.abs(got.astype(int) - np.rot90(ref, 2)).mean() > 20.0  # the test can fail


def test_png_output_holds_icc_exif_and_text(models_env, tmp_path, upright, srgb):
    src = camera_jpeg(tmp_path / "in.jpg", upright, srgb)
    out = tmp_path / "o"
    assert main(["upscale", str(src), "-m", "nearest", "-s", "2", "-o", str(out), "--format", "png",
                 "-q"]) == 0
    with Image.open(out / "in_nearest_x2.png") as im:
        assert im.size == (144, 96) and im.info["icc_profile"] == srgb
        ex, sub = exif_of(im)
        assert ex[MAKE] == "SRZOO" and sub[DATE] == "2024:05:01 12:34:56" and ex[0x0112] == 1
        assert XMP.decode() in im.info.get("XML:com.adobe.xmp", "")


@pytest.mark.parametrize("depth", [8, 16])
def test_png_text_and_icc_kept_in_8_and_16_bit(models_env, tmp_path, upright, srgb, depth):
    src = tmp_path / "in.png"
    if depth == 8:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "made by the srzoo test")
        info.add_itxt("Description", "grüne Blätter")
        Image.fromarray(np.ascontiguousarray(upright[:, :, ::-1])).save(src, pnginfo=info,
                                                                          icc_profile=srgb)
    else:  # Pillow cannot write 16-bit colour: OpenCV writes it, srzoo adds the chunks
        img16 = upright.astype(np.uint16) * 257 + 3
        meta = imageio.ImageMeta(icc=srgb, text={"Comment": "made by the srzoo test",
                                                 "Description": "grüne Blätter"})
        imageio.write_image(src, img16, meta=meta)
    assert main(["upscale", str(src), "-m", "nearest", "-s", "2", "-o", str(tmp_path / "o"), "-q"]) == 0
    dst = tmp_path / "o" / "in_nearest_x2.png"
    with Image.open(dst) as im:
        assert im.info["icc_profile"] == srgb
        assert im.info["Comment"] == "made by the srzoo test"
        assert im.info["Description"] == "grüne Blätter"
    got = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    want = cv2.resize(cv2.imread(str(src), cv2.IMREAD_UNCHANGED), (144, 96),
                      interpolation=cv2.INTER_NEAREST)
    assert got.dtype == (np.uint8 if depth == 8 else np.uint16)
    assert np.array_equal(got, want)  # lossless, 16 bits kept


def test_alpha_png_keeps_alpha_and_icc(models_env, tmp_path, upright, srgb):
    src = tmp_path / "a.png"
    rgba = np.dstack((upright[:, :, ::-1], np.full(upright.shape[:2], 255, np.uint8)))
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(src, icc_profile=srgb)
    assert main(["upscale", str(src), "-m", "nearest", "-s", "2", "-o", str(tmp_path / "o"), "-q"]) == 0
    with Image.open(tmp_path / "o" / "a_nearest_x2.png") as im:
        assert im.mode == "RGBA" and im.info["icc_profile"] == srgb
        a = np.asarray(im)[:, :, 3]
    assert (a[:20, :20] == 0).all() and (a[20:, 20:] == 255).all()


def test_webp_and_tiff_outputs_hold_icc_and_exif(models_env, tmp_path, upright, srgb):
    src = camera_jpeg(tmp_path / "in.jpg", upright, srgb)
    for fmt, name in (("webp", "in_nearest_x2.webp"), ("tif", "in_nearest_x2.tif")):
        assert main(["upscale", str(src), "-m", "nearest", "-s", "2", "-o", str(tmp_path / fmt),
                     "--format", fmt, "-q"]) == 0
        with Image.open(tmp_path / fmt / name) as im:
            assert im.size == (144, 96) and im.info["icc_profile"] == srgb, fmt
            ex = im.getexif()
            assert ex[MAKE] == "SRZOO" and ex.get(0x0112, 1) == 1, fmt


def test_quality_sets_jpeg_size(models_env, tmp_path, upright, srgb):
    src = camera_jpeg(tmp_path / "in.jpg", upright, srgb)
    sizes = {}
    for q in (30, 95):
        d = tmp_path / f"q{q}"
        assert main(["upscale", str(src), "-m", "nearest", "-s", "2", "-o", str(d), "--quality", str(q),
                     "-q"]) == 0
        sizes[q] = (d / "in_nearest_x2.jpg").stat().st_size
    assert sizes[30] < 0.6 * sizes[95]


def test_damaged_exif_is_not_fatal(tmp_path, upright):
    src = tmp_path / "bad.jpg"
    cv2.imwrite(str(src), upright)
    data = src.read_bytes()
    # an APP1 Exif segment whose TIFF structure is garbage
    seg = b"Exif\0\0MM\0*\xff\xff\xff\xff garbage"
    src.write_bytes(data[:2] + b"\xff\xe1" + (len(seg) + 2).to_bytes(2, "big") + seg + data[2:])
    img, meta = imageio.read_image(src)
    assert img.shape == (48, 72, 3) and meta.orientation == 1
    imageio.write_image(tmp_path / "o.jpg", img, meta=meta)  # written, EXIF or not
    assert cv2.imread(str(tmp_path / "o.jpg")).shape == (48, 72, 3)


def test_bomb_refused_before_pillow_or_opencv_reads_it(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "bomb.png"  # a few hundred bytes claiming 30000x30000 pixels
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    with pytest.raises(srzoo.ImageError, match="refused before decoding"):
        imageio.read_image(bomb, scale=2)
