"""The built-in models: shipped inside the package, no download, the default model,
the README's first command offline, and the quality bar over OpenCV's models."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.evaluate.metrics import imresize, modcrop, psnr
from srzoo.hub.registry import Registry, bundled_dir, parse_manifest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "example.png"
OPENCV_MODELS = ("espcn", "fsrcnn", "fsrcnn-small", "lapsrn")


def test_manifest_entries_match_the_shipped_files() -> None:
    models, _ = parse_manifest(REPO / "registry" / "builtin.toml")
    assert sorted(m.scale for m in models) == [2, 3, 4]
    total = 0
    for m in models:
        assert m.name == "default" and m.format == "onnx" and m.artifact.bundled
        assert m.artifact.urls == ()
        path = bundled_dir() / m.file
        data = path.read_bytes()
        total += len(data)
        assert len(data) == m.size and hashlib.sha256(data).hexdigest() == m.sha256
    assert total < 1_000_000


def test_default_needs_no_download_and_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(cache))
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    from srzoo.runtime.upscaler import clear_cache

    clear_cache()
    img = cv2.imread(str(EXAMPLE))
    for s in (2, 3, 4):
        out = srzoo.upscale(img, scale=s)  # model defaults to "default"
        assert out.shape == (img.shape[0] * s, img.shape[1] * s, 3)
    assert srzoo.fetch("default", 3) == bundled_dir() / "srzoo_x3.onnx"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_damaged_bundled_file_is_refused(tmp_path: Path) -> None:
    from srzoo.hub.download import fetch_artifact

    models, _ = parse_manifest(REPO / "registry" / "builtin.toml")
    import dataclasses

    art = dataclasses.replace(models[0].artifact, sha256="0" * 64)
    with pytest.raises(srzoo.ChecksumError, match="reinstall srzoo"):
        fetch_artifact(art, what="default x2")


def test_bundled_manifest_validation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('schema = 1\n[[model]]\nname = "x"\nscale = 2\nfile = "x.onnx"\nformat = "onnx"\n'
                   'license = "MIT"\nsize = 3\nsha256 = "' + "a" * 64 + '"\n')
    with pytest.raises(srzoo.ManifestError, match="bundled = true"):
        Registry([bad], builtin=False, env=False)
    bad.write_text(bad.read_text() + "bundled = true\n")
    (entry,) = Registry([bad], builtin=False, env=False).models()
    assert entry.artifact.bundled and entry.artifact.urls == ()


def test_readme_first_command_offline_with_empty_cache(tmp_path: Path) -> None:
    """`srzoo upscale examples/example.png -s 2` on a machine with no network,
    no mirror and an empty cache: writes the result, says where and how long."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRZOO_")}
    # the srzoo this test imported (the source tree here, the installed wheel in CI)
    env.update(SRZOO_OFFLINE="1", SRZOO_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(Path(srzoo.__file__).resolve().parents[1]))
    work = tmp_path / "work"
    work.mkdir()
    (work / "example.png").write_bytes(EXAMPLE.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "srzoo", "upscale", "example.png", "-s", "2"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = work / "example_default_x2.png"
    assert out.is_file()
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith(str(out.name)) or lines[0].startswith(str(out))
    assert "120x80" not in lines[0] and "240x160 -> 480x320" in lines[0]
    assert lines[-1].startswith("upscaled 1 image x2 with default in ") and lines[-1].endswith(
        "example_default_x2.png")
    assert proc.stderr == ""
    # nothing downloaded or recorded: at most the measured choice of `auto` (srzoo.runtime.autotune)
    left = {p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert left <= {"autotune.json", "autotune.json.lock"}, left
    want = srzoo.upscale(cv2.imread(str(EXAMPLE)), "default", 2)
    assert np.array_equal(cv2.imread(str(out)), want)
    # --quiet: nothing on stdout, same file
    out.unlink()
    proc = subprocess.run([sys.executable, "-m", "srzoo", "upscale", "example.png", "-s", "2", "-q"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "" and out.is_file()


def _best_opencv() -> dict[tuple[str, int], float]:
    """Best OpenCV-distributed model per (dataset, scale), as committed in bench/results
    (srzoo bench --protocol matlab, see bench/quality.md)."""
    best: dict[tuple[str, int], float] = {}
    with open(REPO / "bench" / "results" / "quality_matlab.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["model"] in OPENCV_MODELS and r["status"] == "ok" and r["psnr"]:
                key = (r["dataset"], int(r["scale"]))
                best[key] = max(best.get(key, 0.0), float(r["psnr"]))
    return best


@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_builtin_beats_every_opencv_model_by_1db(shared_dir: Path, dataset: str) -> None:
    best = _best_opencv()
    files = sorted((shared_dir / "datasets" / dataset).glob("*.png"))
    for s in (2, 3, 4):
        vals = []
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            hr = modcrop(img, s)
            lr = imresize(hr, 1 / s)
            vals.append(psnr(hr, srzoo.upscale(lr, "default", s), shave=s, y_channel=True))
        ours = float(np.mean(vals))
        assert ours >= best[(dataset.lower(), s)] + 1.0, (dataset, s, ours, best[(dataset.lower(), s)])


def test_cache_rm_never_touches_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    from srzoo.cli import main

    before = {p.name: p.read_bytes() for p in bundled_dir().glob("*.onnx")}
    assert len(before) == 3
    assert main(["cache", "rm", "default"]) == 0
    assert "0 file(s) removed" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in bundled_dir().glob("*.onnx")} == before
    assert main(["list", "default"]) == 0
    out = capsys.readouterr().out
    assert out.split("\n\n")[0].count("built-in") == 3 and "srzoo_x4.onnx" in out  # the cached column


def test_upscale_cli_lines_summary_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from srzoo.cli import main

    src = tmp_path / "in"
    src.mkdir()
    img = cv2.imread(str(EXAMPLE))
    cv2.imwrite(str(src / "a.png"), img[:80, :120])
    cv2.imwrite(str(src / "b.png"), img[80:, 120:])
    assert main(["upscale", str(src), "-s", "3", "-o", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(str(tmp_path / "out" / "a_default_x3.png")) and "120x80 -> 360x240" in lines[0]
    assert lines[1].startswith(str(tmp_path / "out" / "b_default_x3.png")) and "120x80 -> 360x240" in lines[1]
    assert lines[2].startswith("upscaled 2 images x3 with default in ") and lines[2].endswith(str(tmp_path / "out"))
    assert main(["upscale", str(src), "-s", "3", "-o", str(tmp_path / "out2"), "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["a_default_x3.png", "b_default_x3.png"]
