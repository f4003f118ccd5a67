"""srzoo compare / bench --gallery: labelled grids with scores under the standard protocol."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.cli import main
from srzoo.evaluate.compare import compare, gallery, pick_crop
from srzoo.evaluate.metrics import imresize, modcrop, psnr, ssim


@pytest.fixture(scope="module")
def bird(shared_dir: Path) -> Path:
    return shared_dir / "datasets" / "Set5" / "bird.png"


def test_grid_scores_are_the_protocols(bird: Path) -> None:
    res = compare(bird, "nearest,bicubic", 3, crop=60)
    names = [t.name for t in res.tiles]
    assert names == ["HR (reference)", "bicubic-matlab", "nearest", "bicubic"]
    hr = modcrop(cv2.imread(str(bird)), 3)
    lr = imresize(hr, 1 / 3)
    base = imresize(lr, 3)
    t = {x.name: x for x in res.tiles}
    assert t["bicubic-matlab"].psnr == pytest.approx(psnr(hr, base, shave=3, y_channel=True), abs=1e-12)
    assert t["bicubic-matlab"].ssim == pytest.approx(ssim(hr, base, shave=3, y_channel=True), abs=1e-12)
    near = cv2.resize(lr, (lr.shape[1] * 3, lr.shape[0] * 3), interpolation=cv2.INTER_NEAREST)
    assert t["nearest"].psnr == pytest.approx(psnr(hr, near, shave=3, y_channel=True), abs=1e-9)
    assert t["nearest"].psnr < t["bicubic"].psnr
    # every tile shows the same region: the HR tile is that crop of the HR image, zoomed
    x, y, w, h = res.box
    z = t["HR (reference)"].crop.shape[0] // h
    assert z == 256 // 60
    want = cv2.resize(hr[y:y + h, x:x + w], (w * z, h * z), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(t["HR (reference)"].crop, want)
    want = cv2.resize(near[y:y + h, x:x + w], (w * z, h * z), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(t["nearest"].crop, want)
    # 4 tiles in one row, each with a label bar; padding 4 px
    assert res.grid.shape == (4 + (34 + h * z) + 4, 4 + 4 * (w * z + 4), 3)


def test_pick_crop_finds_the_detail() -> None:
    img = np.full((200, 300, 3), 128, np.uint8)
    img[120:170, 40:90] = np.indices((50, 50)).sum(0)[..., None] % 2 * 255  # a checkerboard
    x, y = pick_crop(img, 50)
    assert abs(x - 40) <= 7 and abs(y - 120) <= 7


def test_input_mode_has_no_scores(bird: Path) -> None:
    res = compare(bird, ["bicubic"], 2, reference=False, crop=64, box=(10, 20), zoom=1)
    assert [t.name for t in res.tiles] == ["bicubic"] and res.tiles[0].psnr is None
    img = cv2.imread(str(bird))
    up = srzoo.upscale(img, "bicubic", 2)
    assert np.array_equal(res.tiles[0].crop, up[20:84, 10:74])


def test_cli_compare_runs_a_network_without_backend_option(bird: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """No --backend: 'auto' (a network model checks it; the interpolations do not)."""
    out = tmp_path / "g.png"
    assert main(["compare", str(bird), "-m", "default", "--crop", "32", "-o", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"wrote {out} (")
    assert cv2.imread(str(out)) is not None


def test_cli_compare_and_errors(bird: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"
    assert main(["compare", str(bird), "-m", "bicubic,nearest", "-s", "2", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bicubic-matlab" in text and f"wrote {out}" in text
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[1] > grid.shape[0]
    assert main(["compare", str(bird), "-m", "no-such-model", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_gallery_one_grid_per_image(shared_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "mini"
    src.mkdir()
    for name in ("bird.png", "head.png"):
        (src / name).write_bytes((shared_dir / "datasets" / "Set5" / name).read_bytes())
    paths = gallery(src, tmp_path / "g", "bicubic", [2, 4], crop=48)
    assert sorted(p.name for p in paths) == ["bird_x2.png", "bird_x4.png", "head_x2.png", "head_x4.png"]
    for p in paths:  # each file is the comparison grid of its own image and scale
        name, s = p.stem.rsplit("_x", 1)
        want = compare(src / f"{name}.png", "bicubic", int(s), crop=48).grid
        assert np.array_equal(cv2.imread(str(p)), want), p.name


def test_bench_gallery_flag(shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "Two"
    src.mkdir()
    for name in ("bird.png", "woman.png"):
        (src / name).write_bytes((shared_dir / "datasets" / "Set5" / name).read_bytes())
    assert main(["bench", "--models", "bicubic", "--scales", "3", "--dataset", str(src), "--repeat", "1",
                 "--warmup", "0", "--gallery", str(tmp_path / "gal")]) == 0
    out = capsys.readouterr().out
    assert "MS-SSIM" in out and "gallery: 2 grids" in out
    assert sorted(p.name for p in (tmp_path / "gal" / "two").iterdir()) == ["bird_x3.png", "woman_x3.png"]


def test_bench_ms_ssim_column_is_the_metric(shared_dir: Path, tmp_path: Path) -> None:
    from srzoo.evaluate.metrics import ms_ssim

    src = tmp_path / "one"
    src.mkdir()
    (src / "bird.png").write_bytes((shared_dir / "datasets" / "Set5" / "bird.png").read_bytes())
    rep = srzoo.bench("bicubic", [2], "cpu", src, repeat=1, warmup=0)
    row = next(r for r in rep.results if r["model"] == "bicubic-matlab")
    # recorded once (srzoo 2026-12, float64): MS-SSIM on Y with the 2-pixel shave is 0.9973498;
    # without the shave 0.9973400, on BGR 0.9967624, so 2e-6 tells them apart
    assert row["ms_ssim"] == pytest.approx(0.9973498, abs=2e-6)
    hr = modcrop(cv2.imread(str(src / "bird.png")), 2)
    assert ms_ssim(hr, hr, shave=2, y_channel=True) == pytest.approx(1.0, abs=1e-12)
    assert "ms_ssim" in rep.to_csv().splitlines()[0]


def test_cli_compare_input_at_and_backend_take_effect(bird: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Every option reaches compare(): --input (IMAGE itself upscaled, no reference tiles),
    --at X,Y (the crop's corner), the default scale 2, --crop/--zoom, --backend."""
    out = tmp_path / "grid.png"
    assert main(["compare", str(bird), "-m", "nearest", "--input", "--at", "10,20", "--crop", "32",
                 "--zoom", "1", "--backend", "cpu", "-o", str(out)]) == 0
    grid = cv2.imread(str(out))
    img = cv2.imread(str(bird))
    up = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    # one tile: 4 px padding, a 34 px label bar, then the crop
    assert grid.shape == (4 + 34 + 32 + 4, 4 + 32 + 4, 3)
    assert np.array_equal(grid[4 + 34:4 + 34 + 32, 4:4 + 32], up[20:52, 10:42])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"wrote {out} (40x74; crop 32x32 at 10,20 of the x2 output)"
    assert main(["compare", str(bird), "-m", "nearest", "--backend", "bogus", "-o", str(tmp_path / "b.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("srzoo: error: ") and "bogus" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b.png").exists()
