"""``srzoo upscale VIDEO``: every video option reaching :func:`srzoo.upscale_video`, and
the exact lines the command prints for a video (its summary, warnings, errors, ``-q -v``,
the bar on a terminal). Real videos made with the helpers of test_video.py."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

av = pytest.importorskip("av")

import srzoo  # noqa: E402
from srzoo.cli import main  # noqa: E402
from suite import Terminal, count_process_calls  # noqa: E402
from test_video import corrupt_packet, frames, make_video  # noqa: E402


def _time(text: str) -> str:
    """Measured times and rates (``0.12 s``, ``0.3 s``, ``41.2 frames/s``) as ``T s`` and
    ``R frames/s``; a time in the video (``at 0.400 s``) stays."""
    text = re.sub(r"\d+\.\d+ frames/s", "R frames/s", text)
    return re.sub(r"(?<!at )\b\d+\.\d+ s\b", "T s", text)


@pytest.fixture
def bird(shared_dir: Path, tmp_path: Path) -> Path:
    """A 40x30 PNG cut from Set5's bird."""
    p = tmp_path / "bird.png"
    cv2.imwrite(str(p), cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png"))[:30, :40])
    return p


def test_model_scale_tile_and_pixel_format_reach_the_video(models_env, tmp_path, bird, capsys,
                                                           monkeypatch):
    """-m espcn -s 3 --tile 16 --pix-fmt bgr0 into FFV1 (lossless): every frame is exactly
    upscale(frame, 'espcn', 3, tile=16), each cut into the same 16-pixel tiles."""
    clip = tmp_path / "clip.mkv"
    make_video(clip, n=3, w=48, h=32, audio=False)
    calls = count_process_calls(monkeypatch)  # a spy: every call still runs
    out = tmp_path / "out"
    rc = main(["upscale", str(clip), str(bird), "-m", "espcn", "-s", "3", "--tile", "16",
               "--codec", "ffv1", "--pix-fmt", "bgr0", "-o", str(out)])
    o, e = capsys.readouterr()
    assert rc == 0, e
    video = out / "clip_espcn_x3.mkv"
    assert sorted(p.name for p in out.iterdir()) == ["bird_espcn_x3.png", video.name]
    # 48x32 frames in 16-pixel tiles: 3x2 runs of 22x20 each (edge tiles take their context
    # inward), then the 40x30 image's 2x2 runs of 24x19 (tests/cli/test_cli_upscale.py)
    assert calls == [(20, 22)] * 18 + [(19, 24)] * 4
    times, outs, info = frames(video)
    assert info["format"] == "bgr0" and info["codec"] == "ffv1" and info["size"] == (144, 96)
    _, ins, _ = frames(clip)
    assert len(outs) == 3
    for k, (a, b) in enumerate(zip(ins, outs)):
        assert np.array_equal(b, srzoo.upscale(a, "espcn", 3, tile=16)), k
    assert _time(e).splitlines() == [
        f"{clip} -> {video}: 3 frames 48x32 -> 144x96 (espcn x3, onnxruntime:cpu; ffv1 bgr0), "
        "0 stream(s) copied, T s, R frames/s"]
    assert _time(o).splitlines() == [
        f"{out / 'bird_espcn_x3.png'}  ({bird}, 40x30 -> 120x90, T s)",
        f"upscaled 1 image and 1 video x3 with espcn in T s -> {out}"]
    # -q -v: only the written paths, the video's first
    rc = main(["upscale", str(clip), str(bird), "-m", "bicubic", "-s", "2", "-o", str(out), "-q", "-v"])
    assert rc == 0
    assert capsys.readouterr() == (f"{out / 'clip_bicubic_x2.mkv'}\n{out / 'bird_bicubic_x2.png'}\n", "")


def test_the_bar_is_drawn_on_a_terminal_unless_q(models_env, tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    make_video(clip, n=4, audio=False)
    term = Terminal(100)  # a real pty as stderr
    monkeypatch.setattr(sys, "stderr", term.file)
    assert main(["upscale", str(clip), "-m", "nearest", "-s", "2", "-q"]) == 0
    assert term.text() == ""
    term = Terminal(100)
    monkeypatch.setattr(sys, "stderr", term.file)
    assert main(["upscale", str(clip), "-m", "nearest", "-s", "2", "-o", str(tmp_path / "b.mp4")]) == 0
    monkeypatch.setattr(sys, "stderr", sys.__stderr__)
    text = term.text()
    # the bar's frames (drawn with \r), then the summary line
    assert "nearest x2: 100%" in text and "4/4" in text and "\r" in text
    assert _time(text.splitlines()[-1]).endswith(
        f"{clip} -> {tmp_path / 'b.mp4'}: 4 frames 48x32 -> 96x64 (nearest x2, interpolation:cpu; "
        "libx264 yuv420p crf 17), 0 stream(s) copied, T s, R frames/s")
    # not a terminal: no bar (and -q: nothing at all)
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    assert main(["upscale", str(clip), "-m", "nearest", "-s", "2", "-o", str(tmp_path / "c.mp4"), "-q"]) == 0
    assert plain.getvalue() == ""


def test_a_corrupt_packet_is_a_warning_line_or_with_on_corrupt_fail_an_error(models_env, tmp_path,
                                                                             bird, capsys):
    src = tmp_path / "damaged.mkv"
    make_video(src, n=20, audio=False, codec="ffv1")
    t = corrupt_packet(src, 10, whole=True)
    out = tmp_path / "out"
    assert main(["upscale", str(src), "-m", "bicubic", "-s", "2", "-o", str(out)]) == 0
    o, e = capsys.readouterr()
    video = out / "damaged_bicubic_x2.mkv"
    assert _time(o) == f"upscaled 1 video x2 with bicubic in T s -> {video}\n"
    assert _time(e).splitlines() == [
        f"srzoo: warning: {src}: corrupt video packet at {t:.3f} s: Invalid data found when "
        "processing input; skipped",
        f"{src} -> {video}: 19 frames 48x32 -> 96x64 (bicubic x2, interpolation:cpu; libx264 yuv420p "
        "crf 17), "
        "0 stream(s) copied, T s, R frames/s, 1 corrupt packet(s) skipped"]
    assert len(frames(video)[0]) == 19
    # --on-corrupt fail: the file's one error line (its name once), the image still done
    rc = main(["upscale", str(src), str(bird), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "f"),
               "--on-corrupt", "fail"])
    o, e = capsys.readouterr()
    assert rc == 1
    err = e.splitlines()
    assert err == [f"srzoo: error: {src}: corrupt video packet at {t:.3f} s: Invalid data found "
                   "when processing input (on_corrupt='skip' / --on-corrupt skip drops it and goes on)",
                   "srzoo: 1 of 2 inputs failed"]
    png = tmp_path / "f" / "bird_bicubic_x2.png"
    assert _time(o).splitlines() == [f"{png}  ({bird}, 40x30 -> 80x60, T s)",
                                     f"upscaled 1 image x2 with bicubic in T s -> {png}"]
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [png.name]


def test_preset_and_backend_reach_the_video(models_env, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_video(clip, n=2, audio=False)
    # FFV1 has no presets: refused, so --preset was passed on
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "--codec", "ffv1",
                 "--preset", "fast", "-o", str(tmp_path / "o.mkv")]) == 1
    assert capsys.readouterr() == ("", f"srzoo: error: {clip}: ffv1 has no --preset\n")
    # an unknown backend stops the command before any video work
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "--backend", "nosuch",
                 "-o", str(tmp_path / "b.mp4")]) == 1
    o, e = capsys.readouterr()
    assert o == "" and e.startswith("srzoo: error: unknown backend 'nosuch'; valid backends: ")
    assert len(e.splitlines()) == 1
    # x264's ultrafast preset: CAVLC (cabac=0) in the options x264 writes into the stream
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "--preset", "ultrafast",
                 "-o", str(tmp_path / "u.mp4"), "-q"]) == 0
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "m.mp4"), "-q"]) == 0
    assert b" cabac=0 " in (tmp_path / "u.mp4").read_bytes()
    assert b" cabac=1 " in (tmp_path / "m.mp4").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "m.mp4", "u.mp4"]


def test_an_error_with_no_message_is_named_by_its_type(models_env, tmp_path, monkeypatch, capsys):
    """A failure whose text is empty (an ``OSError()`` when the finished file is put in place)
    is reported by its type, not as an empty reason or a crash."""
    clip = tmp_path / "clip.mp4"
    make_video(clip, n=2, audio=False)

    def failing_replace(src, dst):
        raise OSError()

    monkeypatch.setattr(os, "replace", failing_replace)
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "-q"]) == 1
    assert capsys.readouterr() == ("", f"srzoo: error: {clip}: OSError\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
