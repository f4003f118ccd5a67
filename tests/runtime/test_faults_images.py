"""Hostile images: decompression bombs, undecodable files, 16-bit results in
8-bit formats, HDR and NaN floats, wrong argument types, concurrent loads."""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.runtime import imageio, upscaler
from srzoo.cli import main

BUTTERFLY = "datasets/Set5/butterfly.png"


def png_claiming(path: Path, w: int, h: int) -> Path:
    """A tiny PNG whose header claims w x h grey pixels (the body is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def crop(shared_dir):
    img = cv2.imread(str(shared_dir / BUTTERFLY))
    return img[100:140, 60:112].copy()


# --------------------------------------------------------------------------- bombs
def test_bomb_is_refused_from_its_header_before_decoding(tmp_path):
    bomb = png_claiming(tmp_path / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 2000
    with pytest.raises(srzoo.ImageError) as err:
        srzoo.upscale(bomb, "nearest", 2)
    msg = str(err.value)
    assert msg.startswith(f"{bomb}: a 20000x20000 image gives 40000x40000 at x2")
    assert "refused before decoding" in msg and "SRZOO_MAX_PIXELS" in msg


def test_limit_counts_the_scale_and_follows_srzoo_max_pixels(tmp_path, crop, monkeypatch):
    p = tmp_path / "small.png"
    cv2.imwrite(str(p), crop)  # 52x40
    monkeypatch.setenv("SRZOO_MAX_PIXELS", str(52 * 40 * 4))
    assert srzoo.upscale(p, "nearest", 2).shape == (80, 104, 3)  # exactly at the limit
    with pytest.raises(srzoo.ImageError, match=r"a 52x40 image gives 156x120 at x3, 0.019 MP, above "
                                               r"the limit of 8320 pixels \(refused before decoding\)"):
        srzoo.upscale(p, "nearest", 3)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm", ".pfm", ".hdr"])
def test_header_size_matches_the_decoded_size(tmp_path, crop, ext):
    img = crop.astype(np.float32) / 255 if ext in (".pfm", ".hdr") else crop
    p = tmp_path / f"x{ext}"
    assert cv2.imwrite(str(p), img)
    h, w = cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape[:2]
    assert imageio.header_size(p) == (w, h) == (52, 40)


def test_bomb_through_the_cli_is_one_line(tmp_path, capsys):
    bomb = png_claiming(tmp_path / "bomb.png", 30000, 30000)
    assert main(["upscale", str(bomb), "-m", "nearest", "-s", "2", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused before decoding" in err and "Traceback" not in err
    assert not list(tmp_path.glob("bomb_*"))


# --------------------------------------------------------------------------- no cv2.error
def test_undecodable_files_are_image_errors_naming_the_file(tmp_path):
    cases = {"trunc.png": png_claiming(tmp_path / "t.png", 64, 64).read_bytes()[:40],
             "garbage.jpg": b"\xff\xd8\xff" + b"junk" * 50, "empty.png": b""}
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(srzoo.ImageError, match=rf"^{p}: "):
            srzoo.upscale(p, "nearest", 2)


def test_encode_failures_are_image_errors(tmp_path, crop):
    with pytest.raises(srzoo.ImageError, match=r"out\.xyz: (cannot encode|OpenCV cannot encode)"):
        imageio.write_image(tmp_path / "out.xyz", crop)
    with pytest.raises(srzoo.ImageError, match=r"out\.pgm: (cannot encode|OpenCV cannot encode)"):
        imageio.write_image(tmp_path / "out.pgm", crop)  # PGM holds grey only
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written


def test_write_errors_name_the_file(tmp_path, crop):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(srzoo.ImageError, match=rf"^{blocker}/out.png: cannot write: "):
        imageio.write_image(blocker / "out.png", crop)


# --------------------------------------------------------------------------- 16 bits
def test_16bit_result_to_bmp_is_scaled_to_8_bits_with_one_note(tmp_path, crop, capsys):
    imageio._noted.clear()
    src = tmp_path / "in16.png"
    cv2.imwrite(str(src), crop.astype(np.uint16) * 257)
    out = tmp_path / "out.bmp"
    assert main(["upscale", str(src), "-m", "nearest", "-s", "2", "-o", str(out), "-q"]) == 0
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8
    expected = cv2.resize(crop, (104, 80), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(back, expected)  # v*257/257 = v: not white, not clipped
    err = capsys.readouterr().err
    assert err.count("16-bit results are written scaled to 8 bits") == 1


def test_16bit_to_jpeg_is_not_white(tmp_path, crop):
    out = tmp_path / "o.jpg"
    imageio.write_image(out, crop.astype(np.uint16) * 257)
    back = cv2.imread(str(out)).astype(np.float64)
    assert np.abs(back - crop).mean() < 4 and back.mean() < 250


def test_to_8bit_rounds():
    v = np.array([0, 128, 129, 257, 32896, 65535], np.uint16)
    assert imageio.to_8bit(v).tolist() == [0, 0, 1, 1, 128, 255]


# --------------------------------------------------------------------------- floats
def test_hdr_float_input_is_scaled_and_back(models_env, crop):
    hdr = crop.astype(np.float32) / 255 * 4.0  # values in [0, 4], like a .hdr file
    out = srzoo.upscale(hdr, "espcn", 2)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= hdr.min() and out.max() <= hdr.max()
    ref = cv2.resize(hdr, (104, 80), interpolation=cv2.INTER_CUBIC)
    psnr = 10 * np.log10(16.0 / np.mean((out - ref) ** 2))  # peak 4
    assert psnr > 25, psnr  # a real upscale in HDR units, not NaN, not 1/4 of the brightness


def test_hdr_file_round_trip(models_env, tmp_path, crop):
    p = tmp_path / "in.hdr"
    cv2.imwrite(str(p), crop.astype(np.float32) / 255 * 8.0)
    out = srzoo.upscale(p, "espcn", 2)
    src = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert np.isfinite(out).all() and 4.0 < out.max() <= src.max()
    assert out.dtype == np.float32 and out.shape == (80, 104, 3)
    # the file's decoded pixels upscaled, exactly (measured: identical)
    assert np.array_equal(out, srzoo.upscale(src, "espcn", 2))
    # and, in 8-bit units, the 8-bit image's upscale up to the .hdr (RGBE) quantisation of
    # the input: measured 4.92 levels
    assert np.abs(out / 8.0 * 255 - srzoo.upscale(crop, "espcn", 2)).max() <= 8


def test_constant_hdr_image_stays_constant():
    flat = np.full((6, 7, 3), 5.0, np.float32)
    out = srzoo.upscale(flat, "bicubic", 2)
    assert out.shape == (12, 14, 3) and np.all(out == 5.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_input_is_an_image_error(crop, bad):
    img = crop.astype(np.float32) / 255
    img[3, 4, 1] = bad
    with pytest.raises(srzoo.ImageError, match=r"NaN or infinite"):
        srzoo.upscale(img, "bicubic", 2)


def test_interpolation_clips_float_output_to_the_input_range():
    step = np.zeros((16, 16), np.float32)
    step[:, 8:] = 5.0  # an HDR edge: bicubic overshoots on both sides
    raw = cv2.resize(step, (64, 64), interpolation=cv2.INTER_CUBIC)
    assert raw.min() < 0 and raw.max() > 5  # so the clip below is doing something
    out = srzoo.upscale(step, "bicubic", 4)
    assert out.min() == 0.0 and out.max() == 5.0
    inside = (raw >= 0) & (raw <= 5)
    assert np.allclose(out[inside], raw[inside], atol=1e-5)  # only the overshoot is cut


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("call,match", [
    (lambda img: srzoo.upscale(img, None, 2), "model must be a model name"),
    (lambda img: srzoo.upscale(img, 3, 2), "model must be a model name"),
    (lambda img: srzoo.upscale(None, "nearest", 2), "image must be a numpy array or a path"),
    (lambda img: srzoo.upscale(img, "nearest", 2, backend=None), "backend must be a string"),
    (lambda img: srzoo.upscale(img, "nearest", 2, tile="big"), "tile must be None or an integer"),
])
def test_wrong_argument_types_are_type_errors_with_a_message(crop, call, match):
    with pytest.raises(srzoo.ArgumentError, match=match) as err:
        call(crop)
    assert isinstance(err.value, TypeError) and isinstance(err.value, srzoo.SrzooError)


def test_wrong_scale_is_an_srzoo_error(crop):
    # one rule for scales: "2" is 2 (as 2.0 and 1.5 are numbers); words are refused
    assert np.array_equal(srzoo.upscale(crop, "nearest", "2"), srzoo.upscale(crop, "nearest", 2))
    with pytest.raises(srzoo.SrzooError, match="scale must be a number, got 'two'"):
        srzoo.upscale(crop, "nearest", "two")
    with pytest.raises(srzoo.SrzooError, match="scale must be a positive integer"):
        srzoo.Upscaler("nearest", "two")


def test_four_threads_load_the_model_once(models_env, crop, monkeypatch):
    srzoo.fetch("espcn", 3, quiet=True)
    upscaler.clear_cache()
    loads = []
    real_init = upscaler.Upscaler.__init__

    def counting_init(self, *a, **kw):  # the real load, counted
        loads.append(1)
        real_init(self, *a, **kw)

    monkeypatch.setattr(upscaler.Upscaler, "__init__", counting_init)
    barrier = threading.Barrier(4)
    outs, errors = [], []

    def work():
        barrier.wait()
        try:
            outs.append(srzoo.upscale(crop, "espcn", 3))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(outs) == 4
    assert len(loads) == 1
    assert all(np.array_equal(o, outs[0]) for o in outs) and outs[0].shape == (120, 156, 3)
