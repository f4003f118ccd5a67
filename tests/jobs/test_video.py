"""``srzoo.upscale_video`` and ``srzoo upscale VIDEO``: real videos made here with PyAV
(a moving pattern and a sine tone), real models from ../shared, real encoders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

import srzoo  # noqa: E402
from srzoo.cli import main  # noqa: E402
from srzoo.evaluate.metrics import psnr  # noqa: E402
from srzoo.jobs.video import VideoError, is_video, upscale_video  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def pattern(k: int, w: int, h: int, dtype: type = np.uint8) -> np.ndarray:
    """Frame k of a moving pattern: gradients that slide and a checkerboard that shifts."""
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (xs * 4 + k * 3) % 256
    img[..., 1] = (ys * 5 + k * 7) % 256
    img[((ys + k) // 6 + (xs + 2 * k) // 6) % 2 == 0, 2] = 220
    if dtype == np.uint16:
        return img.astype(np.uint16) * 257 + (xs % 4).astype(np.uint16)[..., None] * 16
    return img


def make_video(path: Path, n: int = 24, w: int = 48, h: int = 32, rate: int = 25, *,
               vfr: bool = False, audio: bool = True, subtitles: bool = False,
               rotation: int = 0, codec: str = "libx264", pix_fmt: str = "yuv420p",
               options: dict[str, str] | None = None) -> list[int]:
    """Write a test video; returns the video timestamps (in the stream's time base)."""
    out = av.open(str(path), "w", format="mp4" if path.suffix == ".bin" else None)
    v = out.add_stream(codec, rate=rate)
    v.width, v.height, v.pix_fmt = w, h, pix_fmt
    tb = Fraction(1, 1000) if vfr else Fraction(1, rate)
    v.time_base = v.codec_context.time_base = tb
    v.codec_context.options = options or {}
    if rotation:
        v.set_display_rotation(rotation)
    a = out.add_stream("aac", rate=48000) if audio else None
    s = None
    if subtitles:
        s = out.add_mux_stream("subrip")
        s.time_base = Fraction(1, 1000)
        s.metadata["language"] = "fra"
        out.set_chapters([{"id": 1, "start": 0, "end": 300, "time_base": Fraction(1, 1000),
                           "metadata": {"title": "Opening"}}])
        out.metadata["title"] = "pattern and tone"
    high = pix_fmt.endswith("10le")
    pts, t = [], 0.0
    for k in range(n):
        f = av.VideoFrame.from_ndarray(pattern(k, w, h, np.uint16 if high else np.uint8),
                                       format="bgr48le" if high else "bgr24")
        f.pts = int(t) if vfr else k
        pts.append(f.pts)
        t += 1000 / rate * (1 + (k % 3 == 0))  # VFR: every third frame lasts twice as long
        out.mux(v.encode(f))
    out.mux(v.encode(None))
    if a is not None:
        sr = 48000
        seconds = (t / 1000) if vfr else n / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)
        for i in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = sr, i, Fraction(1, sr)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    if s is not None:
        for i, text in enumerate((b"first line", b"second line")):
            p = av.Packet(text)
            p.stream, p.time_base = s, Fraction(1, 1000)
            p.pts = p.dts = 200 + i * 400
            p.duration = 300
            out.mux(p)
    out.close()
    return pts


def packets(path: Path, kind: str) -> list[tuple[float, bytes]]:
    """(time in seconds, bytes) of every packet of the first ``kind`` stream."""
    with av.open(str(path)) as c:
        st = getattr(c.streams, kind)[0]
        return [(round(float(p.pts * p.time_base), 4), bytes(p)) for p in c.demux(st) if p.size]


def frames(path: Path, fmt: str = "bgr24") -> tuple[list[float], list[np.ndarray], dict]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"rate": v.average_rate, "format": v.codec_context.pix_fmt,
                "size": (v.codec_context.width, v.codec_context.height),
                "duration": c.duration, "codec": v.codec_context.name}
        times, imgs = [], []
        for f in c.decode(v):
            times.append(round(float(f.pts * f.time_base), 4))
            imgs.append(f.to_ndarray(format=fmt))
            info["rotation"] = f.rotation
    return times, imgs, info


# --------------------------------------------------------------------------- timing, audio, metadata
def test_constant_frame_rate_mp4_keeps_frames_timing_and_audio(models_env, tmp_path):
    src, dst = tmp_path / "clip.mp4", tmp_path / "out" / "clip_x2.mp4"
    make_video(src, n=30)
    res = upscale_video(src, dst, "fsrcnn-small", 2, progress=False)
    t_in, _, i_in = frames(src)
    t_out, imgs, i_out = frames(dst)
    assert len(t_out) == len(t_in) == res.frames == 30
    assert t_out == t_in
    assert i_out["rate"] == i_in["rate"] == 25
    assert i_out["size"] == (96, 64) and imgs[0].shape == (64, 96, 3)
    assert abs(i_out["duration"] - i_in["duration"]) <= 1e6 / 25
    assert i_out["codec"] == "h264" and i_out["format"] == "yuv420p"
    audio_in = packets(src, "audio")
    assert len(audio_in) > 30 and packets(dst, "audio") == audio_in  # copied byte for byte
    assert res.copied == ["#1 audio aac"] and res.crf == 17
    assert sorted(p.name for p in dst.parent.iterdir()) == ["clip_x2.mp4"]  # no temp left
    # output frame k is upscale() of input frame k, up to 4:2:0 chroma and x264 crf 17
    # (about 28 dB on this saturated pattern), and not its neighbour (about 12 dB)
    _, src_imgs, _ = frames(src)
    for k in (1, 12, 28):
        near = [psnr(imgs[k], srzoo.upscale(src_imgs[j], "fsrcnn-small", 2)) for j in (k - 1, k, k + 1)]
        assert near[1] > 26 and max(near[0], near[2]) < 16, (k, near)


def test_variable_frame_rate_mkv_with_subtitles_and_rotation(models_env, tmp_path):
    src, dst = tmp_path / "vfr.mkv", tmp_path / "vfr_x2.mkv"
    pts = make_video(src, n=24, vfr=True, subtitles=True, rotation=90)
    assert len(set(np.diff(pts))) == 2  # really variable
    res = upscale_video(src, dst, "bicubic", 2, progress=False)
    t_in, _, i_in = frames(src)
    t_out, _, i_out = frames(dst)
    assert t_out == t_in == [p / 1000 for p in pts]
    assert res.frames == 24
    assert i_out["rotation"] == i_in["rotation"] == 90
    assert abs(i_out["duration"] - i_in["duration"]) <= 1e6 / 25
    assert packets(dst, "audio") == packets(src, "audio")
    subs = packets(dst, "subtitles")
    assert subs == packets(src, "subtitles") == [(0.2, b"first line"), (0.6, b"second line")]
    with av.open(str(dst)) as c:
        assert c.metadata.get("title") == "pattern and tone"
        assert c.streams.subtitles[0].metadata.get("language") == "fra"
        assert [(ch["metadata"]["title"], float(ch["end"] * ch["time_base"])) for ch in c.chapters()] \
            == [("Opening", 0.3)]


def test_ffv1_output_frames_equal_upscale_of_input_frames(models_env, tmp_path):
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_video(src, n=12, audio=False)
    res = upscale_video(src, dst, "fsrcnn-small", 2, codec="ffv1", pix_fmt="bgr0", progress=False)
    assert (res.codec, res.pix_fmt, res.crf) == ("ffv1", "bgr0", None)
    _, ins, _ = frames(src)
    _, outs, info = frames(dst)
    assert info["codec"] == "ffv1" and len(outs) == len(ins) == 12
    for k, (a, b) in enumerate(zip(ins, outs)):
        assert np.array_equal(b, srzoo.upscale(a, "fsrcnn-small", 2)), f"frame {k}"
    assert not np.array_equal(outs[0], outs[1])  # the pattern moves


def test_pyramid_model_with_tiling_exact(models_env, tmp_path):
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_video(src, n=2, w=32, h=24, audio=False)
    upscale_video(src, dst, "lapsrn", 4, tile=16, codec="ffv1", pix_fmt="bgr0", progress=False)
    _, ins, _ = frames(src)
    _, outs, _ = frames(dst)
    assert len(outs) == 2 and outs[0].shape == (96, 128, 3)
    for a, b in zip(ins, outs):
        assert np.array_equal(b, srzoo.upscale(a, "lapsrn", 4, tile=16))


def test_ten_bit_source_stays_ten_bit_through_sixteen_bit_frames(models_env, tmp_path):
    src = tmp_path / "deep.mkv"
    make_video(src, n=6, audio=False, codec="ffv1", pix_fmt="yuv420p10le")
    dst = tmp_path / "deep_x2.mp4"
    res = upscale_video(src, dst, "fsrcnn-small", 2, progress=False)  # libx264 by default
    assert res.pix_fmt == "yuv420p10le" and frames(dst)[2]["format"] == "yuv420p10le"
    # lossless 16-bit RGB out: the model saw 16-bit frames, not 8-bit ones
    exact = tmp_path / "deep_x2.mkv"
    upscale_video(src, exact, "fsrcnn-small", 2, codec="ffv1", pix_fmt="gbrp16le", progress=False)
    _, ins, _ = frames(src, "bgr48le")
    _, outs, _ = frames(exact, "bgr48le")
    assert outs[0].dtype == np.uint16 and len(np.unique(outs[0] & 0xFF)) > 16
    for a, b in zip(ins, outs):
        assert np.array_equal(b, srzoo.upscale(a, "fsrcnn-small", 2))


# --------------------------------------------------------------------------- damage and interruptions
def corrupt_packet(path: Path, index: int, whole: bool) -> float:
    """Flip the bytes of video packet ``index`` (all of them, or 24 in its middle); returns its time."""
    with av.open(str(path)) as c:
        pk = [(p.pos, p.size, float(p.pts * p.time_base)) for p in c.demux(video=0) if p.size]
    pos, size, t = pk[index]
    data = bytearray(path.read_bytes())
    for i in (range(pos + 8, pos + size - 4) if whole else range(pos + size // 3, pos + size // 3 + 24)):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))
    return t


def damaged_frames(path: Path) -> list[float]:
    """Times of the frames plain PyAV decodes with the decoder's "concealed" flag."""
    with av.open(str(path)) as c:
        return [round(float(f.pts * f.time_base), 3) for f in c.decode(video=0) if f.is_corrupt]


def test_undecodable_packet_is_reported_with_time_and_skipped_or_fails(models_env, tmp_path):
    src = tmp_path / "damaged.mkv"
    make_video(src, n=20, audio=False, codec="ffv1")
    t = corrupt_packet(src, 10, whole=True)
    with pytest.raises(av.error.InvalidDataError):  # what plain PyAV does with it
        list(av.open(str(src)).decode(video=0))
    warnings: list[str] = []
    res = upscale_video(src, tmp_path / "skip.mkv", "bicubic", 2, progress=False,
                        on_warning=warnings.append)
    times, _, _ = frames(tmp_path / "skip.mkv")
    assert res.frames == len(times) == 19 and 0.4 not in times and res.corrupt == ["0.400 s"]
    assert warnings == [f"{src}: corrupt video packet at {t:.3f} s: Invalid data found when "
                        "processing input; skipped"]
    with pytest.raises(VideoError, match=r"corrupt video packet at 0.400 s.*--on-corrupt skip"):
        upscale_video(src, tmp_path / "fail.mkv", "bicubic", 2, on_corrupt="fail", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.mkv", "skip.mkv"]


def test_concealed_frame_is_skipped_or_fails(models_env, tmp_path):
    src = tmp_path / "damaged.mkv"
    make_video(src, n=20, audio=False, options={"g": "5"})
    corrupt_packet(src, 5, whole=False)
    bad = damaged_frames(src)
    assert len(bad) == 1  # the H.264 decoder flags the frame it had to conceal
    warnings: list[str] = []
    res = upscale_video(src, tmp_path / "skip.mkv", "bicubic", 2, progress=False,
                        on_warning=warnings.append)
    assert res.frames == 19 == len(frames(tmp_path / "skip.mkv")[0])
    assert len(warnings) == 1 and f"at {bad[0]:.3f} s: the decoder flagged" in warnings[0]
    with pytest.raises(VideoError, match=rf"corrupt video packet at {bad[0]:.3f} s"):
        upscale_video(src, tmp_path / "fail.mkv", "bicubic", 2, on_corrupt="fail", progress=False)
    assert not (tmp_path / "fail.mkv").exists()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip long enough to be caught mid-run (made once for the signal tests)."""
    src = tmp_path_factory.mktemp("long") / "long.mp4"
    make_video(src, n=300, w=96, h=64, options={"preset": "ultrafast"})
    return src


def _run_and_signal(src: Path, tmp_path: Path, sig: int) -> tuple[Path, int]:
    dst = tmp_path / "long_x2.mp4"
    code = ("import sys, srzoo; srzoo.upscale_video(sys.argv[1], sys.argv[2], 'fsrcnn', 2, "
            "progress=False, backend='cpu')")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", code, str(src), str(dst)], env=env,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            parts = list(tmp_path.glob(".long_x2.*.part.mp4"))
            if parts and parts[0].stat().st_size > 4096:  # frames are being written
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(sig)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return dst, proc.returncode


def test_sigkill_mid_run_leaves_nothing_under_the_output_name(models_env, long_clip, tmp_path):
    dst, rc = _run_and_signal(long_clip, tmp_path, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert not dst.exists()
    assert list(tmp_path.glob(".long_x2.*.part.mp4"))  # the kill left only the temporary file


def test_sigterm_mid_run_cleans_up_the_temporary_file(models_env, long_clip, tmp_path):
    dst, rc = _run_and_signal(long_clip, tmp_path, signal.SIGTERM)
    assert rc != 0
    assert not dst.exists()
    assert not list(tmp_path.glob(".long_x2.*"))


# --------------------------------------------------------------------------- errors and detection
def test_bad_options_fail_before_any_output(models_env, tmp_path):
    src = tmp_path / "c.mp4"
    make_video(src, n=4, audio=False)
    cases = [({"codec": "libnothing"}, "unknown video encoder 'libnothing'"),
             ({"codec": "aac"}, "'aac' is not a video encoder"),
             ({"codec": "ffv1", "crf": 10}, "ffv1 is lossless"),
             ({"pix_fmt": "rgb24"}, "cannot write pixel format 'rgb24'"),
             ({"on_corrupt": "ignore"}, "on_corrupt must be one of skip, fail")]
    for kwargs, msg in cases:
        with pytest.raises(VideoError, match=msg):
            upscale_video(src, tmp_path / "o.mp4", "bicubic", 2, progress=False, **kwargs)
    with pytest.raises(VideoError, match="unknown video container '.xyz'"):
        upscale_video(src, tmp_path / "o.xyz", "bicubic", 2)
    odd = tmp_path / "odd.mkv"
    make_video(odd, n=2, w=35, h=21, audio=False, codec="ffv1", pix_fmt="yuv444p")
    with pytest.raises(VideoError, match="105x63, but yuv420p needs an even width and height"):
        upscale_video(odd, tmp_path / "odd_x3.mp4", "bicubic", 3, pix_fmt="yuv420p", progress=False)
    with pytest.raises(VideoError, match="is the input"):
        upscale_video(src, src, "bicubic", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "odd.mkv"]


def test_detection_probes_the_container_not_the_name(tmp_path, shared_dir):
    clip = tmp_path / "clip.bin"
    make_video(clip, n=2, audio=False)
    assert is_video(clip)
    png = tmp_path / "still.mp4"  # a PNG under a video name
    png.write_bytes((shared_dir / "datasets" / "Set5" / "bird.png").read_bytes())
    assert not is_video(png)
    (tmp_path / "notes.txt").write_text("not media")
    assert not is_video(tmp_path / "notes.txt") and not is_video(tmp_path / "missing.mp4")


# --------------------------------------------------------------------------- CLI
def test_cli_routes_videos_and_images(models_env, tmp_path, shared_dir, capsys):
    clip = tmp_path / "clip.bin"  # an MP4 whose name does not say so
    make_video(clip, n=8)
    img = tmp_path / "bird.png"
    img.write_bytes((shared_dir / "datasets" / "Set5" / "bird.png").read_bytes())
    rc = main(["upscale", str(clip), str(img), "-m", "fsrcnn-small", "-s", "2", "-o",
               str(tmp_path / "out"), "--codec", "ffv1"])
    out = tmp_path / "out"
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["bird_fsrcnn-small_x2.png",
                                                     "clip_fsrcnn-small_x2.mkv"]
    t, imgs, info = frames(out / "clip_fsrcnn-small_x2.mkv")
    assert len(t) == 8 and info["codec"] == "ffv1" and imgs[0].shape == (64, 96, 3)
    # MP4 -> MKV: same audio bytes; Matroska has no negative times, so the muxer shifts every
    # stream by the AAC priming delay, keeping audio and video in sync
    a_in, a_out = packets(clip, "audio"), packets(out / "clip_fsrcnn-small_x2.mkv", "audio")
    assert [b for _, b in a_out] == [b for _, b in a_in]
    t_in = frames(clip)[0]
    assert all(abs((ao - t[0]) - (ai - t_in[0])) <= 0.0011 for (ao, _), (ai, _) in zip(a_out, a_in))
    # one summary line; no progress bar when stderr is not a terminal
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{clip} -> {out / 'clip_fsrcnn-small_x2.mkv'}: 8 frames 48x32 -> 96x64")


def test_cli_bad_video_option_is_one_line(models_env, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_video(clip, n=2, audio=False)
    rc = main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "--codec", "ffv1", "--crf", "3",
               "-o", str(tmp_path / "o.mkv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == [f"srzoo: error: {clip}: ffv1 is lossless: it has no --crf"]
    assert not (tmp_path / "o.mkv").exists()


def test_stream_the_output_container_cannot_hold_is_named(models_env, tmp_path):
    src = tmp_path / "c.mp4"
    make_video(src, n=3)  # AAC audio: WebM takes only Opus/Vorbis
    with pytest.raises(VideoError, match=r"audio stream #1 \(aac\) cannot be stored in \.webm "
                                         r"\(.*\); use the input's container \(\.mp4\)"):
        upscale_video(src, tmp_path / "o.webm", "bicubic", 2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4"]


def test_cli_quoted_glob_splits_videos_from_images(models_env, tmp_path, shared_dir, capsys):
    make_video(tmp_path / "a.mkv", n=3, audio=False)
    (tmp_path / "b.png").write_bytes((shared_dir / "datasets" / "Set5" / "bird.png").read_bytes())
    rc = main(["upscale", str(tmp_path / "[ab].*"), "-m", "nearest", "-s", "2", "-q"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mkv", "a_nearest_x2.mkv", "b.png",
                                                         "b_nearest_x2.png"]
    assert len(frames(tmp_path / "a_nearest_x2.mkv")[0]) == 3


def test_without_pyav_a_video_input_names_the_extra(tmp_path, shared_dir, monkeypatch, capsys):
    clip = tmp_path / "c.mp4"
    make_video(clip, n=2, audio=False)
    png = tmp_path / "bird.png"
    png.write_bytes((shared_dir / "datasets" / "Set5" / "bird.png").read_bytes())
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(VideoError, match=r"needs PyAV, which is not installed: pip install 'srzoo\[video\]'"):
        is_video(clip)
    assert not is_video(png)
    with pytest.raises(VideoError, match=r"pip install 'srzoo\[video\]'"):
        upscale_video(clip, tmp_path / "o.mp4", "bicubic", 2)
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2"]) == 1
    assert capsys.readouterr().err == ("srzoo: error: video needs PyAV, which is not installed: "
                                       "pip install 'srzoo[video]'\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bird.png", "c.mp4"]


# --------------------------------------------------------------------------- converted models, engines
CPU_ENGINES = ("opencv:cpu", "onnxruntime:cpu", "openvino:cpu")


def test_converted_model_frames_equal_upscale_of_input_frames(models_env, tmp_path):
    """CARN-M x2: a PyTorch checkpoint fetched from the mirror and converted to ONNX on first
    use; the video path must run the converted graph exactly as upscale() does."""
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_video(src, n=4, w=40, h=24, audio=False)
    res = upscale_video(src, dst, "carn-m", 2, backend="onnxruntime:cpu", codec="ffv1",
                        pix_fmt="bgr0", progress=False)
    assert res.backend == "onnxruntime:cpu" and res.frames == 4
    t_in, ins, _ = frames(src)
    t_out, outs, info = frames(dst)
    assert t_out == t_in and len(outs) == 4 and outs[0].shape == (48, 80, 3)
    for k, (a, b) in enumerate(zip(ins, outs)):
        want = srzoo.upscale(a, "carn-m", 2, backend="onnxruntime:cpu")
        assert np.array_equal(b, want), f"frame {k}"
        # a learned model, not an interpolation: differs from bicubic by more than rounding
        assert np.abs(b.astype(int) - srzoo.upscale(a, "bicubic", 2)).max() > 8
    assert not np.array_equal(outs[0], outs[1])
    # the converted model with tiling: the same tiles as upscale(tile=16)
    tiled = tmp_path / "tiled.mkv"
    upscale_video(src, tiled, "carn-m", 2, backend="onnxruntime:cpu", tile=16, codec="ffv1",
                  pix_fmt="bgr0", progress=False)
    _, touts, _ = frames(tiled)
    assert len(touts) == 4
    for k, (a, b) in enumerate(zip(ins, touts)):
        assert np.array_equal(b, srzoo.upscale(a, "carn-m", 2, backend="onnxruntime:cpu", tile=16)), k


@pytest.mark.parametrize("engine", CPU_ENGINES)
def test_onnx_model_on_every_engine_frames_count_and_times(models_env, tmp_path, engine):
    """The built-in ONNX model on each installed engine: output frame k equals upscale() of
    input frame k on that same engine; frame count and timestamps (VFR) are kept."""
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    pts = make_video(src, n=9, vfr=True, audio=False)
    res = upscale_video(src, dst, "default", 2, backend=engine, codec="ffv1", pix_fmt="bgr0",
                        progress=False)
    assert res.backend == engine and res.frames == 9
    t_in, ins, _ = frames(src)
    t_out, outs, info = frames(dst)
    assert t_out == t_in == [p / 1000 for p in pts] and len(outs) == 9
    assert info["size"] == (96, 64)
    for k, (a, b) in enumerate(zip(ins, outs)):
        assert np.array_equal(b, srzoo.upscale(a, "default", 2, backend=engine)), f"frame {k}"


def test_user_converted_manifest_model_through_video(tmp_path, monkeypatch, capsys):
    """A small SRVGGNetCompact state dict saved here with torch, turned into a manifest entry
    by ``srzoo convert --manifest``: the video path runs it as upscale() does (openvino:cpu)."""
    torch = pytest.importorskip("torch")
    import torch_archs as ta

    torch.manual_seed(0)
    net = ta.SRVGGNetCompact(nf=8, num_conv=2, upscale=2)
    pth, onnx_out, man = tmp_path / "tiny.pth", tmp_path / "tiny.onnx", tmp_path / "mine.toml"
    torch.save({"params": net.state_dict()}, pth)
    assert main(["convert", str(pth), "--scale", "2", "-o", str(onnx_out), "--manifest", str(man),
                 "--name", "my-srvgg"]) == 0, capsys.readouterr().err
    monkeypatch.setenv("SRZOO_REGISTRY", str(man))
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_video(src, n=3, w=32, h=24, audio=False)
    res = upscale_video(src, dst, "my-srvgg", 2, backend="openvino:cpu", codec="ffv1",
                        pix_fmt="bgr0", progress=False)
    assert res.backend == "openvino:cpu" and res.frames == 3
    _, ins, _ = frames(src)
    _, outs, _ = frames(dst)
    assert len(outs) == 3 and outs[0].shape == (48, 64, 3)
    for k, (a, b) in enumerate(zip(ins, outs)):
        assert np.array_equal(b, srzoo.upscale(a, "my-srvgg", 2, backend="openvino:cpu")), k
        # the random network adds its residual to the nearest-neighbour upscale
        near = a.repeat(2, 0).repeat(2, 1)
        assert 0 < np.abs(b.astype(int) - near).max() < 255
