"""Manifests: contents match the real files, schema errors are precise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import srzoo
from srzoo.hub import cache
from srzoo.hub.registry import Registry, builtin_manifest_dir, parse_manifest

REPO = Path(__file__).resolve().parents[2]

# Every file MODELS.md lists: (name, scale, file)
EXPECTED = [
    *[("espcn", s, f"ESPCN_x{s}.pb") for s in (2, 3, 4)],
    *[("fsrcnn", s, f"FSRCNN_x{s}.pb") for s in (2, 3, 4)],
    *[("fsrcnn-small", s, f"FSRCNN-small_x{s}.pb") for s in (2, 3, 4)],
    *[("lapsrn", s, f"LapSRN_x{s}.pb") for s in (2, 4, 8)],
    *[("edsr", s, f"EDSR_x{s}.pb") for s in (2, 3, 4)],
    ("srcnn", 2, "3051crop_weight_200.h5"), ("srcnn-915", 2, "m_model_adam_new30.h5"),
    *[("vdsr", s, "model_epoch_50.pth") for s in (2, 3, 4)],
    ("esrgan", 4, "4x-ESRGAN.pth"), ("realesrgan-x4plus", 4, "RealESRGAN_x4plus.pth"),
    ("realesrgan-x2plus", 2, "RealESRGAN_x2plus.pth"),
    ("realesrgan-x4plus-anime-6b", 4, "RealESRGAN_x4plus_anime_6B.pth"),
    ("realesr-general-x4v3", 4, "realesr-general-x4v3.pth"),
    ("realesr-animevideov3", 4, "realesr-animevideov3.pth"),
]


def test_every_models_md_file_has_an_entry():
    reg = Registry()
    for name, scale, file in EXPECTED:
        entry = reg.get(name, scale)
        assert entry.file == file
        assert entry.artifact.urls and entry.artifact.urls[0].startswith("https://")
    conversion = {e.name for e in reg.models() if e.format in {"keras-h5", "pytorch-pth", "ncnn"}}
    assert conversion == {"srcnn", "srcnn-915", "vdsr", "esrgan", "realesrgan-x4plus",
                          "realesrgan-x2plus", "realesrgan-x4plus-anime-6b",
                          "realesr-general-x4v3", "realesr-animevideov3", "carn-m", "rfdn", "srgan",
                          "srresnet", "realesrgan-x4plus-ncnn", "realesrgan-x4plus-anime-ncnn",
                          "realesr-animevideov3-ncnn"}
    # how each runs is the engine's answer, not a manifest field: from a derived ONNX
    from srzoo.convert.cvcompat import tf_importer
    from srzoo.runtime.engines import get_engine, plan

    opencv = get_engine("opencv")
    assert conversion == {e.name for e in reg.models() if e.format not in ("tf-graphdef", "interpolation")
                          and plan(e, opencv).derived}
    pb = [e for e in reg.models() if e.format == "tf-graphdef"]
    assert pb and all(plan(e, opencv).derived == (not tf_importer()) for e in pb)
    assert not any("needs_conversion" in e.to_dict() or "runnable" in e.to_dict() for e in reg.models())


def test_mirrored_entries_match_the_real_bytes(shared_dir):
    """Size, sha256 and git blob id of every mirrored file, computed from its bytes."""
    reg = Registry()
    checked = 0
    for entry in reg.models():
        if entry.artifact is None or entry.artifact.bundled:  # shipped files: tests/runtime/test_builtin.py
            continue
        if entry.name == "realesr-animevideov3":  # the shared copy is a re-zip, not upstream's bytes
            continue
        found = list((shared_dir / "models").rglob(entry.file))
        if not found:
            assert entry.name in {"edsr", "srgan", "srresnet"} or entry.name.startswith(("esrgan", "realesr")), entry
            continue
        assert cache.problems(found[0], entry.artifact) == [], entry.name
        for extra in entry.companions:  # the .bin of an ncnn entry
            assert cache.problems(next((shared_dir / "models").rglob(extra.file)), extra) == [], extra.file
        checked += 1
    # opencv files, srcnn files, vdsr, carn-m and ncnn entries, rfdn
    assert checked == 12 + 2 + 3 + 3 + 5 + 1


def test_pinned_url_first_and_upstream_commit():
    e = srzoo.get_model("lapsrn", 8)
    assert e.artifact.urls[0] == ("https://raw.githubusercontent.com/fannymonori/TF-LapSRN/"
                                  "fc51c90af1b5801a357abc919160d7ff4f24b997/export/LapSRN_x8.pb")
    assert e.io.outputs == ("NCHW_output_2x", "NCHW_output_4x", "NCHW_output_8x")
    edsr = srzoo.get_model("edsr", 3)
    assert edsr.artifact.git_blob_sha1 == "9b9082ceca0d5a2fc6d6bae7456e2c7934b3aa4d"
    assert edsr.io.mean == (103.1545782, 111.561547, 114.35629928)


def test_dataset_manifests_match_files(shared_dir):
    for name, folder in (("set5", "Set5"), ("set14", "Set14")):
        ds = Registry().dataset(name)
        files = sorted(p.name for p in (shared_dir / "datasets" / folder).iterdir())
        assert sorted(a.file for a in ds.files) == files
        for a in ds.files:
            assert cache.problems(shared_dir / "datasets" / folder / a.file, a) == []


def test_unknown_name_suggests_close_names():
    with pytest.raises(srzoo.UnknownModel, match="Did you mean: fsrcnn"):
        srzoo.get_model("fsrcn")
    with pytest.raises(srzoo.UnknownModel, match="has no x3; it has scales x2, x4, x8"):
        srzoo.get_model("lapsrn", 3)
    assert issubclass(srzoo.UnknownModel, srzoo.SrzooError)
    with pytest.raises(srzoo.UnknownModel, match=r"unknown dataset 'set15'\. Did you mean: set5, set14, t91\? "
                                                 r"Known: set14, set5, t91\.$"):
        Registry().dataset("set15")


GOOD = '''
schema = 1
[[model]]
name = "mine"
scale = 2
format = "onnx"
license = "MIT"
file = "mine_x2.onnx"
size = 10
sha256 = "{sha}"
urls = ["https://example.org/mine_x2.onnx"]
'''


def write(tmp_path: Path, text: str, name: str = "m.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


M0 = "model[0] (mine x2)"


@pytest.mark.parametrize("mutation, message", [
    (lambda t: t.replace('license = "MIT"', 'license = "MIT"\nlicence = "x"'),
     f"{M0}: unknown key 'licence' (did you mean 'license'?)"),
    (lambda t: t.replace('sha256 = "{sha}"\n', ""),
     f"{M0}: missing key 'sha256' (every downloadable file needs file, size, sha256 and urls or path)"),
    (lambda t: t.replace('"mine_x2.onnx"', '"../evil.onnx"', 1),
     f"{M0}: key 'file' must be a plain file name without path separators or '..', got '../evil.onnx'"),
    (lambda t: t.replace('"mine_x2.onnx"', '"sub/evil.onnx"', 1),
     f"{M0}: key 'file' must be a plain file name without path separators or '..', got 'sub/evil.onnx'"),
    (lambda t: t.replace('"mine_x2.onnx"', '".."', 1),
     f"{M0}: key 'file' must be a plain file name without path separators or '..', got '..'"),
    (lambda t: t.replace("{sha}", "abc"), f"{M0}: key 'sha256' is not a lowercase hex digest: 'abc'"),
    (lambda t: t.replace("size = 10", 'size = "10"'), f"{M0}: key 'size' must be int, got str"),
    (lambda t: t.replace('"onnx"', '"caffe"'),
     f"{M0}: key 'format' must be one of ['interpolation', 'keras-h5', 'keras-model', 'ncnn', 'onnx', "
     "'pytorch-pth', 'tf-graphdef', 'tf-savedmodel'], got 'caffe'"),
    (lambda t: t.replace("https://example.org", "ftp://example.org"),
     f"{M0}: key 'urls' holds 'ftp://example.org/mine_x2.onnx', not an http(s) URL"),
    (lambda t: t + "\n[[model]]\nname='x'\n[oops]\n", "top level: unknown key 'oops'"),
    (lambda t: t.replace("schema = 1", "schema = 1\n[defaults]\nio = { colour = 'y' }"),
     f"{M0}.io: unknown key 'colour' (did you mean 'color'?)"),
])
def test_schema_errors_name_file_and_key(tmp_path, mutation, message):
    """The whole message: file, where in it (entry and key), what is wrong."""
    path = write(tmp_path, mutation(GOOD).replace("{sha}", "a" * 64))
    with pytest.raises(srzoo.ManifestError) as err:
        parse_manifest(path)
    assert str(err.value) == f"{path}: {message}"


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "schema = = 1")
    with pytest.raises(srzoo.ManifestError, match=f"{path}: not valid TOML"):
        parse_manifest(path)


def test_user_manifest_via_env_and_api(tmp_path, monkeypatch):
    folder = tmp_path / "manifests"
    folder.mkdir()
    write(folder, GOOD.replace("{sha}", "b" * 64))
    monkeypatch.setenv("SRZOO_REGISTRY", str(folder))
    assert srzoo.get_model("mine", 2).sha256 == "b" * 64
    assert "mine" in {m.name for m in srzoo.list_models()}
    monkeypatch.delenv("SRZOO_REGISTRY")
    with pytest.raises(srzoo.UnknownModel):
        srzoo.get_model("mine", 2)
    other = write(tmp_path, GOOD.replace("{sha}", "c" * 64).replace('"mine"', '"mine2"'), "o.toml")
    srzoo.add_manifest(other)
    try:
        assert srzoo.get_model("mine2", 2).sha256 == "c" * 64
    finally:
        from srzoo.hub import registry

        registry._extra_paths.remove(str(other))
        registry._default = None


def test_missing_registry_path_is_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("SRZOO_REGISTRY", str(tmp_path / "nope"))
    with pytest.raises(srzoo.ManifestError, match="manifest file or folder not found"):
        srzoo.list_models()


def test_installed_package_lists_every_model(tmp_path):
    """Run from another folder, the installed srzoo finds its manifests (in CI this
    is a non-editable install, so the manifests come from inside the wheel)."""
    exe = shutil.which("srzoo", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "srzoo"]
    out = subprocess.run([*cmd, "list", "--json"], cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    rows = json.loads(out.stdout)
    names = {(r["name"], r["scale"]) for r in rows}
    for name, scale, _ in EXPECTED:
        assert (name, scale) in names
    for m in parse_manifest(builtin_manifest_dir() / "interpolation.toml")[0]:
        assert (m.name, None) in names
    assert {"name", "scale", "file", "size", "sha256", "format", "license", "cached"} <= set(rows[0])
