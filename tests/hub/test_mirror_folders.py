"""SRZOO_MIRROR folders are searched recursively by file name, bounded (srzoo.hub.mirror),
on the real files of ../shared: one folder of model subfolders serves every model, the
dataset names work from it offline, links cannot lead out of it, depth and entries are bounded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import srzoo
from srzoo.cli import main
from srzoo.hub import api, download, mirror
from suite import cache_files

ESPCN4 = "ESPCN_x4.pb"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def offline_from(monkeypatch, tmp_path, folder) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(cache))
    monkeypatch.setenv("SRZOO_MIRROR", str(folder))
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    return cache


def test_one_folder_of_model_subfolders_serves_every_model(shared_dir, tmp_path, monkeypatch):
    """SRZOO_MIRROR=../shared (models/opencv/..., models/esrgan-ncnn/..., datasets/...):
    an OpenCV .pb, an ncnn .param with its .bin and a .pth, each verified into the cache."""
    cache = offline_from(monkeypatch, tmp_path, shared_dir)
    espcn = srzoo.fetch("espcn", 4, quiet=True)
    assert sha(espcn) == sha(shared_dir / "models" / "opencv" / ESPCN4)
    rfdn = srzoo.fetch("rfdn", 4, quiet=True)
    assert sha(rfdn) == sha(shared_dir / "models" / "rfdn" / "RFDN_AIM.pth")
    entry = srzoo.get_model("realesrgan-x4plus-ncnn", 4)
    param = srzoo.fetch("realesrgan-x4plus-ncnn", 4, quiet=True)
    assert sha(param) == sha(shared_dir / "models" / "esrgan-ncnn" / "realesrgan-x4plus.param")
    assert (param.parent / "realesrgan-x4plus.bin").is_file() and entry.companions
    names = {p.name for p in cache_files(cache)}
    assert {ESPCN4, "RFDN_AIM.pth", "realesrgan-x4plus.param", "realesrgan-x4plus.bin"} <= names


def test_dataset_name_works_offline_from_the_mirror(shared_dir, tmp_path, monkeypatch):
    offline_from(monkeypatch, tmp_path, shared_dir)
    folder = api.fetch_dataset("set5", quiet=True)
    got = sorted(p.name for p in folder.iterdir() if p.suffix == ".png")
    assert got == ["baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"]
    for p in folder.glob("*.png"):
        assert sha(p) == sha(shared_dir / "datasets" / "Set5" / p.name)


def test_bench_dataset_set5_offline_from_the_mirror(shared_dir, tmp_path, monkeypatch, capsys):
    """`srzoo bench --dataset set5` as the README shows it, offline, the mirror being ../shared:
    cv2 bicubic x2 on Set5 scores the 33.94 dB recorded in bench/quality.md (MATLAB protocol;
    above MATLAB's own bicubic, 33.66, as cv2's kernel is a = -0.75)."""
    offline_from(monkeypatch, tmp_path, shared_dir)
    out = tmp_path / "b.json"
    code = main(["bench", "--models", "bicubic", "--scales", "2", "--dataset", "set5", "--repeat", "1",
                 "--warmup", "0", "-q", "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = json.loads(out.read_text())
    rows = rows["results"] if isinstance(rows, dict) else rows
    [row] = [r for r in rows if r.get("model") == "bicubic"]
    assert row["psnr"] == pytest.approx(33.94, abs=0.005)


def test_same_name_in_two_folders_the_checksum_picks(shared_dir, tmp_path, monkeypatch):
    """a/ESPCN_x4.pb holds other bytes (same size), b/ESPCN_x4.pb the real file: the first
    fails its hash, the second is taken; nothing of the first is kept."""
    root = tmp_path / "m"
    (root / "a").mkdir(parents=True)
    (root / "b" / "deep").mkdir(parents=True)
    good = (shared_dir / "models" / "opencv" / ESPCN4).read_bytes()
    (root / "a" / ESPCN4).write_bytes(bytes(len(good)))
    (root / "b" / "deep" / ESPCN4).write_bytes(good)
    assert mirror.find(root, ESPCN4) == [root / "a" / ESPCN4, root / "b" / "deep" / ESPCN4]
    offline_from(monkeypatch, tmp_path, root)
    assert srzoo.fetch("espcn", 4, quiet=True).read_bytes() == good


def test_links_do_not_lead_out_of_the_mirror(shared_dir, tmp_path, monkeypatch):
    """A linked folder is not walked; a linked file whose target is outside does not count,
    one whose target is inside does."""
    outside = shared_dir / "models" / "opencv"
    root = tmp_path / "m"
    (root / "sub").mkdir(parents=True)
    os.symlink(outside, root / "linked-folder")
    os.symlink(outside / ESPCN4, root / "sub" / ESPCN4)
    os.symlink(outside / "ESPCN_x2.pb", root / "ESPCN_x2.pb")  # the direct path, also outside
    assert mirror.find(root, ESPCN4) == [] and mirror.find(root, "ESPCN_x2.pb") == []
    assert mirror.find(root, "FSRCNN_x2.pb") == []
    cache = offline_from(monkeypatch, tmp_path, root)
    with pytest.raises(srzoo.DownloadError) as err:
        srzoo.fetch("espcn", 4, quiet=True)
    assert f"no such file in the mirror folder (from {root}/{ESPCN4})" in str(err.value)
    assert cache_files(cache) == []
    real = root / "inside" / ESPCN4
    real.parent.mkdir()
    shutil.copyfile(outside / ESPCN4, real)
    (root / "sub" / ESPCN4).unlink()
    os.symlink(real, root / "sub" / ESPCN4)  # a link inside the mirror: fine
    assert mirror.find(root, ESPCN4) == [root / "inside" / ESPCN4, root / "sub" / ESPCN4]
    assert sha(srzoo.fetch("espcn", 4, quiet=True)) == sha(outside / ESPCN4)


def test_depth_and_entries_are_bounded(shared_dir, tmp_path, monkeypatch):
    root = tmp_path / "m"
    deep = root.joinpath(*[f"d{i}" for i in range(mirror.MAX_DEPTH + 1)])
    deep.mkdir(parents=True)
    shutil.copyfile(shared_dir / "models" / "opencv" / ESPCN4, deep / ESPCN4)
    assert mirror.find(root, ESPCN4) == []  # one folder too deep
    shutil.move(str(deep / ESPCN4), str(deep.parent / ESPCN4))
    assert mirror.find(root, ESPCN4) == [deep.parent / ESPCN4]  # at the bound: found
    wide = tmp_path / "w"
    (wide / "a").mkdir(parents=True)
    for i in range(50):
        (wide / "a" / f"f{i:03d}").write_bytes(b"")
    (wide / "b").mkdir()
    shutil.copyfile(shared_dir / "models" / "opencv" / ESPCN4, wide / "b" / ESPCN4)
    assert mirror.find(wide, ESPCN4) == [wide / "b" / ESPCN4]
    monkeypatch.setattr(mirror, "MAX_ENTRIES", 40)  # a/ alone holds 50: the walk stops there
    assert mirror.find(wide, ESPCN4) == []
    monkeypatch.setenv("SRZOO_MIRROR", str(wide))
    art = srzoo.get_model("espcn", 4).artifact
    assert download.sources(art) == [str(wide / ESPCN4)]  # reported as absent, not searched on


@pytest.mark.parametrize("name", ["", ".", "..", "../ESPCN_x4.pb", "a/ESPCN_x4.pb"])
def test_names_with_a_path_are_not_searched(shared_dir, name):
    assert mirror.find(shared_dir, name) == []
