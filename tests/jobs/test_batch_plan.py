"""srzoo.jobs.batch.plan on exact values: every option lands in each Job as given, the
defaults are the documented ones, what is refused before any work (quality, sizes, scales,
formats, outputs that are inputs or collide) and what counts as already done. Nothing runs
a network; URLs use fsspec's in-memory filesystem."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from srzoo.errors import SrzooError
from srzoo.jobs import batch

fsspec = pytest.importorskip("fsspec")


def _img(path: Path, h: int = 48, w: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))
    return path


def _job(index: int, src: Path | str, dst: Path | str, model: str = "espcn", **kw) -> batch.Job:
    return batch.Job(index=index, input=str(src), output=str(dst), entries=batch.model_entries(model), **kw)


def test_defaults(tmp_path: Path) -> None:
    a, b = _img(tmp_path / "in" / "a.png"), _img(tmp_path / "in" / "b.jpg")
    _img(tmp_path / "in" / "a_espcn_x2.png", 96, 128)  # an earlier result: not an input
    done = _img(tmp_path / "in" / "b_espcn_x2.jpg", 96, 128)  # b's, finished: redone (no skip_existing)
    p = batch.plan([tmp_path / "in"])
    assert (p.model, p.label, p.results) == ("espcn", "x2", [None, None])
    assert p.entries == batch.model_entries("espcn")
    assert p.jobs == [_job(0, a, tmp_path / "in" / "a_espcn_x2.png", scale=2),
                      _job(1, b, done, scale=2)]


def test_every_option_reaches_the_jobs(tmp_path: Path) -> None:
    a, b = _img(tmp_path / "a.png"), _img(tmp_path / "b.png")
    out = tmp_path / "out"
    p = batch.plan([a, b], "fsrcnn-small", None, output=out, width=100, backend="onnxruntime",
                   tile=64, threads=1, format="webp", quality=80, stretch=True)
    assert (p.model, p.label) == ("fsrcnn-small", "w100")
    common = dict(model="fsrcnn-small", scale=None, width=100, height=None, backend="onnxruntime",
                  tile=64, threads=1, quality=80, stretch=True)
    assert p.jobs == [_job(0, a, f"{out}/a_fsrcnn-small_w100.webp", **common),
                      _job(1, b, f"{out}/b_fsrcnn-small_w100.webp", **common)]
    p = batch.plan([a], "fsrcnn-small", 3, output=out, height=50, width=None)
    assert p.label == "h50" and p.jobs[0].scale is None and p.jobs[0].height == 50
    p = batch.plan([a], "fsrcnn-small", 3, output=out, height=50, width=70)
    assert p.label == "70x50" and (p.jobs[0].width, p.jobs[0].height, p.jobs[0].scale) == (70, 50, None)
    p = batch.plan([a], "fsrcnn-small", None, output=out)  # no scale, no size: x2
    assert p.label == "x2" and p.jobs[0].scale == 2
    p = batch.plan([a], "fsrcnn-small", 2.5, output=out)
    assert p.label == "x2.5" and p.jobs[0].scale == 2.5


@pytest.mark.parametrize("q", [0, 101, True, 2.5, "80", -1])
def test_quality_bounds(q, tmp_path: Path) -> None:
    with pytest.raises(SrzooError) as e:
        batch.plan([tmp_path], "bicubic", 2, quality=q)
    assert str(e.value) == f"quality must be an integer from 1 to 100, got {q!r}"


def test_quality_ends_and_formats(tmp_path: Path) -> None:
    a = _img(tmp_path / "a.png")
    assert batch.plan([a], "bicubic", 2, quality=1).jobs[0].quality == 1
    assert batch.plan([a], "bicubic", 2, quality=100).jobs[0].quality == 100
    with pytest.raises(SrzooError, match=r"^unknown output format 'gif'; use one of "):
        batch.plan([a], "bicubic", 2, format="gif")
    assert batch.plan([a], "bicubic", 2, format="JPG").jobs[0].output == str(tmp_path / "a_bicubic_x2.jpg")
    with pytest.raises(SrzooError, match=r"^unknown output format 'gif'"):  # also with no input file
        batch.plan([tmp_path / "none*.png"], "bicubic", 2, format="gif")


def test_sizes_and_scales_refused_before_any_work(tmp_path: Path) -> None:
    a = _img(tmp_path / "a.png")
    for kw, flag, v in (({"width": 0}, "width", 0), ({"height": 0}, "height", 0),
                        ({"width": 10, "height": -3}, "height", -3)):
        with pytest.raises(SrzooError) as e:
            batch.plan([a], "bicubic", None, **kw)
        assert str(e.value) == f"--{flag} must be a positive whole number of pixels, got {v!r}"
    assert batch.plan([a], "bicubic", None, width=1).jobs[0].width == 1  # 1 pixel is a size
    assert batch.plan([a], "bicubic", None, height=1).jobs[0].height == 1
    with pytest.raises(SrzooError) as e:
        batch.plan([a], "fsrcnn-small", 8)
    assert str(e.value).startswith("model 'fsrcnn-small' has no x8; it has scales x2, x3, x4 ")
    with pytest.raises(SrzooError):
        batch.plan([a], "bicubic", 0)


def test_local_and_url_inputs_and_their_failures(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    a = _img(tmp_path / "a.png")
    fs.pipe("/p24/c.png", (tmp_path / "a.png").read_bytes())
    try:
        p = batch.plan([a, tmp_path / "gone.png", "memory://p24/c.png", "memory://p24/nope.png"],
                       "bicubic", 2, output=tmp_path / "o")
    finally:
        fs.rm("/p24", recursive=True)
    assert [j.input for j in p.jobs] == [str(a), "memory:///p24/c.png"]
    assert [j.output for j in p.jobs] == [f"{tmp_path}/o/a_bicubic_x2.png", f"{tmp_path}/o/c_bicubic_x2.png"]
    fails = [(r.input, r.error) for r in p.results if r is not None]
    assert fails == [(str(tmp_path / "gone.png"), "no such file or folder"),
                     ("memory://p24/nope.png", "no such file or folder")]
    assert [j.index for j in p.jobs] == [2, 3] and p.results[2:] == [None, None]


def test_an_image_named_output_is_a_folder_for_several_inputs(tmp_path: Path) -> None:
    a, b = _img(tmp_path / "a.png"), _img(tmp_path / "b.png")
    p = batch.plan([a, b], "bicubic", 2, output=tmp_path / "r.png")
    assert [j.output for j in p.jobs] == [f"{tmp_path}/r.png/a_bicubic_x2.png", f"{tmp_path}/r.png/b_bicubic_x2.png"]
    p = batch.plan([a], "bicubic", 2, output=tmp_path / "r.png")
    assert [j.output for j in p.jobs] == [str(tmp_path / "r.png")]


def test_outputs_that_are_inputs_or_collide(tmp_path: Path) -> None:
    x = _img(tmp_path / "x.png")
    y = _img(tmp_path / "x_bicubic_x2.png")  # an input named like x's output
    other = _img(tmp_path / "sub" / "x.png")
    z = _img(tmp_path / "sub" / "z.png")
    p = batch.plan([x, y, z], "bicubic", 2, output=tmp_path)
    assert [(r.input, r.error) for r in p.results if r is not None] == [
        (str(x), f"output {tmp_path}/x_bicubic_x2.png is an input; refusing to overwrite it (use "
                 "--overwrite, or -o to write elsewhere)")]
    assert [j.input for j in p.jobs] == [str(y), str(z)]  # the ones after a refusal are still planned
    assert [j.input for j in batch.plan([x, y, z], "bicubic", 2, output=tmp_path, overwrite=True).jobs] == [
        str(x), str(y), str(z)]
    p = batch.plan([x, other, other.parent / "again.png", z], "bicubic", 2, output=tmp_path / "o")
    # again.png does not exist: a planning failure listed first
    assert [(r.input, r.error) for r in p.results if r is not None] == [
        (str(other.parent / "again.png"), "no such file or folder"),
        (str(other), f"output {tmp_path}/o/x_bicubic_x2.png would also be written for {x}; use separate "
                     "-o folders")]
    assert [j.input for j in p.jobs] == [str(x), str(z)]
    p = batch.plan([x, other, other], "bicubic", 2, output=tmp_path / "o")  # the same file twice: once
    assert len(p.jobs) == 1 and [r.error.split(" would")[1] for r in p.results if r is not None] == [
        f" also be written for {x}; use separate -o folders"]


def test_skip_existing_counts_only_finished_outputs_of_the_right_size(tmp_path: Path) -> None:
    a, b = _img(tmp_path / "in" / "a.png"), _img(tmp_path / "in" / "b.png")
    out = tmp_path / "out"
    _img(out / "a_bicubic_x2.png", 96, 128)   # finished, the size x2 gives
    _img(out / "b_bicubic_x2.png", 96, 127)   # another size: redone
    p = batch.plan([a, b], "bicubic", 2, output=out, skip_existing=True)
    assert [(r.input, r.output, r.skipped) for r in p.results if r is not None] == [
        (str(a), str(out / "a_bicubic_x2.png"), True)]
    assert [j.input for j in p.jobs] == [str(b)] and p.skipped == 1
    # by width: the size the width gives (100 x 75), not the x2 one
    _img(out / "a_bicubic_w100.png", 75, 100)
    _img(out / "b_bicubic_w100.png", 96, 128)
    p = batch.plan([a, b], "bicubic", None, output=out, width=100, skip_existing=True)
    assert [r.input for r in p.results if r is not None] == [str(a)] and [j.input for j in p.jobs] == [str(b)]
    _img(out / "a_bicubic_h30.png", 30, 40)
    p = batch.plan([a], "bicubic", None, output=out, height=30, skip_existing=True)
    assert p.skipped == 1 and p.jobs == []
    _img(out / "a_bicubic_40x40.png", 30, 40)  # fits inside 40 x 40
    p = batch.plan([a], "bicubic", None, output=out, width=40, height=40, skip_existing=True)
    assert p.skipped == 1


# --------------------------------------------------------------------------- run_batch's report
def test_run_batch_report_callbacks_and_bar(tmp_path: Path, capsys) -> None:
    """A serial batch of three images and a broken file: the report's results and records,
    the callback, and the progress bar (forced on, so it shows off a terminal too)."""
    fs = fsspec.filesystem("memory")
    a, b = _img(tmp_path / "in" / "a.png"), _img(tmp_path / "in" / "b.png", 20, 30)
    (tmp_path / "in" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    fs.pipe("/r24/d.png", a.read_bytes())
    seen: list = []
    t0 = time.perf_counter()
    try:
        rep = batch.run_batch([tmp_path / "in", "memory://r24/d.png"], "bicubic", 2, output=tmp_path / "o",
                              progress=True, on_result=seen.append)
        wall = time.perf_counter() - t0
        to_url = batch.run_batch([a], "bicubic", 2, output="memory://r24/out", progress=False)
        assert to_url.results[0].output == "memory://r24/out/a_bicubic_x2.png"  # a URL stays a string
        assert fs.cat("/r24/out/a_bicubic_x2.png") == (tmp_path / "o" / "a_bicubic_x2.png").read_bytes()
    finally:
        fs.rm("/r24", recursive=True)
    assert (rep.model, rep.label, rep.executor) == ("bicubic", "x2", "serial")
    assert (rep.written, rep.failed, rep.skipped) == (3, 1, 0)
    assert 0 < rep.seconds <= wall
    r = rep.results
    assert [x.input for x in r] == [str(a), str(b), str(tmp_path / "in" / "c.png"), "memory:///r24/d.png"]
    assert [x.output for x in r] == [tmp_path / "o" / "a_bicubic_x2.png", tmp_path / "o" / "b_bicubic_x2.png",
                                     None, tmp_path / "o" / "d_bicubic_x2.png"]
    assert r[2].error == "not an image OpenCV can decode (empty, truncated or unknown format)"
    assert [(x.in_shape, x.out_shape) for x in r] == [((48, 64), (96, 128)), ((20, 30), (40, 60)),
                                                     (None, None), ((48, 64), (96, 128))]
    assert [x.seconds for x in r] == [rec["seconds"] for rec in rep.records]
    assert [rec["status"] for rec in rep.records] == ["written", "written", "failed", "written"]
    assert seen == r  # each result once, as it arrived (serial: in order)
    err = capsys.readouterr().err
    assert "bicubic x2: 100%|" in err and "4/4 [" in err and "img/s, failed=1]" in err, err
    assert "failed=2" not in err and "failed=None" not in err
    # progress None (the default): a bar only on a terminal; the note-free, bar-free stderr here
    batch.run_batch([tmp_path / "in"], "bicubic", 2, output=tmp_path / "o2")
    assert capsys.readouterr().err == ""


def test_the_bar_counts_every_failure(tmp_path: Path, capsys) -> None:
    for n in ("x.png", "y.png"):
        (tmp_path / n).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    _img(tmp_path / "z.png")
    rep = batch.run_batch([tmp_path], "bicubic", 2, output=tmp_path / "o", progress=True)
    assert (rep.written, rep.failed) == (1, 2)
    err = capsys.readouterr().err
    assert "3/3 [" in err and err.rstrip().endswith("img/s, failed=2]"), err


def test_skip_existing_at_a_scale_other_than_two(tmp_path: Path) -> None:
    a = _img(tmp_path / "a.png")
    _img(tmp_path / "o" / "a_bicubic_x3.png", 144, 192)  # the x3 size: done
    p = batch.plan([a], "bicubic", 3, output=tmp_path / "o", skip_existing=True)
    assert p.skipped == 1 and p.jobs == []
