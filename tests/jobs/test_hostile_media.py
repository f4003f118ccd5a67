"""Media files that are not what they seem, and messages that say what a file is:
a truncated MP4, an audio-only MP4, a 40000x40000 y4m header, a finished video's
summary, tiny pixel limits, a scale just above the model's. Real files written
with PyAV and OpenCV, run through the real CLI."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from srzoo.cli import main

av = pytest.importorskip("av")


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("srzoo: error: "), err
    return lines[0]


@pytest.fixture
def mp4(tmp_path):
    p = tmp_path / "ok.mp4"
    with av.open(str(p), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8),
                                                           format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return p


def test_truncated_mp4_is_named_as_a_damaged_video(tmp_path, mp4, capsys):
    bad = tmp_path / "trunc.mp4"
    bad.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    assert main(["upscale", str(bad), "-m", "bicubic", "-o", str(tmp_path / "o.mp4")]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"srzoo: error: {bad}: an MP4/QuickTime file that FFmpeg cannot open: Invalid data found when "
        "processing input (truncated or damaged?)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.mp4", "trunc.mp4"]


def test_audio_only_mp4_says_it_has_no_video_stream(tmp_path, capsys):
    p = tmp_path / "audio.mp4"
    with av.open(str(p), "w") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(20):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 44100, i * 1024
            for pkt in s.encode(fr):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    assert main(["upscale", str(p), "-m", "bicubic", "-o", str(tmp_path / "o.mp4")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"srzoo: error: {p}: a ") and line.endswith(
        " file with no video stream (it holds: audio (aac)); nothing to upscale")


def test_huge_y4m_header_is_refused_with_its_size(tmp_path, capsys):
    p = tmp_path / "huge.y4m"
    p.write_bytes(b"YUV4MPEG2 W40000 H40000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 100_000)
    assert main(["upscale", str(p), "-m", "bicubic", "-o", str(tmp_path / "o.y4m")]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"srzoo: error: {p}: a 40000x40000 YUV4MPEG2 (y4m) video: each frame is 1600 MP, above the "
        "limit of 1074 MP (SRZOO_MAX_PIXELS); crop or downscale it first")


def test_finished_video_is_counted_as_a_video(tmp_path, mp4, shared_dir, capsys):
    assert main(["upscale", str(mp4), "-m", "bicubic", "-o", str(tmp_path / "o.mp4")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("upscaled 1 video x2 with bicubic in ")
    img = tmp_path / "still.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:40, :48])
    assert main(["upscale", str(mp4), str(img), "-m", "bicubic", "-o", str(tmp_path / "both")]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("upscaled 1 image and 1 video x2 with bicubic in ")


def test_pixel_limit_message_shows_real_numbers(tmp_path, shared_dir, capsys, monkeypatch):
    img = tmp_path / "s.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:40, :48])
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "100")
    assert main(["upscale", str(img), "-o", str(tmp_path / "o.png"), "-q"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"srzoo: error: {img}: a 48x40 image gives 96x80 at x2, 7680 pixels, above the limit of "
        "100 pixels (refused before decoding); downscale or crop it, or raise SRZOO_MAX_PIXELS")


def test_scale_just_above_the_model_is_named_exactly(tmp_path, shared_dir, capsys, models_env):
    img = tmp_path / "s.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:40, :48])
    assert main(["upscale", str(img), "-m", "espcn", "-s", "4.0000001", "-o", str(tmp_path / "o.png")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("srzoo: error: model 'espcn' has no x4.0000001; it has scales x2, x3, x4 ")


def test_cache_dir_on_a_device_is_one_clear_line(tmp_path, shared_dir, capsys, monkeypatch):
    monkeypatch.setenv("SRZOO_CACHE_DIR", "/dev/null")
    monkeypatch.setenv("SRZOO_MIRROR", str(shared_dir / "models"))
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    img = tmp_path / "s.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:40, :48])
    # the built-in model needs no cache: it runs (autotune just does not remember)
    assert main(["upscale", str(img), "-o", str(tmp_path / "o.png"), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["fetch", "espcn", "-s", "2"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "File exists" not in line
    assert line == ("srzoo: error: cannot create /dev/null/.incomplete: /dev/null is a device where a folder "
                    "should be; move it away (cache /dev/null; set SRZOO_CACHE_DIR to use another folder)")
    assert main(["list", "--catalog", "openmodeldb"]) == 1  # no pin can be there: the shipped one is used
    assert "Not a directory" not in capsys.readouterr().err


def test_float_input_above_one_is_kept_or_mapped_with_a_note_never_clipped(tmp_path, shared_dir, capsys):
    """A .pfm of values 0..1000: .tif keeps the values; a 16-bit .png gets them
    divided by the largest (one note), not 98 % of pixels saturated at 65535."""
    img = cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:40, :48].astype(np.float32) / 255 * 1000
    img[0, 0] = 1000.0
    src = tmp_path / "hdr.pfm"
    cv2.imwrite(str(src), img)
    assert main(["upscale", str(src), "-m", "bicubic", "-o", str(tmp_path / "keep.tif"), "-q"]) == 0
    kept = cv2.imread(str(tmp_path / "keep.tif"), cv2.IMREAD_UNCHANGED)
    assert kept.dtype == np.float32 and kept.max() > 900  # values kept, not clipped at 1
    assert capsys.readouterr().err == ""
    assert main(["upscale", str(src), "-m", "bicubic", "-o", str(tmp_path / "mapped.png"), "-q"]) == 0
    err = capsys.readouterr().err
    hi = float(kept.max())
    assert err.count("srzoo: note:") == 1 and f"float values up to {hi:.6g} do not fit .png" in err
    png = cv2.imread(str(tmp_path / "mapped.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16
    want = np.rint(np.clip(kept / hi, 0, 1) * 65535)
    assert np.abs(png.astype(np.float64) - want).max() <= 1
    assert (png == 65535).mean() < 0.001  # was 98.3 % saturated
