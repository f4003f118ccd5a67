"""``srzoo upscale``: files, folders, globs, outputs, per-file failures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.cli import main
from suite import count_process_calls


@pytest.fixture
def images(tmp_path: Path, shared_dir: Path) -> Path:
    """A folder with three small real PNGs (one grey, one BGRA) and a sub-folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    src = cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png"))
    cv2.imwrite(str(folder / "a.png"), src[:30, :40])
    cv2.imwrite(str(folder / "b.png"), cv2.cvtColor(src[30:60, :40], cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "c.png"), np.dstack((src[60:90, :40], np.full((30, 40), 200, np.uint8))))
    (folder / "notes.txt").write_text("not an image")
    return folder


def read(p: Path) -> np.ndarray:
    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert img is not None, p
    return img


def test_single_file_next_to_input(models_env, images, capsys):
    assert main(["upscale", str(images / "a.png"), "-m", "espcn", "-s", "2", "-q"]) == 0
    out = images / "a_espcn_x2.png"
    assert np.array_equal(read(out), srzoo.upscale(read(images / "a.png"), "espcn", 2))
    assert capsys.readouterr().err == ""
    # written through a temp file, yet with the mode any new file gets (umask applies)
    mask = os.umask(0o22)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_folder_into_output_folder_keeps_layouts(models_env, images, tmp_path):
    out = tmp_path / "out"
    assert main(["upscale", str(images), "-m", "fsrcnn", "-s", "3", "-o", str(out), "-q"]) == 0
    # model and scale in the names: another model into the same folder replaces nothing
    assert sorted(p.name for p in out.iterdir()) == ["a_fsrcnn_x3.png", "b_fsrcnn_x3.png",
                                                     "c_fsrcnn_x3.png"]
    assert read(out / "a_fsrcnn_x3.png").shape == (90, 120, 3)
    assert read(out / "b_fsrcnn_x3.png").shape == (90, 120)  # grey stays grey
    c = read(out / "c_fsrcnn_x3.png")
    assert c.shape == (90, 120, 4) and (c[:, :, 3] == 200).all()  # alpha kept
    assert not list(out.glob(".*"))  # no temp files left


def test_glob_and_single_output_file(models_env, images, tmp_path):
    assert main(["upscale", str(images / "[ab].png"), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "g"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["a_bicubic_x2.png",
                                                                  "b_bicubic_x2.png"]
    dst = tmp_path / "one.png"
    assert main(["upscale", str(images / "a.png"), "-m", "nearest", "-s", "4", "-o", str(dst), "-q"]) == 0
    assert read(dst).shape == (120, 160, 3)


def test_failures_are_one_line_each_and_others_complete(models_env, images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    rc = main(["upscale", str(images), str(tmp_path / "missing.png"), str(tmp_path / "none*.jpg"),
               "-m", "fsrcnn-small", "-s", "2", "-o", str(out), "-q"])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("srzoo: error: ")]
    assert len(errors) == 3
    assert any(ln.startswith(f"srzoo: error: {images / 'broken.png'}: not an image OpenCV can decode")
               for ln in errors)
    assert f"srzoo: error: {tmp_path / 'missing.png'}: no such file or folder" in errors
    assert f"srzoo: error: {tmp_path / 'none*.jpg'}: pattern matches no file" in errors
    assert sorted(p.name for p in out.iterdir()) == ["a_fsrcnn-small_x2.png", "b_fsrcnn-small_x2.png",
                                                     "c_fsrcnn-small_x2.png"]
    assert not list(out.glob("broken*"))


def test_inputs_are_never_overwritten_unless_asked(models_env, images, capsys):
    before = (images / "a.png").read_bytes()
    rc = main(["upscale", str(images / "a.png"), "-m", "bicubic", "-s", "2", "-o", str(images / "a.png"),
               "-q"])
    assert rc == 1
    assert "is an input; refusing to overwrite it" in capsys.readouterr().err
    assert (images / "a.png").read_bytes() == before
    rc = main(["upscale", str(images / "a.png"), "-m", "bicubic", "-s", "2", "-o", str(images / "a.png"),
               "-q", "--overwrite"])
    assert rc == 0 and read(images / "a.png").shape == (60, 80, 3)


def test_rerun_on_folder_skips_earlier_outputs(models_env, images):
    assert main(["upscale", str(images), "-m", "nearest", "-s", "2", "-q"]) == 0
    assert main(["upscale", str(images), "-m", "nearest", "-s", "2", "-q"]) == 0
    assert not list(images.glob("*_x2_nearest_x2.png"))
    assert sorted(p.name for p in images.glob("*_nearest_x2.png")) == \
        ["a_nearest_x2.png", "b_nearest_x2.png", "c_nearest_x2.png"]


def test_same_output_twice_is_refused(models_env, images, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(images / "a.png", other / "a.png")
    rc = main(["upscale", str(images / "a.png"), str(other / "a.png"), "-m", "nearest", "-s", "2",
               "-o", str(tmp_path / "out"), "-q"])
    assert rc == 1
    assert "would also be written for" in capsys.readouterr().err


def test_failed_write_leaves_no_partial_file(models_env, images, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    rc = main(["upscale", str(images / "a.png"), "-m", "nearest", "-s", "2", "-o", str(out), "-q"])
    assert rc == 1
    assert "No space left on device" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_model_and_backend_errors(models_env, images, capsys):
    assert main(["upscale", str(images / "a.png"), "-m", "espcn", "-s", "5", "-q"]) == 1
    assert "has scales x2, x3, x4" in capsys.readouterr().err
    assert main(["upscale", str(images / "a.png"), "-m", "nosuch", "-q"]) == 1
    assert "unknown model 'nosuch'" in capsys.readouterr().err
    if not srzoo.backends.capabilities()["cuda_dnn"]:
        assert main(["upscale", str(images / "a.png"), "--backend", "cuda", "-q"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "backend 'cuda' is unavailable" in err[0]
    assert not list(images.glob("*_x*.png"))


def test_threads_option_takes_effect_in_serial_mode(models_env, images, tmp_path, monkeypatch):
    """--threads without --jobs: the network runs with that many OpenCV threads, and the
    caller's setting is restored afterwards (it used to be ignored in serial mode)."""
    before = cv2.getNumThreads()
    calls: list[int] = []
    real = cv2.setNumThreads
    monkeypatch.setattr(cv2, "setNumThreads", lambda n: (calls.append(int(n)), real(n))[1])
    assert main(["upscale", str(images / "a.png"), "-m", "espcn", "-s", "2", "--threads", "1",
                 "-o", str(tmp_path / "t.png"), "-q"]) == 0
    assert 1 in calls and calls[-1] == before and cv2.getNumThreads() == before
    calls.clear()
    assert main(["upscale", str(images / "a.png"), "-m", "espcn", "-s", "2",
                 "-o", str(tmp_path / "u.png"), "-q"]) == 0
    assert calls == []  # no --threads: OpenCV's own setting, untouched
    assert np.array_equal(read(tmp_path / "t.png"), read(tmp_path / "u.png"))


def test_tile_option(models_env, images, tmp_path, monkeypatch):
    """--tile reaches the pipeline: a 40x30 input in 16-pixel tiles (+ 4 of overlap) is
    2x2 = 4 network runs of one shape, 24x19 (edge tiles take their context inward;
    one run without --tile), and the file is the library's tiled result exactly."""
    calls = count_process_calls(monkeypatch)  # a spy: every call still runs
    assert main(["upscale", str(images / "a.png"), "-m", "espcn", "-s", "2", "--tile", "16",
                 "-o", str(tmp_path / "t.png"), "-q"]) == 0
    assert calls == [(19, 24)] * 4
    calls.clear()
    assert main(["upscale", str(images / "a.png"), "-m", "espcn", "-s", "2",
                 "-o", str(tmp_path / "u.png"), "-q"]) == 0
    assert calls == [(30, 40)]
    calls.clear()
    tiled = srzoo.upscale(read(images / "a.png"), "espcn", 2, tile=16)
    assert len(calls) == 4
    assert np.array_equal(read(tmp_path / "t.png"), tiled)
    whole = srzoo.upscale(read(images / "a.png"), "espcn", 2, tile=0)
    assert np.abs(read(tmp_path / "t.png").astype(int) - whole).max() <= 1


def test_two_models_into_one_folder_keep_both_and_format_follows_input(models_env, images, tmp_path):
    out = tmp_path / "out"
    cv2.imwrite(str(images / "d.jpg"), read(images / "a.png"), [cv2.IMWRITE_JPEG_QUALITY, 90])
    for model in ("espcn", "fsrcnn"):
        assert main(["upscale", str(images / "a.png"), str(images / "d.jpg"), "-m", model, "-s", "2",
                     "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_espcn_x2.png", "a_fsrcnn_x2.png",
                                                     "d_espcn_x2.jpg", "d_fsrcnn_x2.jpg"]
    a = read(images / "a.png")
    assert np.array_equal(read(out / "a_espcn_x2.png"), srzoo.upscale(a, "espcn", 2))
    assert np.array_equal(read(out / "a_fsrcnn_x2.png"), srzoo.upscale(a, "fsrcnn", 2))
    assert (out / "d_espcn_x2.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert main(["upscale", str(images / "d.jpg"), "-m", "espcn", "-s", "2", "-o", str(out),
                 "--format", "png", "-q"]) == 0
    assert read(out / "d_espcn_x2.png").shape == (60, 80, 3)
    with pytest.raises(SystemExit):  # argparse: one line, exit 2
        main(["upscale", str(images / "a.png"), "--format", "gif"])


def test_width_height_fit_inside_and_the_real_scale_is_said(models_env, images, tmp_path, capsys):
    src = str(images / "a.png")  # 40x30
    assert main(["upscale", src, "-m", "espcn", "--width", "160", "-o", str(tmp_path / "w.png")]) == 0
    assert read(tmp_path / "w.png").shape == (120, 160, 3)
    assert "upscaled 1 image x4 with espcn" in capsys.readouterr().out  # not the default x2
    # both bounds: the largest size inside both, aspect kept
    assert main(["upscale", src, "-m", "espcn", "--width", "160", "--height", "60",
                 "-o", str(tmp_path / "f.png")]) == 0
    assert read(tmp_path / "f.png").shape == (60, 80, 3)
    assert "upscaled 1 image x2 with espcn" in capsys.readouterr().out
    # --stretch: exactly that size, and the line says so
    assert main(["upscale", src, "-m", "espcn", "--width", "160", "--height", "60", "--stretch",
                 "-o", str(tmp_path / "s.png")]) == 0
    assert read(tmp_path / "s.png").shape == (60, 160, 3)
    assert "upscaled 1 image x4 by 2 with espcn" in capsys.readouterr().out
    # one rule for scales: "4" is 4 in the API too; Upscaler names the way to any scale
    img = read(images / "a.png")
    assert np.array_equal(srzoo.upscale(img, "espcn", "4"), srzoo.upscale(img, "espcn", 4))
    with pytest.raises(srzoo.UnknownModel, match=r"has no x3.*srzoo.upscale\(image, 'lapsrn', 3\)"):
        srzoo.Upscaler("lapsrn", 3)


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["upscale", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "srzoo upscale photo.jpg" in out and "--stretch" in out
