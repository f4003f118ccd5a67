"""A model file given by path (srzoo.convert.localmodel): `-m PATH`, `upscale(img, PATH, s)`,
`Upscaler(Path(...))`, on the real files of ../shared/models.

../shared/models/esrgan/realesr-animevideov3.pth is OpenModelDB's copy (2334339 bytes), not the
registry's (2504012 bytes): a file srzoo has never seen, so the architecture is detected from
the weights. RFDN_AIM.pth and the ncnn .param files ARE registry files: their sha256 names
the registry entry (how it is fed: RFDN wants [0, 255])."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.cli import main
from srzoo.convert import derive, localmodel
from srzoo.runtime import upscaler

ANIME = ("esrgan", "realesr-animevideov3.pth")
CARN = ("carn", "carn_m.pth")
RFDN = ("rfdn", "RFDN_AIM.pth")
NCNN_X2 = ("esrgan-ncnn", "realesr-animevideov3-x2.param")
WAIFU2X = ("waifu2x", "upconv_7_scale2.0x_model.onnx")


@pytest.fixture
def env(models_env, shared_dir, monkeypatch):
    """The session's cache, fed by the mirror; no model or entry kept from another test."""
    upscaler.clear_cache()
    localmodel._seen.clear()
    yield shared_dir
    upscaler.clear_cache()
    localmodel._seen.clear()


def model(shared: Path, where: tuple[str, str]) -> Path:
    return shared / "models" / where[0] / where[1]


def image(shared: Path) -> np.ndarray:
    """A real 40x32 crop of Set5 butterfly: small, so every model here runs in a second."""
    return np.ascontiguousarray(cv2.imread(str(shared / "datasets" / "Set5" / "butterfly.png"))[100:132, 100:140])


def copy(src: Path, folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names or (src.name,):
        shutil.copyfile(src.with_name(n), folder / n)
    return folder / (names[0] if names else src.name)


def test_unknown_pth_detected_converted_once_cached_by_hash(env, tmp_path, monkeypatch, capsys):
    """The OpenModelDB copy of realesr-animevideov3 (not a registry file): SRVGG x4 detected,
    converted and verified once; its output equals the registry ncnn model's (same network)
    within 2 grey levels; a second run, in a fresh Upscaler, converts nothing."""
    src = copy(model(env, ANIME), tmp_path / "downloads")
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    entry = localmodel.entry_for_path(src)
    assert (entry.name, entry.scale, entry.format) == ("realesr-animevideov3", 4, "pytorch-pth")
    assert entry.arch.startswith("srvgg x4") and entry.io.color == "rgb" and entry.io.range == 1.0
    img = image(env)
    out = srzoo.upscale(img, str(src), 4)
    assert out.shape == (128, 160, 3)
    cached = models_env_path() / "models" / "local" / sha[:16] / src.name
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    ref = srzoo.Upscaler("realesr-animevideov3-ncnn", 4, backend="opencv:cpu").upscale(img)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2  # fp16 ncnn weights vs fp32 .pth
    # a second run: a fresh Upscaler from the Path, and nothing may be converted
    upscaler.clear_cache()
    localmodel._seen.clear()

    def no_build(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(derive, "_build", no_build)
    again = srzoo.Upscaler(src).upscale(img)  # the scale read from the file: x4
    assert np.array_equal(again, out)
    code = main(["upscale", str(image_file(env, tmp_path)), "-m", str(src), "-o", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 0 and "upscaled 1 image x4 with realesr-animevideov3" in printed  # -s from the file
    written = tmp_path / "out" / "in_realesr-animevideov3_x4.png"
    assert np.array_equal(cv2.imread(str(written)), out)


def models_env_path() -> Path:
    from srzoo.hub import cache

    return cache.cache_dir()


def test_registry_file_by_path_is_that_model(env, tmp_path, capsys):
    """RFDN_AIM.pth by path is the registry's rfdn (fed [0, 255]): same pixels as -m rfdn."""
    src = copy(model(env, RFDN), tmp_path / "m")
    entry = localmodel.entry_for_path(src)
    assert (entry.name, entry.scale, entry.io.range) == ("rfdn", 4, 255.0)
    img = image(env)
    assert np.array_equal(srzoo.upscale(img, src, 4), srzoo.upscale(img, "rfdn", 4))


def test_ncnn_param_with_its_bin(env, tmp_path):
    folder = tmp_path / "ncnn"
    src = copy(model(env, NCNN_X2), folder, NCNN_X2[1], NCNN_X2[1].replace(".param", ".bin"))
    img = image(env)
    ref = srzoo.upscale(img, "realesr-animevideov3-ncnn", 2)
    assert np.array_equal(srzoo.upscale(img, str(src), 2), ref)
    # the .bin given names its .param
    assert np.array_equal(srzoo.Upscaler(src.with_suffix(".bin")).upscale(img), ref)


def test_multi_scale_file_asks_for_the_scale(env, tmp_path, capsys):
    src = copy(model(env, CARN), tmp_path / "m")
    with pytest.raises(srzoo.SrzooError, match=r"holds the scales x2, x3, x4: give one \(-s\)") as err:
        srzoo.Upscaler(src)
    assert str(src) in str(err.value)
    code = main(["upscale", str(image_file(env, tmp_path)), "-m", str(src), "-o", str(tmp_path / "o")])
    err_text = capsys.readouterr().err
    assert code == 1 and err_text.count("\n") == 1 and "give one (-s)" in err_text
    # -s picks the file's scale also when --width/--height give the size (it was dropped: the
    # "give one (-s)" line although -s was given): x3, then shrunk to the size asked
    x3 = srzoo.Upscaler("carn-m", 3).upscale(image(env))  # 96x120
    for size, wh in ((["--width", "100"], (100, 80)), (["--height", "60"], (75, 60))):
        out = tmp_path / f"o-{size[0][2:]}"
        assert main(["upscale", str(image_file(env, tmp_path)), "-m", str(src), "-s", "3", *size,
                     "-o", str(out), "-q"]) == 0
        (got,) = list(out.iterdir())
        assert np.array_equal(cv2.imread(str(got)), cv2.resize(x3, wh, interpolation=cv2.INTER_AREA))
    img = image(env)
    assert np.array_equal(srzoo.Upscaler(src, 3).upscale(img), srzoo.Upscaler("carn-m", 3).upscale(img))
    with pytest.raises(srzoo.UnknownModel, match=r"x2/x3/x4, not x5"):
        srzoo.Upscaler(src, 5)


def image_file(shared: Path, tmp: Path) -> Path:
    p = tmp / "in.png"
    cv2.imwrite(str(p), image(shared))
    return p


def test_scale_the_file_lacks_is_resized_by_upscale(env, tmp_path):
    src = copy(model(env, ANIME), tmp_path / "d")
    img = image(env)
    with pytest.raises(srzoo.UnknownModel, match=r"upscales x4, not x2"):
        srzoo.Upscaler(src, 2)
    out = srzoo.upscale(img, src, 2)  # x4, shrunk with INTER_AREA
    x4 = srzoo.upscale(img, src, 4)
    assert out.shape == (64, 80, 3)
    assert np.array_equal(out, cv2.resize(x4, (80, 64), interpolation=cv2.INTER_AREA))


def test_published_onnx_runs_as_is(env, tmp_path):
    """The ONNX srzoo derived from the .pth, given by path: run as published (no conversion),
    same pixels as the .pth."""
    src = copy(model(env, ANIME), tmp_path / "d")
    img = image(env)
    ref = srzoo.upscale(img, src, 4)
    onnx = next(p for p in (models_env_path() / "derived").glob("realesr-animevideov3-x4-*/model.onnx")
                if (derive.read_record(p.parent) or {}).get("source", {}).get("sha256")
                == hashlib.sha256(src.read_bytes()).hexdigest())
    mine = copy(onnx, tmp_path / "onnx")
    entry = localmodel.entry_for_path(mine)
    assert (entry.format, entry.scale, entry.name) == ("onnx", 4, "model")
    assert np.array_equal(srzoo.upscale(img, str(mine), 4), ref)


def test_bad_files_are_one_line_naming_the_file(env, tmp_path, capsys):
    inp = image_file(env, tmp_path)
    garbage = tmp_path / "g" / "model.pth"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\x80\x02" + os.urandom(300))  # a pickle's first bytes, then noise
    text = tmp_path / "g" / "notes.onnx"
    text.write_text("not a model\n")
    lonely = copy(model(env, NCNN_X2), tmp_path / "lonely")  # the .param without its .bin
    escape = copy(model(env, NCNN_X2), tmp_path / "escape")
    os.symlink(model(env, NCNN_X2).with_suffix(".bin"), escape.with_suffix(".bin"))
    waifu = copy(model(env, WAIFU2X), tmp_path / "w")
    cases = [(garbage, str(garbage)), (text, str(text)), (tmp_path / "none" / "x.onnx", "no such model file"),
             (lonely, "needs realesr-animevideov3-x2.bin beside it"),
             (escape, "is a link out of"), (waifu, "28 px smaller than scale x input"),
             (tmp_path / "g", "is a folder")]
    for path, words in cases:
        code = main(["upscale", str(inp), "-m", str(path) + ("/" if path.is_dir() else ""),
                     "-s", "2", "-o", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, (path, err)
        assert str(path) in err and words in err, (path, err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    local = models_env_path() / "models" / "local"
    for bad in (garbage, text):
        sha = hashlib.sha256(bad.read_bytes()).hexdigest()
        assert not (local / sha[:16]).exists()


def test_names_are_not_paths():
    for name in ("espcn", "omdb:4x-realesrgan-x4plus", "realesrgan-x4plus-ncnn", "default"):
        assert not localmodel.looks_like_path(name)
    for p in ("./m.onnx", "m.pth", "dir/m", Path("espcn"), "4x.safetensors", "x.param"):
        assert localmodel.looks_like_path(p)


def test_safetensors_by_path(env, tmp_path):
    """The same weights as .safetensors (written here from the real .pth): detected from its
    header, same pixels as the .pth."""
    torch = pytest.importorskip("torch")
    from srzoo.convert import safetensors as st

    src = model(env, ANIME)
    sd = torch.load(src, map_location="cpu", weights_only=True)
    sd = sd.get("params", sd.get("params_ema", sd))
    f = tmp_path / "s" / "4x-anime.safetensors"
    f.parent.mkdir()
    st.save(f, {k: v.numpy() for k, v in sd.items()})
    entry = localmodel.entry_for_path(f)
    assert (entry.format, entry.scale, entry.name) == ("safetensors", 4, "4x-anime")
    img = image(env)
    assert np.array_equal(srzoo.upscale(img, f, 4), srzoo.upscale(img, src, 4))
