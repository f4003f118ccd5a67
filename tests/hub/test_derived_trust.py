"""Derived ONNX files and extracted archive members get the same trust as
downloads: a hash in their record, re-checked when their stat changes, rebuilt
when wrong, reported by `cache verify`, rebuilt by `fetch --force`. Real
models from ../shared over the local mirror, real conversions."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.cli import main
from srzoo.convert import derive as derived
from srzoo.hub import api, archive


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _tamper_largest_initializer(path: Path) -> None:
    """Scale the largest initializer by -3 in place: same size, same inode, other weights."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    m = onnx.load(str(path))
    big = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    arr = numpy_helper.to_array(big).astype(np.float32) * -3
    big.CopyFrom(numpy_helper.from_array(arr, big.name))
    data = m.SerializeToString()
    assert len(data) == path.stat().st_size  # the case the old size-only check trusted
    with open(path, "r+b") as f:
        f.write(data)


@pytest.fixture
def lr(shared_dir) -> np.ndarray:
    return cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png"))[:48, :40]


def test_tampered_derived_onnx_is_rebuilt_reported_and_refetched(srzoo_env, lr, capsys):
    entry = srzoo.get_model("carn-m", 2)
    onnx_path = srzoo.model_file(entry, quiet=True)
    rec = derived.read_record(onnx_path.parent)
    assert rec["output"]["stamp"]["inode"] == onnx_path.stat().st_ino  # stamped when built
    good = srzoo.upscale(lr, "carn-m", 2, backend="opencv")
    good_sha = sha(onnx_path)

    _tamper_largest_initializer(onnx_path)
    # `cache verify` sees it, and says what happens next
    assert main(["cache", "verify", "carn-m"]) == 1
    out = capsys.readouterr().out
    assert f"CORRUPT {onnx_path.parent}: {onnx_path}: sha256 " in out and "rebuilt on next use" in out

    # next use (a fresh process): rebuilt with a note, never run as it is; same pixels as before
    src, dst = srzoo_env.parent / "lr.png", srzoo_env.parent / "sr.png"
    cv2.imwrite(str(src), lr)
    r = subprocess.run([sys.executable, "-m", "srzoo", "upscale", str(src), "-m", "carn-m", "-s", "2",
                        "--backend", "opencv", "-o", str(dst), "-q"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"srzoo: derived {onnx_path} changed after it was built" in r.stderr
    assert np.array_equal(cv2.imread(str(dst)), good)
    assert sha(onnx_path) == good_sha
    assert main(["cache", "verify", "carn-m"]) == 0
    capsys.readouterr()

    # `fetch --force` rebuilds the derived file too
    _tamper_largest_initializer(onnx_path)
    assert main(["fetch", "carn-m", "-s", "2", "--force", "-q"]) == 0
    out, err = capsys.readouterr()
    assert f"removed {onnx_path.parent}" in err and out.strip() == str(onnx_path)
    assert sha(onnx_path) == good_sha
    assert np.array_equal(srzoo.upscale(lr, "carn-m", 2, backend="opencv"), good)


def test_touched_but_identical_derived_file_is_rehashed_not_rebuilt(srzoo_env, capsys):
    entry = srzoo.get_model("carn-m", 2)
    onnx_path = srzoo.model_file(entry, quiet=True)
    built = derived.read_record(onnx_path.parent)["created"]
    os.utime(onnx_path, ns=(1, 1))  # stat differs from the stamp, bytes do not
    assert srzoo.model_file(entry, quiet=True) == onnx_path
    rec = derived.read_record(onnx_path.parent)
    assert rec["created"] == built and rec["output"]["stamp"]["mtime_ns"] == 1  # stamp renewed
    assert "changed" not in capsys.readouterr().err
    # `srzoo list` with a derived file in the cache (a name clash in cli/models.py made it an
    # AttributeError whenever the cache held one)
    assert main(["list"]) == 0
    assert any(ln.startswith("carn-m") and "(convert)" in ln for ln in capsys.readouterr().out.splitlines())


def _member_manifest(tmp_path: Path, shared_dir: Path) -> tuple[Path, Path]:
    h5 = shared_dir / "models" / "srcnn" / "m_model_adam_new30.h5"
    arc = tmp_path / "weights.tar.gz"
    with tarfile.open(arc, "w:gz") as t:
        t.add(h5, arcname="pkg/weights/srcnn.h5")
    man = tmp_path / "m.toml"
    man.write_text(f'schema = 1\n[[model]]\nname = "srcnn-arc"\nscale = 2\nformat = "keras-h5"\n'
                   f'license = "x"\npath = "{arc}"\nsize = {arc.stat().st_size}\nsha256 = "{sha(arc)}"\n'
                   f'member = "pkg/weights/srcnn.h5"\n[model.io]\ncolor = "y"\nrange = 1.0\n'
                   f'layout = "nchw"\npre_upsample = "bicubic"\n')
    return man, h5


def test_edited_extracted_member_is_extracted_again_and_reported(tmp_path, srzoo_env, shared_dir,
                                                                 monkeypatch, capsys):
    man, h5 = _member_manifest(tmp_path, shared_dir)
    monkeypatch.setenv("SRZOO_REGISTRY", str(man))
    entry = srzoo.get_model("srcnn-arc", 2)
    member = api.fetch_entry(entry, quiet=True)
    assert sha(member) == sha(h5)
    rec = json.loads(archive.record_path(member).read_text())
    assert rec["sha256"] == sha(h5) and rec["inode"] == member.stat().st_ino

    data = bytearray(member.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other weights
    member.write_bytes(bytes(data))
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"CORRUPT {member}: {member}: sha256 " in out and "extracted again on next use" in out

    again = api.fetch_entry(entry)
    assert again == member and sha(member) == sha(h5)
    assert "changed after it was extracted" in capsys.readouterr().err
    assert main(["cache", "verify"]) == 0
    capsys.readouterr()

    # --force extracts again whatever the record says
    member.write_bytes(bytes(data))
    os.utime(member, ns=(rec["mtime_ns"], rec["mtime_ns"]))
    assert main(["fetch", "srcnn-arc", "-s", "2", "--force", "-q"]) == 0
    capsys.readouterr()
    assert sha(member) == sha(h5)


class _BombConverter:
    """Stands in for a reader fooled by a memory-bomb model file (the readers' own
    bounds are tested with crafted files in tests/convert): it asks for 1 PiB,
    which no machine can map, so MemoryError is certain and nothing is touched."""

    name = "bomb-test"
    version = "1"
    source_formats = frozenset({"pytorch-pth"})

    def convert(self, source, entry, options):
        np.empty(1 << 50, np.uint8)
        raise AssertionError("unreachable")


def test_model_memory_bomb_blames_the_model_not_the_image(srzoo_env, lr, tmp_path, monkeypatch, capsys):
    from srzoo import convert

    convert.converter_for("pytorch-pth")  # the built-in converters registered first
    monkeypatch.setitem(convert._REGISTRY, "pytorch-pth", _BombConverter())
    src = tmp_path / "lr.png"
    cv2.imwrite(str(src), lr)
    assert main(["upscale", str(src), "-m", "carn-m", "-s", "2", "-o", str(tmp_path / "sr.png"), "-q"]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("srzoo: error: ") and "carn_m.pth: ran out of memory reading the model file" in lines[0]
    assert lines[0].endswith("this is the model, not the image: --tile does not help")
    assert "(--tile)" not in err and not (tmp_path / "sr.png").exists()
    assert not list((srzoo_env / "derived").glob("*")) if (srzoo_env / "derived").exists() else True
