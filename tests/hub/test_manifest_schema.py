"""The manifest schema, key by key: what a valid manifest parses into (every field), and the
whole message of every refusal (file, where in it, what is wrong). Pure parsing: no network,
no engine, so it is also the fast test set `tools/mutation.sh hub/manifest` runs per mutant."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from srzoo.errors import ManifestError
from srzoo.hub.manifest import (
    FORMATS, MAX_MANIFEST_BYTES, SCHEMA_VERSION, Artifact, Dataset, IOSpec, ModelEntry,
    check_file_name, parse_manifest,
)

SHA = "a" * 64
BLOB = "b" * 40

# one model with every optional key set, through [defaults] (io merged key by key)
FULL = f'''
schema = 1

[defaults]
license = "Apache-2.0"
engine = "onnxruntime"
io = {{ color = "y", range = 1, algorithm = "espcn" }}

[[model]]
name = "full-1.b_c"
scale = 3
format = "onnx"
file = "full_x3.onnx"
size = 123
sha256 = "{SHA}"
git_blob_sha1 = "{BLOB}"
urls = ["https://example.org/full_x3.onnx", "http://mirror.example.org/full_x3.onnx"]
paper = "the paper"
source = "the source"
description = "the description"
notes = "the notes"
arch = "rrdbnet"
needs_conversion = true
receptive_field = 7
member = "sub/dir/model.onnx"
tags = ["gan", "anime"]
[model.io]
range = 255.0
mean = [1, 2.5, 3]
input = "in"
outputs = ["a", "b"]
output_scales = [2, 4]
layout = "nchw"
pre_upsample = "bicubic-matlab"
export_layout = "nchw"

[[model]]
name = "bicubic"
format = "interpolation"
io = {{ method = "bicubic" }}
'''

GOOD = f'''
schema = 1
[[model]]
name = "mine"
scale = 2
format = "onnx"
license = "MIT"
file = "mine_x2.onnx"
size = 10
sha256 = "{SHA}"
urls = ["https://example.org/mine_x2.onnx"]
'''

M0 = "model[0] (mine x2)"


def write(tmp_path: Path, text: str, name: str = "m.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def refusal(path: Path) -> str:
    """The message of the ManifestError, without the leading '<path>: '."""
    with pytest.raises(ManifestError) as err:
        parse_manifest(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: "), msg
    assert "\n" not in msg
    return msg[len(f"{path}: "):]


def test_every_field_of_a_full_entry(tmp_path):
    path = write(tmp_path, FULL)
    models, datasets = parse_manifest(path)
    assert datasets == []
    full, bicubic = models
    assert full == ModelEntry(
        name="full-1.b_c", scale=3, format="onnx", license="Apache-2.0",
        io=IOSpec(color="y", range=255.0, mean=(1.0, 2.5, 3.0), algorithm="espcn", input="in",
                  outputs=("a", "b"), output_scales=(2, 4), layout="nchw",
                  pre_upsample="bicubic-matlab", method=None, export_layout="nchw"),
        artifact=Artifact(file="full_x3.onnx", size=123, sha256=SHA,
                          urls=("https://example.org/full_x3.onnx",
                                "http://mirror.example.org/full_x3.onnx"),
                          git_blob_sha1=BLOB, subdir="models", bundled=False),
        engine="onnxruntime", paper="the paper", source="the source",
        description="the description", notes="the notes", arch="rrdbnet", manifest=str(path),
        receptive_field=7, member="sub/dir/model.onnx", companions=(), tags=("gan", "anime"))
    # exact types, not only equal values: float range and mean, tuples
    assert type(full.io.range) is float and all(type(m) is float for m in full.io.mean)
    assert type(full.io.outputs) is tuple and type(full.io.output_scales) is tuple
    assert full.file == "full_x3.onnx" and full.size == 123 and full.sha256 == SHA
    assert full.artifact.hashes == {"sha256": SHA, "git-blob-sha1": BLOB}
    assert full.at_scale(4) is full
    # the defaults reach an entry that sets none of them; its own io replaces nothing else
    assert bicubic == ModelEntry(
        name="bicubic", scale=None, format="interpolation", license="Apache-2.0",
        io=IOSpec(color="y", range=1.0, algorithm="espcn", method="bicubic"), artifact=None,
        engine="onnxruntime", manifest=str(path))
    assert type(bicubic.io.range) is float
    assert bicubic.file is None and bicubic.size == 0 and bicubic.sha256 is None
    x2 = bicubic.at_scale(2.0)
    assert x2.scale == 2 and type(x2.scale) is int and x2 == dataclasses.replace(bicubic, scale=2)


def test_defaults_of_an_entry_that_sets_nothing_optional(tmp_path):
    path = write(tmp_path, GOOD)
    (m,), () = parse_manifest(path)
    assert m == ModelEntry(name="mine", scale=2, format="onnx", license="MIT", io=IOSpec(),
                           artifact=Artifact("mine_x2.onnx", 10, SHA, ("https://example.org/mine_x2.onnx",)),
                           manifest=str(path))
    assert (m.engine, m.paper, m.source, m.description, m.notes, m.arch) == ("opencv", "", "", "", "", "")
    assert (m.receptive_field, m.member, m.companions, m.tags) == (None, None, (), ())
    assert m.artifact.hashes == {"sha256": SHA}
    assert (m.artifact.git_blob_sha1, m.artifact.subdir, m.artifact.bundled) == (None, "models", False)
    assert IOSpec() == IOSpec(color="bgr", range=255.0, mean=(0.0, 0.0, 0.0), algorithm=None, input=None,
                              outputs=(), output_scales=(), layout="nhwc", pre_upsample=None,
                              method=None, export_layout="nhwc")


def test_to_dict(tmp_path):
    path = write(tmp_path, FULL)
    full, bicubic = parse_manifest(path)[0]
    assert full.to_dict() == {
        "name": "full-1.b_c", "scale": 3, "file": "full_x3.onnx", "size": 123, "sha256": SHA,
        "git_blob_sha1": BLOB, "format": "onnx", "license": "Apache-2.0", "engine": "onnxruntime",
        "member": "sub/dir/model.onnx", "companions": [], "tags": ["gan", "anime"],
        "urls": ["https://example.org/full_x3.onnx", "http://mirror.example.org/full_x3.onnx"],
        "paper": "the paper", "source": "the source", "manifest": str(path),
        "io": {"color": "y", "range": 255.0, "mean": (1.0, 2.5, 3.0), "algorithm": "espcn",
               "input": "in", "outputs": ("a", "b"), "output_scales": (2, 4), "layout": "nchw",
               "pre_upsample": "bicubic-matlab", "method": None, "export_layout": "nchw"},
        "receptive_field": 7,
    }
    assert bicubic.to_dict() == {
        "name": "bicubic", "scale": None, "file": None, "size": 0, "sha256": None,
        "git_blob_sha1": None, "format": "interpolation", "license": "Apache-2.0",
        "engine": "onnxruntime", "member": None, "companions": [], "tags": [], "urls": [],
        "paper": "", "source": "", "manifest": str(path),
        "io": {"color": "y", "range": 1.0, "mean": (0.0, 0.0, 0.0), "algorithm": "espcn",
               "input": None, "outputs": (), "output_scales": (), "layout": "nhwc",
               "pre_upsample": None, "method": "bicubic", "export_layout": "nhwc"},
        "receptive_field": None,
    }


def test_ncnn_entry_with_its_bin(tmp_path):
    text = GOOD.replace('"onnx"', '"ncnn"').replace("mine_x2.onnx", "mine_x2.param") + (
        f'bin = {{ file = "mine_x2.bin", size = 20, sha256 = "{"c" * 64}", git_blob_sha1 = "{BLOB}", '
        'urls = ["https://example.org/mine_x2.bin"] }\n')
    path = write(tmp_path, text)
    (m,), _ = parse_manifest(path)
    assert m.companions == (Artifact("mine_x2.bin", 20, "c" * 64, ("https://example.org/mine_x2.bin",),
                                     git_blob_sha1=BLOB, subdir="models"),)
    assert m.to_dict()["companions"] == ["mine_x2.bin"]
    assert m.artifact.file == "mine_x2.param"


def ncnn(bin_table: str) -> str:
    return (GOOD.replace('"onnx"', '"ncnn"').replace("mine_x2.onnx", "mine_x2.param")
            + (f"bin = {bin_table}\n" if bin_table else ""))


@pytest.mark.parametrize("text, message", [
    (ncnn(""), f"{M0}: an ncnn entry names its .param as 'file' and its weights as a table 'bin' "
               "(file, size, sha256, urls or path)"),
    (ncnn('"mine_x2.bin"'), f"{M0}: key 'bin' must be dict, got str"),
    (ncnn(f'{{ file = "other.bin", size = 1, sha256 = "{SHA}", urls = ["https://e.org/o.bin"] }}'),
     f"{M0}: the ncnn .bin must have the .param's name with .bin (mine_x2.bin)"),
    (ncnn(f'{{ file = "mine_x2.bin", size = 1, sha256 = "{SHA}", url = ["https://e.org/o.bin"] }}'),
     f"{M0}.bin: unknown key 'url' (did you mean 'urls'?)"),
    (ncnn(f'{{ file = "mine_x2.bin", size = 0, sha256 = "{SHA}", urls = ["https://e.org/o.bin"] }}'),
     f"{M0}.bin: key 'size' must be positive, got 0"),
    (GOOD + f'bin = {{ file = "mine_x2.bin", size = 1, sha256 = "{SHA}", urls = ["https://e.org/b"] }}\n',
     f"{M0}: key 'bin' is only for format 'ncnn'"),
])
def test_ncnn_refusals(tmp_path, text, message):
    assert refusal(write(tmp_path, text)) == message


def test_local_path_is_relative_to_the_manifest(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    text = GOOD.replace('urls = ["https://example.org/mine_x2.onnx"]', 'path = "../w/weights.onnx"')
    path = write(tmp_path / "sub", text.replace('file = "mine_x2.onnx"\n', ""))
    monkeypatch.chdir("/")
    (m,), _ = parse_manifest(os.path.relpath(path, "/"))
    local = tmp_path / "w" / "weights.onnx"
    assert m.artifact == Artifact("weights.onnx", 10, SHA, (str(tmp_path / "sub" / ".." / "w" / "weights.onnx"),))
    # a file name given beside the path wins; an absolute path is kept; ~ is the home folder
    path = write(tmp_path, text.replace('"../w/weights.onnx"', f'"{local}"'))
    assert parse_manifest(path)[0][0].artifact == Artifact("mine_x2.onnx", 10, SHA, (str(local),))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(tmp_path, text.replace('"../w/weights.onnx"', '"~/x/y.onnx"'))
    assert parse_manifest(path)[0][0].artifact.urls == (str(tmp_path / "home" / "x" / "y.onnx"),)
    # a local path is not an URL: no http(s) check
    path = write(tmp_path, text.replace('"../w/weights.onnx"', '"ftp:x.onnx"'))
    assert parse_manifest(path)[0][0].artifact.urls == (str(tmp_path / "ftp:x.onnx"),)


def test_bundled_file_needs_no_urls(tmp_path):
    text = GOOD.replace('urls = ["https://example.org/mine_x2.onnx"]', "bundled = true")
    (m,), _ = parse_manifest(write(tmp_path, text))
    assert m.artifact == Artifact("mine_x2.onnx", 10, SHA, (), subdir="models", bundled=True)
    text = GOOD.replace('urls = ["https://example.org/mine_x2.onnx"]', "bundled = false")
    assert refusal(write(tmp_path, text)) == (
        f"{M0}: missing key 'urls' (every downloadable file needs file, size, sha256 and urls or path; "
        "a file shipped in srzoo/builtin/ sets bundled = true instead of urls)")


def sub(old: str, new: str):
    return lambda t: t.replace(old, new, 1)


URLS = 'urls = ["https://example.org/mine_x2.onnx"]'
FMTS = "['interpolation', 'keras-h5', 'keras-model', 'ncnn', 'onnx', 'pytorch-pth', 'tf-graphdef', 'tf-savedmodel']"
NAMEMSG = "key 'name' must be lowercase letters, digits, '-', '_' or '.', got"
FILEMSG = "key 'file' must be a plain file name without path separators or '..', got"
DOWNLOADABLE = "(every downloadable file needs file, size, sha256 and urls or path)"


@pytest.mark.parametrize("mutation, message", [
    # keys and types
    (sub('license = "MIT"', 'license = "MIT"\nlicence = "x"'), f"{M0}: unknown key 'licence' (did you mean 'license'?)"),
    (sub('license = "MIT"', 'license = "MIT"\nzzzz = 1'), f"{M0}: unknown key 'zzzz'"),
    (sub("size = 10", 'size = "10"'), f"{M0}: key 'size' must be int, got str"),
    (sub("size = 10", "size = true"), f"{M0}: key 'size' must be int, got bool"),
    (sub("size = 10", "size = 10.0"), f"{M0}: key 'size' must be int, got float"),
    (sub('license = "MIT"', 'license = "MIT"\nio = { range = "1" }'), f"{M0}.io: key 'range' must be int/float, got str"),
    (sub('license = "MIT"', 'license = "MIT"\nio = { range = true }'), f"{M0}.io: key 'range' must be int/float, got bool"),
    (sub('license = "MIT"', 'license = "MIT"\nio = 3'), f"{M0}: key 'io' must be dict, got int"),
    (sub("scale = 2", "scale = true"), "model[0] (mine xTrue): key 'scale' must be int, got bool"),
    # missing keys
    (sub('name = "mine"\n', ""), "model[0] (None x2): missing key 'name'"),
    (sub('format = "onnx"\n', ""), f"{M0}: missing key 'format'"),
    (sub('license = "MIT"\n', ""), f"{M0}: missing key 'license'"),
    (sub("scale = 2\n", ""), "model[0] (mine xNone): missing key 'scale'"),
    (sub('file = "mine_x2.onnx"\n', ""), f"{M0}: missing key 'file' {DOWNLOADABLE}"),
    (sub("size = 10\n", ""), f"{M0}: missing key 'size' {DOWNLOADABLE}"),
    (sub(f'sha256 = "{SHA}"\n', ""), f"{M0}: missing key 'sha256' {DOWNLOADABLE}"),
    (sub(URLS, ""), f"{M0}: missing key 'urls' (every downloadable file needs file, size, sha256 and urls or "
                    "path; a file shipped in srzoo/builtin/ sets bundled = true instead of urls)"),
    # values
    (sub('"mine"', '"Mine"'), f"model[0] (Mine x2): {NAMEMSG} 'Mine'"),
    (sub('"mine"', '"-mine"'), f"model[0] (-mine x2): {NAMEMSG} '-mine'"),
    (sub('"mine"', '"mi ne"'), f"model[0] (mi ne x2): {NAMEMSG} 'mi ne'"),
    (sub('"mine"', '"mine\\n"'), f"model[0]: {NAMEMSG} 'mine\\n'"),  # one line, whatever the name
    (sub("scale = 2", 'scale = "\\u0007"'), "model[0]: key 'scale' must be int, got str"),
    (sub('"onnx"', '"caffe"'), f"{M0}: key 'format' must be one of {FMTS}, got 'caffe'"),
    (sub("scale = 2", "scale = 0"), "model[0] (mine x0): key 'scale' must be a positive integer, got 0"),
    (sub("scale = 2", "scale = -3"), "model[0] (mine x-3): key 'scale' must be a positive integer, got -3"),
    (sub("size = 10", "size = 0"), f"{M0}: key 'size' must be positive, got 0"),
    (sub("size = 10", "size = -5"), f"{M0}: key 'size' must be positive, got -5"),
    (sub(SHA, "abc"), f"{M0}: key 'sha256' is not a lowercase hex digest: 'abc'"),
    (sub(SHA, "A" * 64), f"{M0}: key 'sha256' is not a lowercase hex digest: '{'A' * 64}'"),
    (sub(SHA, SHA + "a"), f"{M0}: key 'sha256' is not a lowercase hex digest: '{SHA + 'a'}'"),
    (sub(SHA, SHA + "\\n"), f"{M0}: key 'sha256' is not a lowercase hex digest: '{SHA}\\n'"),
    (sub(URLS, URLS + f'\ngit_blob_sha1 = "{BLOB}0"'),
     f"{M0}: key 'git_blob_sha1' is not a lowercase hex digest: '{BLOB}0'"),
    (sub(URLS, "urls = []"), f"{M0}: key 'urls' must list at least one URL (or set bundled = true for a file "
                             "shipped in srzoo/builtin/)"),
    (sub("https://example.org", "ftp://example.org"), f"{M0}: key 'urls' holds 'ftp://example.org/mine_x2.onnx', not an http(s) URL"),
    (sub('"https://example.org/mine_x2.onnx"', '"https://e.org/a", 5'), f"{M0}: key 'urls' holds 5, not an http(s) URL"),
    (sub("https://", " https://"), f"{M0}: key 'urls' holds ' https://example.org/mine_x2.onnx', not an http(s) URL"),
    (sub(URLS, URLS + '\npath = "x.onnx"'), f"{M0}: give either 'urls' or 'path' (a local file), not both"),
    (sub(URLS, URLS + "\nreceptive_field = -1"), f"{M0}: key 'receptive_field' must be >= 0 input pixels, got -1"),
    # file names
    *[(sub('"mine_x2.onnx"', f'"{bad}"'), f"{M0}: {FILEMSG} {shown}")
      for bad, shown in [("../evil.onnx", "'../evil.onnx'"), ("sub/evil.onnx", "'sub/evil.onnx'"),
                         ("..", "'..'"), (".", "'.'"), ("", "''"), ("a\\\\b", "'a\\\\b'"),
                         (".hidden", "'.hidden'"), ("a\\u0000b", "'a\\x00b'"), ("c:x", "'c:x'")]],
    # members
    *[(sub(URLS, URLS + f'\nmember = "{bad}"'),
       f"{M0}: key 'member' must be a relative path inside the archive, got '{bad}'")
      for bad in ["", "/abs/m.pth", "a/../m.pth", "..", "../m.pth"]],
    # interpolation entries
    (lambda t: t + '[[model]]\nname = "near"\nformat = "interpolation"\nlicense = "MIT"\n',
     "model[1] (near xNone): an interpolation model needs io.method"),
    (lambda t: t + '[[model]]\nname = "near"\nformat = "interpolation"\nlicense = "MIT"\nsize = 3\n'
                   'sha256 = "x"\nio = { method = "nearest" }\n',
     "model[1] (near xNone): format 'interpolation' needs no file, but keys ['sha256', 'size'] are set"),
    (lambda t: t + '[[model]]\nname = "near"\nformat = "interpolation"\nlicense = "MIT"\npath = "p"\n'
                   'urls = []\ngit_blob_sha1 = "x"\nfile = "f"\nio = { method = "nearest" }\n',
     "model[1] (near xNone): format 'interpolation' needs no file, but keys "
     "['file', 'git_blob_sha1', 'path', 'urls'] are set"),
    (lambda t: t + '[[model]]\nname = "near"\nformat = "interpolation"\nlicense = "MIT"\nscale = 0\n'
                   'io = { method = "nearest" }\n',
     "model[1] (near x0): key 'scale' must be a positive integer, got 0"),
    # io
    (sub("schema = 1", "schema = 1\n[defaults]\nio = { colour = 'y' }"), f"{M0}.io: unknown key 'colour' (did you mean 'color'?)"),
    *[(sub(URLS, URLS + f'\nio = {{ {key} = "zz" }}'), f"{M0}.io: key '{key}' must be one of {shown}, got 'zz'")
      for key, shown in [("color", "['bgr', 'rgb', 'y']"), ("layout", "['nchw', 'nhwc']"),
                         ("export_layout", "['nchw', 'nhwc']"),
                         ("method", "['area', 'bicubic', 'bilinear', 'lanczos', 'nearest']"),
                         ("pre_upsample", "['bicubic', 'bicubic-matlab', 'bilinear']")]],
    *[(sub(URLS, URLS + f"\nio = {{ mean = {bad} }}"), f"{M0}.io: key 'mean' must be a list of 1 or 3 numbers")
      for bad in ["[]", "[1, 2]", "[1, 2, 3, 4]", '[1, "2", 3]', '["x"]', "[true]", "[1, false, 2]"]],
    # the document
    (lambda t: t + "\n[[model]]\nname='x'\n[oops]\n", "top level: unknown key 'oops'"),
    (sub("schema = 1", "schema = 2"), "schema: unsupported schema 2 (this srzoo reads 1)"),
    (sub("schema = 1", "schema = 0"), "schema: unsupported schema 0 (this srzoo reads 1)"),
    (sub("schema = 1", 'schema = "1"'), "top level: key 'schema' must be int, got str"),
    (lambda t: "schema = 1\nmodel = 3\n", "top level: key 'model' must be list, got int"),
    (lambda t: "schema = 1\nmodel = [1]\n", "model[0]: each [[model]] must be a table"),
    (lambda t: "schema = 1\nmodel = [{}]\n", "model[0] (None xNone): missing key 'name'"),
    (sub("schema = 1", "schema = 1\n[defaults]\nfilee = 'x'"), "defaults: unknown key 'filee' (did you mean 'file'?)"),
    (sub("schema = 1", "schema = 1\n[defaults]\nsize = 'x'"), "defaults: key 'size' must be int, got str"),
    (lambda t: t + t[t.index("[[model]]"):], "model[1] (mine x2): duplicate entry for mine x2"),
])
def test_model_refusals(tmp_path, mutation, message):
    assert refusal(write(tmp_path, mutation(GOOD))) == message


def test_edges_that_are_accepted(tmp_path):
    """Just inside each limit: scale 1, size 1, receptive field 0, mean of 1, http://, '..' inside a name."""
    text = (GOOD.replace("scale = 2", "scale = 1").replace("size = 10", "size = 1")
            .replace("https://", "http://").replace("mine_x2.onnx", "a..b")
            + 'receptive_field = 0\nmember = "a..b/c"\nio = { mean = [7], range = 2 }\n')
    (m,), _ = parse_manifest(write(tmp_path, text))
    assert (m.scale, m.size, m.receptive_field, m.member, m.file) == (1, 1, 0, "a..b/c", "a..b")
    assert m.io.mean == (7.0,) and m.io.range == 2.0 and m.artifact.urls == ("http://example.org/a..b",)
    # the same name at another scale, or another name at the same scale, is no duplicate
    block = text[text.index("[[model]]"):]
    models, _ = parse_manifest(write(tmp_path, text + block.replace("scale = 1", "scale = 2")
                                     + block.replace('"mine"', '"mine2"')))
    assert [(e.name, e.scale) for e in models] == [("mine", 1), ("mine", 2), ("mine2", 1)]
    # ignored keys are accepted, and change nothing
    assert parse_manifest(write(tmp_path, text + "needs_conversion = false\n"))[0] == [
        dataclasses.replace(m, manifest=str(tmp_path / "m.toml"))]
    # no schema key: the current one
    assert parse_manifest(write(tmp_path, text.replace("schema = 1", "")))[0][0] == m


def test_defaults_merge_io_key_by_key(tmp_path):
    text = GOOD.replace("schema = 1", 'schema = 1\n[defaults]\nlicense = "BSD"\nio = { color = "rgb", range = 1 }') \
        + 'io = { range = 2 }\n' + GOOD[GOOD.index("[[model]]"):].replace("mine", "other").replace(
            'license = "MIT"\n', "")
    (a, b), _ = parse_manifest(write(tmp_path, text))
    assert (a.license, a.io.color, a.io.range) == ("MIT", "rgb", 2.0)
    assert (b.license, b.io.color, b.io.range) == ("BSD", "rgb", 1.0)


DATASET = f'''
schema = 1
[dataset]
name = "set2"
description = "two images"
license = "research"
source = "https://example.org/set2"

[[file]]
file = "a.png"
size = 5
sha256 = "{SHA}"
urls = ["https://example.org/a.png"]

[[file]]
file = "b.png"
size = 6
sha256 = "{"c" * 64}"
git_blob_sha1 = "{BLOB}"
urls = ["https://example.org/b.png", "https://mirror.example.org/b.png"]
'''


def test_dataset(tmp_path):
    path = write(tmp_path, DATASET)
    models, (ds,) = parse_manifest(path)
    assert models == []
    assert ds == Dataset(name="set2", description="two images", license="research",
                         source="https://example.org/set2", manifest=str(path), files=(
                             Artifact("a.png", 5, SHA, ("https://example.org/a.png",), subdir="datasets/set2"),
                             Artifact("b.png", 6, "c" * 64, ("https://example.org/b.png",
                                                             "https://mirror.example.org/b.png"),
                                      git_blob_sha1=BLOB, subdir="datasets/set2")))
    (ds,) = parse_manifest(write(tmp_path, DATASET.replace('description = "two images"\n', "")))[1]
    assert ds.description == ""


@pytest.mark.parametrize("mutation, message", [
    (sub('license = "research"\n', ""), "dataset: missing key 'license'"),
    (sub('name = "set2"\n', ""), "dataset: missing key 'name'"),
    (sub('source = "https://example.org/set2"\n', ""), "dataset: missing key 'source'"),
    (sub('name = "set2"', 'name = "Set2"'), "dataset: key 'name' must be lowercase, got 'Set2'"),
    (sub('name = "set2"', 'name = "set2\\n"'), "dataset: key 'name' must be lowercase, got 'set2\\n'"),
    (sub('name = "set2"', 'nam = "set2"'), "dataset: unknown key 'nam' (did you mean 'name'?)"),
    (sub('size = 6', 'size = 6\nbundled = true'), "file[1]: unknown key 'bundled'"),
    (sub('"a.png"', '"../a.png"'), f"file[0]: {FILEMSG} '../a.png'"),
    (sub('size = 6', 'size = -6'), "file[1]: key 'size' must be positive, got -6"),
    (lambda t: t[:t.index("[[file]]")], "file: a dataset manifest needs at least one [[file]]"),
    (lambda t: t[:t.index("[dataset]")] + t[t.index("[[file]]"):], "dataset: missing key 'name'"),
    (lambda t: "schema = 1\nfile = [1]\n" + t[t.index("[dataset]"):t.index("[[file]]")],
     "file[0]: each [[file]] must be a table"),
    (lambda t: t.replace("[dataset]", "dataset = 1\n[x]"), "top level: key 'dataset' must be dict, got int"),
])
def test_dataset_refusals(tmp_path, mutation, message):
    assert refusal(write(tmp_path, mutation(DATASET))) == message


def test_document_refusals(tmp_path):
    assert refusal(tmp_path / "nope.toml") == "cannot read manifest: No such file or directory"
    assert refusal(tmp_path) == "is not a regular file; a manifest is a TOML file"
    os.mkfifo(tmp_path / "fifo.toml")  # opened without blocking (no writer needed), then refused
    assert refusal(tmp_path / "fifo.toml") == "is not a regular file; a manifest is a TOML file"
    p = write(tmp_path, GOOD.replace("schema = 1", "schema = = 1"))
    assert refusal(p) == "not valid TOML: Invalid value (at line 2, column 10)"
    p.write_bytes(b'schema = 1\nx = "\xc3\xa9\xff"\n')
    assert refusal(p) == "not UTF-8 text (byte 18)".join(["not valid TOML: ", ""])
    with open(p, "wb") as f:
        f.truncate(MAX_MANIFEST_BYTES + 1)
    assert refusal(p) == "more than 16 MiB; not a manifest"
    p.write_bytes(b"schema = 1\n#" + b"x" * (MAX_MANIFEST_BYTES - 12))  # exactly the limit is read
    assert parse_manifest(p) == ([], [])
    p.write_text("x = " + "[" * 3000 + "]" * 3000)
    assert refusal(p) == "not valid TOML: arrays or tables nested too deeply"


def test_check_file_name_and_constants():
    for good in ("a", "a.b", "a..b", "x~", "é.png"):
        check_file_name("m.toml", "w", good)
    with pytest.raises(ManifestError) as err:
        check_file_name("m.toml", "w", "a/b")
    assert str(err.value) == f"m.toml: w: {FILEMSG} 'a/b'"
    assert SCHEMA_VERSION == 1 and MAX_MANIFEST_BYTES == 16 * 1024 * 1024
    assert {k for k, v in FORMATS.items() if not v} == {"interpolation"} and len(FORMATS) == 8
