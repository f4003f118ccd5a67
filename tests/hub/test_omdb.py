"""The OpenModelDB catalogue: omdb: names, the pinned catalogue artifact, manual downloads,
.safetensors and .onnx resources, end to end on real weights from ../shared.

The catalogue these tests use is built from the 14 real records in
../shared/openmodeldb plus records written here that point at real shared files
(with THEIR sha256), served by the local mirror. Nothing reaches the internet.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from suite import cache_files
from httpmirror import MirrorServer
from srzoo.convert import safetensors as st
from srzoo.runtime import upscaler
from srzoo.hub.catalog import store
from srzoo.cli import main

ANIME_PTH = ("esrgan/realesr-animevideov3.pth", 2334339,
             "4e1e09ba96d08bd4b8455e8897c3242a3501e3766f359941ea894122e158a932")
WAIFU2X = ("waifu2x/upconv_7_scale2.0x_model.onnx", 2212294,
           "f0c4ec0bf69dadf14beb19565e5530a739666e41dab3fb2c109550384eda8294")
REV_A = "a" * 40
REV_B = "b" * 40


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def shared_records(shared: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in sorted((shared / "openmodeldb").glob("*.json"))
            if p.stem != "architectures"}


def record(base: dict, rtype: str, nbytes: int, sha: str, urls: list[str], **kw) -> dict:
    """A copy of a real record with one resource of our own (``kw``: fields to change)."""
    r = copy.deepcopy(base)
    r["resources"] = [{"platform": "onnx" if rtype == "onnx" else "pytorch", "type": rtype,
                       "size": nbytes, "sha256": sha, "urls": urls}]
    r.update(kw)
    return r


def _folder_mirror(tmp_path: Path, monkeypatch, mirror) -> Path:
    """A local folder mirror after the HTTP one, for files the tests write."""
    folder = tmp_path / "local-mirror"
    folder.mkdir()
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    return folder


@pytest.fixture
def folder_mirror(tmp_path, monkeypatch, srzoo_env, mirror):
    return _folder_mirror(tmp_path, monkeypatch, mirror)


def _omdb(shared_dir: Path, folder: Path):
    """A catalogue (revision REV_A) of the shared sample + test records, installed in the cache."""
    recs = shared_records(shared_dir)
    anime = recs["4x-realesr-animevideo-v3"]
    rel, size, sha = ANIME_PTH
    gh = "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/"
    recs["4x-srzoo-test-anime"] = record(anime, "pth", size, sha, [gh + "realesr-animevideov3.pth"])
    bad = sha[:-1] + ("0" if sha[-1] != "0" else "1")
    recs["4x-srzoo-test-wrongsha"] = record(anime, "pth", size, bad, [gh + "realesr-animevideov3.pth"])
    # a Drive folder and a Mega folder (no single file: srzoo.hub.hosts has no route): by hand
    recs["4x-srzoo-test-gdrive"] = record(
        anime, "pth", size, sha, ["https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz?usp=sharing",
                                  "https://mega.nz/folder/xyzXYZ12#0123456789abcdefABCDEF"], license="CC-BY-NC-SA-4.0")
    rel, size, sha = WAIFU2X
    recs["2x-srzoo-test-waifu2x"] = record(anime, "onnx", size, sha, [
        "https://example.org/models/upconv_7_scale2.0x_model.onnx"], scale=2, architecture="cugan")
    # an architecture srzoo has no converter for (DAT, the shared sample's, converts now)
    dat = recs["2x-DAT-2"]
    recs["2x-srzoo-test-ditn"] = record(dat, "pth", 1000, "ab" * 32, ["https://example.org/models/ditn.pth"],
                                        architecture="ditn", size=[])

    def install(extra: dict | None = None) -> store.Catalogue:
        data = store.serialise(REV_A, {**recs, **(extra or {})},
                               json.loads((shared_dir / "openmodeldb" / "architectures.json").read_text()))
        store.install(data, REV_A)
        return store.load()

    install.records = recs
    install.folder = folder
    install()
    upscaler.clear_cache()  # loaded models are kept per process: start each test without
    return install


@pytest.fixture
def omdb(shared_dir, srzoo_env, folder_mirror):
    """The test catalogue in an empty cache of this test."""
    yield _omdb(shared_dir, folder_mirror)
    upscaler.clear_cache()


@pytest.fixture
def omdb_warm(shared_dir, models_env, tmp_path, monkeypatch, mirror):
    """The test catalogue in the session's cache (conversions are shared between tests)."""
    yield _omdb(shared_dir, _folder_mirror(tmp_path, monkeypatch, mirror))
    upscaler.clear_cache()


# ---- listing and records --------------------------------------------------------------------
def test_list_catalog_filters_and_columns(omdb, capsys):
    code, out, err = run(capsys, "list", "--catalog", "openmodeldb", "--arch", "esrgan", "--scale", "4", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {"omdb:4x-ESRGAN", "omdb:4x-NomosWebPhoto-esrgan", "omdb:4x-realesrgan-x4plus",
                         "omdb:4x-realesrgan-x4plus-anime-6b"}
    x4plus = rows["omdb:4x-realesrgan-x4plus"]
    assert x4plus["license"] == "BSD-3-Clause" and not x4plus["non_commercial"]
    assert (x4plus["file_type"], x4plus["file_size"]) == ("pth", 67040989)
    assert x4plus["runnable"] == "yes" and x4plus["downloadable"] is True

    code, out, _ = run(capsys, "list", "--catalog", "openmodeldb", "--tag", "anime")
    lines = out.splitlines()
    assert lines[0].split() == ["name", "architecture", "scale", "license", "file", "runs", "download"]
    names = {ln.split()[0] for ln in lines[2:]}
    assert names == {"omdb:2x-Ani4K", "omdb:4x-realesr-animevideo-v3", "omdb:4x-realesrgan-x4plus-anime-6b",
                     "omdb:4x-srzoo-test-anime", "omdb:4x-srzoo-test-wrongsha", "omdb:4x-srzoo-test-gdrive",
                     "omdb:2x-srzoo-test-waifu2x"}
    ani4k = next(ln for ln in lines if ln.startswith("omdb:2x-Ani4K "))
    assert "CC-BY-NC-4.0 (NC: non-commercial)" in ani4k
    gdrive = next(ln for ln in lines if ln.startswith("omdb:4x-srzoo-test-gdrive "))
    assert gdrive.split()[-3:] == ["yes", "by", "hand"]  # runs: yes; download: by hand


def test_list_catalog_cells_json_rows_and_filters(omdb, capsys):
    """Every cell of `srzoo list --catalog` for the compact records (a record without a file among
    them), a JSON row whole, the name pattern, --runnable, and the empty answer."""
    book = omdb.records["1x-Book-Compact"]
    omdb({"1x-srzoo-test-nofile": dict(book, resources=[])})
    code, out, err = run(capsys, "list", "--catalog", "openmodeldb", "--arch", "compact")
    assert code == 0
    cells = [re.split(r" {2,}", ln.rstrip()) for ln in out.splitlines()]
    nc = " (NC: non-commercial)"
    assert cells == [
        ["name", "architecture", "scale", "license", "file", "runs", "download"], cells[1],
        ["omdb:1x-Book-Compact", "compact 2,27mb", "x1", "CC-BY-SA-4.0", "2.3 MiB safetensors", "yes", "yes"],
        ["omdb:1x-BroadcastToStudio-Compact", "compact 64nf 16nc", "x1", "CC-BY-NC-SA-4.0" + nc, "2.3 MiB pth", "yes",
         "yes"],
        ["omdb:1x-srzoo-test-nofile", "compact 2,27mb", "x1", "CC-BY-SA-4.0", "-", "no", "by hand"],
        ["omdb:2x-Ani4K", "compact", "x2", "CC-BY-NC-4.0" + nc, "4.6 MiB pth", "yes", "yes"],
        ["omdb:4x-realesr-animevideo-v3", "compact 64nf 16nc", "x4", "BSD-3-Clause", "2.4 MiB pth", "yes", "yes"],
        ["omdb:4x-realesr-general-x4v3", "compact 64nf 32nc", "x4", "BSD-3-Clause", "4.7 MiB pth", "yes", "yes"],
        ["omdb:4x-srzoo-test-anime", "compact 64nf 16nc", "x4", "BSD-3-Clause", "2.2 MiB pth", "yes", "yes"],
        ["omdb:4x-srzoo-test-gdrive", "compact 64nf 16nc", "x4", "CC-BY-NC-SA-4.0" + nc, "2.2 MiB pth", "yes", "by hand"],
        ["omdb:4x-srzoo-test-wrongsha", "compact 64nf 16nc", "x4", "BSD-3-Clause", "2.2 MiB pth", "yes", "yes"]]
    assert err == ("9 of 20 OpenModelDB records at aaaaaaaaaaaa; runs: yes = converted to ONNX by srzoo, "
                   "onnx = published ONNX run as is\n")

    code, out, _ = run(capsys, "list", "--catalog", "OpenModelDB", "4x-realesrgan-x4plus", "--json")
    assert out.startswith('[\n  {\n    "name": "omdb:4x-realesrgan-x4plus",\n')
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["omdb:4x-realesrgan-x4plus", "omdb:4x-realesrgan-x4plus-anime-6b"]
    assert rows[0] == {  # ../shared/openmodeldb/4x-realesrgan-x4plus.json
        "name": "omdb:4x-realesrgan-x4plus", "title": "RealESRGAN_x4Plus", "arch": "esrgan",
        "size_tags": ["64nf", "23nb"], "scale": 4, "license": "BSD-3-Clause", "non_commercial": False,
        "file_type": "pth", "file_size": 67040989, "runnable": "yes", "why_not": None, "downloadable": True,
        "tags": ["compression-removal", "general-upscaler", "jpeg", "photo", "research", "restoration"]}
    code, out, _ = run(capsys, "list", "--catalog", "openmodeldb", "1x-srzoo-test-nofile", "--json")
    (row,) = json.loads(out)
    assert (row["file_type"], row["file_size"], row["runnable"], row["why_not"], row["downloadable"]) == (
        None, None, "no", "no weight file", False)

    code, out, _ = run(capsys, "list", "--catalog", "openmodeldb", "*-srzoo-test-*", "--runnable", "--json")
    assert sorted(r["name"] for r in json.loads(out)) == [
        "omdb:2x-srzoo-test-waifu2x", "omdb:4x-srzoo-test-anime", "omdb:4x-srzoo-test-gdrive",
        "omdb:4x-srzoo-test-wrongsha"]  # not ditn or nofile: they do not run
    code, out, err = run(capsys, "list", "--catalog", "openmodeldb", "zzz")
    assert (code, out) == (0, "no record matches\n") and err.startswith("0 of 20 OpenModelDB records at ")
    assert run(capsys, "list", "--catalog", "other") == (
        1, "", "srzoo: error: unknown catalogue 'other'; srzoo knows: openmodeldb\n")


def test_unconverted_architectures_listed_as_such(omdb, capsys):
    code, out, _ = run(capsys, "list", "--catalog", "openmodeldb", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert len(rows) == 19
    assert rows["omdb:2x-srzoo-test-ditn"]["runnable"] == "no"
    assert "no converter for ditn" in rows["omdb:2x-srzoo-test-ditn"]["why_not"]
    dat = rows["omdb:2x-DAT-2"]  # srzoo.convert.arch.dat; its size tags are DAT's; on a Drive folder
    assert (dat["runnable"], dat["downloadable"]) == ("yes", False)
    span = rows["omdb:1x-BroadcastToStudio-SPAN"]
    assert (span["runnable"], span["downloadable"], span["file_type"]) == ("yes", False, "pth")  # Mega only
    compact = {n: r["runnable"] for n, r in rows.items() if r["arch"] == "compact"}
    assert compact["omdb:1x-Book-Compact"] == "yes"  # its size tag "2,27mb" is the file's size: no shape
    assert set(compact.values()) == {"yes"}
    code, _, err = run(capsys, "list", "--arch", "esrgan")
    assert code == 1 and "--catalog openmodeldb" in err
    # a size tag that names a shape srzoo does not know is not runnable, and says which
    book = omdb.records["1x-Book-Compact"]
    omdb({"1x-srzoo-test-odd-compact": dict(copy.deepcopy(book), size=["64nf", "8x8 windows"])})
    code, out, _ = run(capsys, "list", "--catalog", "openmodeldb", "--json")
    odd = {r["name"]: r for r in json.loads(out)}["omdb:1x-srzoo-test-odd-compact"]
    assert odd["runnable"] == "no" and "size tags ['8x8 windows']" in odd["why_not"]


def test_info_shows_whole_record(omdb, capsys):
    code, out, _ = run(capsys, "info", "omdb:1x-BroadcastToStudio-Compact")
    assert code == 0
    assert "author:       kim2091" in out
    assert "CC-BY-NC-SA-4.0  ** non-commercial" in out
    assert "architecture: compact 64nf 16nc" in out and "scale:        x1" in out
    assert "pretrainedModelG: 1x-SwatKats-Compact" in out and "trainingIterations: 25000" in out
    assert "f4876edc5f12783395c444bbb1d2f1bc304ed69b2cc82409dff9d6dad6fbd596" in out
    assert "52836c782140058bcc695e90102c3ef54961ebab2c12e66298eaba25d42570bc" in out
    assert "This is a simple retrain of SaurusX" in out
    code, out, _ = run(capsys, "info", "omdb:2x-DAT-2", "--json")
    doc = json.loads(out)
    assert doc["record"]["size"] == ["medium", "s64|8x32", "64nf", "180dim", "2.0ef", "1conv"]
    assert doc["srzoo"]["runnable"] == "yes"
    code, out, _ = run(capsys, "info", "omdb:2x-srzoo-test-ditn", "--json")
    doc = json.loads(out)
    assert doc["srzoo"]["runnable"] == "no" and "srzoo runs esrgan" in doc["srzoo"]["why_not"]
    code, _, err = run(capsys, "info", "omdb:4x-realesrgan-x4plux")
    assert code == 1 and "Did you mean: omdb:4x-realesrgan-x4plus" in err


BROADCAST_INFO = """\
omdb:1x-BroadcastToStudio-Compact  BroadcastToStudio Compact
author:       kim2091
license:      CC-BY-NC-SA-4.0  ** non-commercial: this licence forbids commercial use **
architecture: compact 64nf 16nc
scale:        x1
channels:     3 in, 3 out
tags:         cartoon, compression-removal, deblur, restoration
date:         2024-12-01
page:         https://openmodeldb.info/models/1x-BroadcastToStudio-Compact
training:
  dataset: BroadcastToStudio
  datasetSize: 6000
  pretrainedModelG: 1x-SwatKats-Compact
  trainingIterations: 25000
  trainingBatchSize: 8
resources:
  pth (pytorch), 2400484 bytes, sha256 f4876edc5f12783395c444bbb1d2f1bc304ed69b2cc82409dff9d6dad6fbd596  <- srzoo uses this
    [direct] https://github.com/Kim2091/Kim2091-Models/releases/download/1x-BroadcastToStudio_Compact/1x-BroadcastToStudio_Compact.pth
  onnx (onnx), 1200682 bytes, sha256 52836c782140058bcc695e90102c3ef54961ebab2c12e66298eaba25d42570bc
    [direct] https://github.com/Kim2091/Kim2091-Models/releases/download/1x-BroadcastToStudio_Compact/1x-BroadcastToStudio_Compact-fp16.onnx
srzoo:        converts the pytorch-pth to ONNX on first use (not cached: {cache}/models/omdb/1x-BroadcastToStudio-Compact/1x-BroadcastToStudio_Compact.pth)
description:
  Purpose: Cartoons
  
  This is a simple retrain of SaurusX's 1x_BroadcastToStudioLite_485k model from a couple years
  ago. This one is trained on compact, actually has less artifacts, and is significantly faster.
  
  __Comparisons:__ <https://slow.pics/c/oGwHyYym>
  ![1733071729 5752351](https://github.com/user-
  attachments/assets/f247b870-d49e-4c37-ad39-c4565efe164d)
"""


def test_info_text_is_the_record_line_by_line(omdb, srzoo_env, capsys):
    """The whole page of one real record (../shared/openmodeldb/1x-BroadcastToStudio-Compact.json),
    written out by hand from the record: training facts in srzoo's order (dataset first), the
    fields shown above them not repeated (architecture, size, images...), the resource srzoo
    uses marked, each URL as direct or by hand, the description wrapped at 96 columns."""
    code, out, _ = run(capsys, "info", "omdb:1x-BroadcastToStudio-Compact")
    assert code == 0
    assert out == BROADCAST_INFO.format(cache=srzoo_env)


def test_info_text_of_odd_records(omdb, srzoo_env, capsys):
    """Missing fields print "?"/"-", extra fields are training facts, a record with no usable file says
    why it cannot run, by-hand URLs say so, and a published ONNX says "cached" once fetched."""
    book = omdb.records["1x-Book-Compact"]
    bare = {k: v for k, v in book.items() if k not in ("inputChannels", "outputChannels", "date", "description",
                                                       "size", "tags")}
    bare.update(name="Bare", license="MIT", customNote="made for a test", trainingOTF=True)
    omdb({"1x-srzoo-test-bare": bare})
    code, out, _ = run(capsys, "info", "omdb:1x-srzoo-test-bare")
    assert code == 0
    # ../shared/openmodeldb/1x-Book-Compact.json less six fields, plus two of ours
    assert out.splitlines() == [
        "omdb:1x-srzoo-test-bare  Bare", "author:       asterixcool", "license:      MIT",
        "architecture: compact", "scale:        x1", "channels:     ? in, ? out", "tags:         -",
        "date:         -", "page:         https://openmodeldb.info/models/1x-srzoo-test-bare",
        "training:", "  dataset: My own collection.", "  datasetSize: 13150", "  trainingIterations: 399000",
        "  trainingBatchSize: 16", "  trainingHRSize: 95", "  trainingOTF: True", "  customNote: made for a test",
        "resources:",
        "  safetensors (pytorch), 2386212 bytes, sha256 "
        "fbccfd710b4a2abf9e20b58b2714a2292d4f26571ed481af20d0c519fde10885  <- srzoo uses this",
        "    [direct] https://github.com/starinspace/StarinspaceUpscale/releases/download/Models/1xBook-Compact.safetensors",
        "srzoo:        converts the safetensors to ONNX on first use (not cached: "
        f"{srzoo_env}/models/omdb/1x-srzoo-test-bare/1xBook-Compact.safetensors)",
        "description:", "  -"]

    # a paragraph of 97 characters wraps at 96
    omdb({"1x-srzoo-test-wrap": dict(bare, description="x" * 91 + " abcde\n\nend")})
    code, out, _ = run(capsys, "info", "omdb:1x-srzoo-test-wrap")
    assert out.endswith("\ndescription:\n  " + "x" * 91 + "\n  abcde\n  \n  end\n")
    # a record without a file is refused by name (so every page shown has a file srzoo would use)
    omdb({"1x-srzoo-test-nofile": dict(bare, resources=[])})
    assert run(capsys, "info", "omdb:1x-srzoo-test-nofile", "--json") == (
        1, "", "srzoo: error: omdb:1x-srzoo-test-nofile has no weight file (it has: none)\n")

    code, out, _ = run(capsys, "info", "omdb:4x-srzoo-test-gdrive")
    assert "\n    [by hand] https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz?usp=sharing\n" \
           "    [by hand] https://mega.nz/folder/xyzXYZ12#0123456789abcdefABCDEF\n" in out

    code, out, _ = run(capsys, "info", "omdb:2x-srzoo-test-ditn")
    assert "\narchitecture: ditn\n" in out  # no size tags: no trailing space
    why = srzoo.get_model("omdb:2x-srzoo-test-ditn").unrunnable
    assert why.startswith("omdb:2x-srzoo-test-ditn is a ditn model and srzoo has no converter for ditn")
    assert f"\nsrzoo:        cannot run it: {why}\ndescription:\n  -\n" in out

    where = srzoo_env / "models/omdb/2x-srzoo-test-waifu2x/upconv_7_scale2.0x_model.onnx"
    code, out, _ = run(capsys, "info", "omdb:2x-srzoo-test-waifu2x")
    assert f"\nsrzoo:        runs the published ONNX (not cached: {where})\n" in out
    where = srzoo_env / "models/omdb/4x-srzoo-test-anime/realesr-animevideov3.pth"
    srzoo.fetch("omdb:4x-srzoo-test-anime")
    code, out, _ = run(capsys, "info", "omdb:4x-srzoo-test-anime")
    assert f"\nsrzoo:        converts the pytorch-pth to ONNX on first use (cached: {where})\n" in out


def test_info_json_is_the_record_and_srzoos_facts(omdb, srzoo_env, capsys):
    """--json: the record as published (non-ASCII kept), then what srzoo makes of it, two-space indent."""
    anime = omdb.records["4x-srzoo-test-anime"]
    omdb({"4x-srzoo-test-utf8": dict(anime, name="Ünïcode ✓")})
    code, out, _ = run(capsys, "info", "omdb:4x-srzoo-test-utf8", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["id"] == "4x-srzoo-test-utf8" and doc["record"]["name"] == "Ünïcode ✓"
    assert '\n  "id": "4x-srzoo-test-utf8",\n  "record": {\n    "' in out and '"name": "Ünïcode ✓"' in out
    assert doc["srzoo"] == {
        "name": "omdb:4x-srzoo-test-utf8", "revision": REV_A, "runnable": "yes", "why_not": None,
        "resource": "realesr-animevideov3.pth", "source_format": "pytorch-pth", "cached": False,
        "non_commercial": False, "page": "https://openmodeldb.info/models/4x-srzoo-test-utf8"}
    code, out, _ = run(capsys, "info", "omdb:2x-srzoo-test-ditn", "--json")
    facts = json.loads(out)["srzoo"]
    assert (facts["resource"], facts["runnable"], facts["source_format"]) == ("ditn.pth", "no", "pytorch-pth")


def test_get_model_resolves_omdb_names(omdb):
    e = srzoo.get_model("omdb:4x-realesrgan-x4plus")
    assert (e.scale, e.sha256, e.size, e.source_format) == (
        4, "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", 67040989, "pytorch-pth")
    assert e.artifact.urls == ("https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",)
    with pytest.raises(srzoo.UnknownModel, match="x4 model, not x2"):
        srzoo.get_model("omdb:4x-realesrgan-x4plus", 2)
    # GitHub page links become download links; Mega/Drive links are kept for the manual message only
    esr = srzoo.get_model("omdb:4x-ESRGAN")
    assert esr.artifact.urls == ("https://objectstorage.us-phoenix-1.oraclecloud.com/n/ax6ygfvpvzka/"
                                 "b/open-modeldb-files/o/4x-ESRGAN.pth",)
    assert esr.manual_urls[0].startswith("https://mega.nz/")
    nomos = srzoo.get_model("omdb:4x-NomosWebPhoto-esrgan@safetensors")
    assert nomos.source_format == "safetensors" and nomos.size == 33467822


def test_unsupported_architecture_says_what_runs(omdb, capsys):
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(srzoo.SrzooError, match=r"no converter for ditn; srzoo runs esrgan .*compact"):
        srzoo.upscale(img, "omdb:2x-srzoo-test-ditn", 2)
    assert not (store.cache.cache_dir() / "models").exists()  # refused before any download


# ---- downloads ----------------------------------------------------------------------------
@pytest.mark.slow  # converts the network (checked against torch): ~10 s on 2 cores
def test_end_to_end_pth_through_omdb(omdb, shared_dir, srzoo_env, mirror):
    """omdb: record -> download from the mirror, verify, convert (recorded), run; checked
    against the upstream ncnn conversion of the same network run by the ncnn package."""
    ncnn = pytest.importorskip("ncnn")
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "baby.png"))[100:132, 100:140]
    out = srzoo.upscale(img, "omdb:4x-srzoo-test-anime", 4)
    assert out.shape == (128, 160, 3) and out.dtype == np.uint8
    assert len(mirror.gets("realesr-animevideov3.pth")) == 1
    src = srzoo_env / "models" / "omdb" / "4x-srzoo-test-anime" / "realesr-animevideov3.pth"
    assert hashlib.sha256(src.read_bytes()).hexdigest() == ANIME_PTH[2]
    recs = list((srzoo_env / "derived").glob("omdb-4x-srzoo-test-anime-x4-*/record.json"))
    assert len(recs) == 1
    rec = json.loads(recs[0].read_text())
    assert rec["source"]["sha256"] == ANIME_PTH[2] and rec["probe"]["max_abs_error"] <= 1e-2

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.load_param(str(shared_dir / "models/esrgan-ncnn/realesr-animevideov3-x4.param"))
    net.load_model(str(shared_dir / "models/esrgan-ncnn/realesr-animevideov3-x4.bin"))
    ex = net.create_extractor()
    rgb = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32) / 255
    ex.input("data", ncnn.Mat(rgb))  # ncnn.Mat borrows rgb's memory: keep rgb alive
    ref = np.array(ex.extract("output")[1])
    ref = np.clip(ref * 255, 0, 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.1


def test_cli_upscale_and_bench_take_omdb_names(omdb_warm, shared_dir, tmp_path, capsys):
    from srzoo.evaluate.benchmark import _plan

    src = tmp_path / "in.png"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "baby.png"))[60:84, 60:90]
    cv2.imwrite(str(src), img)
    code, out, err = run(capsys, "upscale", str(src), "-m", "omdb:4x-srzoo-test-anime", "-s", "4", "-q", "-v")
    assert code == 0, err
    dst = tmp_path / "in_omdb-4x-srzoo-test-anime_x4.png"  # no ':' in file names
    assert out.strip() == str(dst)
    big = cv2.imread(str(dst))
    assert big.shape == (96, 120, 3)
    # the network's output is close to bicubic on smooth content, never equal to it
    bic = cv2.resize(img, (120, 96), interpolation=cv2.INTER_CUBIC)
    assert 0 < np.abs(big.astype(int) - bic.astype(int)).mean() < 20
    code, out, err = run(capsys, "convert", "omdb:4x-srzoo-test-anime", "-o", str(tmp_path / "a.onnx"))
    assert code == 0, err
    assert "architecture: srvgg" in out and "scale:        4" in out
    onnx_bytes = (tmp_path / "a.onnx").read_bytes()
    assert f"sha256 {hashlib.sha256(onnx_bytes).hexdigest()}" in out
    net = cv2.dnn.readNetFromONNX(str(tmp_path / "a.onnx"))
    net.setInput(np.full((1, 3, 8, 8), 0.5, np.float32))
    assert net.forward().shape == (1, 3, 32, 32)
    assert _plan(["omdb:4x-srzoo-test-anime"], None) == ([("omdb:4x-srzoo-test-anime", 4)], [])
    assert _plan(["omdb:4x-srzoo-test-anime"], [2, 4])[1] == ["omdb:4x-srzoo-test-anime x2 (no such model; it has x4)"]


def test_convert_record_prints_the_check_and_copies_the_cached_onnx(omdb_warm, models_env, tmp_path,
                                                                     monkeypatch, capsys):
    """`srzoo convert omdb:ID`: the derived record's facts line by line, the copy byte-identical to the
    cached ONNX, an existing output replaced only with --overwrite, the cache's own file never rewritten."""
    omdb = omdb_warm
    out = tmp_path / "a.onnx"
    code, stdout, err = run(capsys, "convert", "omdb:4x-srzoo-test-anime", "-o", str(out))
    assert code == 0, err
    folder = next((models_env / "derived").glob("omdb-4x-srzoo-test-anime-x4-*"))
    cached = folder / "model.onnx"
    data = cached.read_bytes()
    assert out.read_bytes() == data
    probe = json.loads((folder / "record.json").read_text())["probe"]
    assert isinstance(probe["checked_against"], str) and probe["checked_against"]
    # SRVGGNetCompact 64 features, 16 convs, x4: 3*64*9+64 + 64 + 16*(64*64*9+64+64) + 64*48*9+48
    assert stdout.splitlines() == [
        f"format:       pytorch-pth (omdb:4x-srzoo-test-anime @ {REV_A[:12]})",
        "architecture: srvgg", "scale:        4", "parameters:   621424",
        f"verification: max |diff| {probe['max_abs_error']:.3g} against {probe['checked_against']}",
        f"output:       {out} (sha256 {hashlib.sha256(data).hexdigest()})"]
    # an existing file: refused, then replaced with --overwrite
    out.write_bytes(b"mine")
    code, _, err = run(capsys, "convert", "omdb:4x-srzoo-test-anime", "-o", str(out))
    assert code == 1 and err == f"srzoo: error: {out}: exists; refusing to replace it (use --overwrite, or -o another file)\n"
    assert out.read_bytes() == b"mine"
    assert run(capsys, "convert", "omdb:4x-srzoo-test-anime", "-o", str(out), "--overwrite")[0] == 0
    assert out.read_bytes() == data
    # -o the cached file itself: nothing is rewritten
    inode = cached.stat().st_ino
    code, stdout, _ = run(capsys, "convert", "omdb:4x-srzoo-test-anime", "-o", str(cached), "--overwrite")
    assert code == 0 and cached.stat().st_ino == inode and cached.read_bytes() == data
    # no -o: the record's id in the current folder
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "convert", "omdb:4x-srzoo-test-anime")[0] == 0
    assert (tmp_path / "4x-srzoo-test-anime.onnx").read_bytes() == data
    # refusals, one line each
    for argv, line in (
            (["--scale", "2"], "omdb:4x-srzoo-test-anime is an x4 model, not x2"),
            (["--manifest", str(tmp_path / "m.toml")], "--manifest is for local files; omdb: names need no manifest")):
        code, _, err = run(capsys, "convert", "omdb:4x-srzoo-test-anime", "-o", str(tmp_path / "b.onnx"), *argv)
        assert (code, err) == (1, f"srzoo: error: {line}\n")
    code, _, err = run(capsys, "convert", "omdb:2x-srzoo-test-ditn", "-o", str(tmp_path / "b.onnx"))
    assert code == 1 and err == f"srzoo: error: {srzoo.get_model('omdb:2x-srzoo-test-ditn').unrunnable}\n"
    assert not (tmp_path / "b.onnx").exists()

    # a published ONNX: copied as it is, no conversion record
    shutil.copy(cached, omdb.folder / "anime-published.onnx")
    anime = omdb.records["4x-realesr-animevideo-v3"]
    omdb({"4x-srzoo-test-onnx": record(anime, "onnx", len(data), hashlib.sha256(data).hexdigest(),
                                       ["https://example.org/anime-published.onnx"])})
    code, stdout, err = run(capsys, "convert", "omdb:4x-srzoo-test-onnx", "-o", str(tmp_path / "p.onnx"))
    assert code == 0, err
    assert stdout.splitlines() == [
        f"format:       onnx (omdb:4x-srzoo-test-onnx @ {REV_A[:12]})", "scale:        4",
        "verification: published ONNX, inputs inspected and run once on a probe",
        f"output:       {tmp_path / 'p.onnx'} (sha256 {hashlib.sha256(data).hexdigest()})"]
    assert (tmp_path / "p.onnx").read_bytes() == data


def test_cache_ls_and_rm_of_one_record(omdb, shared_dir, srzoo_env, capsys):
    """`srzoo cache ls|rm omdb:ID[@type]` touch that record's files only, not another record's."""
    srzoo.fetch("omdb:4x-srzoo-test-anime")
    pth = shared_dir / "models" / ANIME_PTH[0]
    assert run(capsys, "fetch", "omdb:4x-srzoo-test-gdrive", "--from", str(pth))[0] == 0
    anime = srzoo_env / "models/omdb/4x-srzoo-test-anime/realesr-animevideov3.pth"
    gdrive = srzoo_env / "models/omdb/4x-srzoo-test-gdrive/4x-srzoo-test-gdrive.pth"
    assert anime.is_file() and gdrive.is_file()
    for name in ("omdb:4x-srzoo-test-anime", "omdb:4x-srzoo-test-anime@pth"):
        code, out, _ = run(capsys, "cache", "ls", name)
        rows = [ln.split() for ln in out.splitlines()[2:]]
        assert code == 0 and rows == [["omdb:4x-srzoo-test-anime", "models/omdb/4x-srzoo-test-anime/realesr-animevideov3.pth",
                                       "2.2", "MiB"]], out
    code, out, _ = run(capsys, "cache", "rm", "omdb:4x-srzoo-test-anime@pth")
    assert code == 0 and f"removed {anime}" in out.splitlines()
    assert not anime.exists() and gdrive.is_file()


def test_fetch_force_of_a_record_srzoo_cannot_run_fetches_the_file_only(omdb, srzoo_env, capsys):
    """`fetch --force` of a record of an architecture srzoo has no converter for downloads its
    file again and stops there: there is no derived ONNX to rebuild (and no error)."""
    anime = omdb.records["4x-srzoo-test-anime"]
    _, size, sha = ANIME_PTH
    omdb({"4x-srzoo-test-ditnfile": record(anime, "pth", size, sha, anime["resources"][0]["urls"],
                                           architecture="ditn", size=[])})
    assert srzoo.get_model("omdb:4x-srzoo-test-ditnfile").unrunnable
    path = srzoo_env / "models/omdb/4x-srzoo-test-ditnfile/realesr-animevideov3.pth"
    for _ in range(2):  # the download, then the forced one
        code, out, err = run(capsys, "fetch", "omdb:4x-srzoo-test-ditnfile", "-q", "--force")
        assert (code, out, err) == (0, f"{path}\n", "")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert not (srzoo_env / "derived").exists() or not any((srzoo_env / "derived").iterdir())


def test_wrong_sha256_refused_nothing_cached(omdb, srzoo_env, capsys):
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-test-wrongsha", "-q")
    assert code == 1 and "sha256 mismatch" in err and err.count("\n") == 1
    assert [p for p in cache_files(srzoo_env) if p.parts[:2] == ("models", "omdb")] == []
    assert not any((srzoo_env / ".incomplete").glob("*.part"))
    with pytest.raises(srzoo.ChecksumError):
        srzoo.upscale(np.zeros((8, 8, 3), np.uint8), "omdb:4x-srzoo-test-wrongsha", 4)
    assert not (srzoo_env / "derived").exists() or not any((srzoo_env / "derived").iterdir())


def test_changed_upstream_file_with_same_record_is_caught(omdb, srzoo_env, mirror, capsys):
    """The host serves different bytes than the record's sha256: refused, never used."""
    mirror.fault("*/realesr-animevideov3.pth", corrupt_at=1000, times=None)
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-test-anime", "-q")
    assert code == 1 and "(realesr-animevideov3.pth): sha256 mismatch: expected " in err
    assert [p for p in cache_files(srzoo_env) if p.parts[:2] == ("models", "omdb")] == []


def test_manual_host_message_and_from_file(omdb, shared_dir, srzoo_env, capsys):
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-test-gdrive", "-q")
    assert code == 1 and err.count("\n") == 1
    assert "https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz?usp=sharing" in err
    assert "https://mega.nz/folder/xyzXYZ12#0123456789abcdefABCDEF" in err
    assert "srzoo fetch omdb:4x-srzoo-test-gdrive --from FILE" in err
    assert "Traceback" not in err
    target = srzoo_env / "models/omdb/4x-srzoo-test-gdrive/4x-srzoo-test-gdrive.pth"  # no file name in a Drive link

    wrong = shared_dir / "models" / WAIFU2X[0]
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-test-gdrive", "--from", str(wrong))
    assert code == 1 and "is not the file of omdb:4x-srzoo-test-gdrive" in err
    assert "size mismatch" in err and not target.exists()
    assert not any((srzoo_env / ".incomplete").glob("*"))

    right = shared_dir / "models" / ANIME_PTH[0]
    code, out, err = run(capsys, "fetch", "omdb:4x-srzoo-test-gdrive", "--from", str(right))
    assert code == 0 and out.strip() == str(target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == ANIME_PTH[2]
    assert srzoo.hub.api.is_cached(srzoo.get_model("omdb:4x-srzoo-test-gdrive"))
    # the cache commands know whose file it is and re-hash it against the record
    code, out, _ = run(capsys, "cache", "ls")
    assert code == 0 and any(ln.split()[0] == "omdb:4x-srzoo-test-gdrive" for ln in out.splitlines())
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 0 and f"ok      {target}" in out and "UNKNOWN" not in out
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    code, out, _ = run(capsys, "cache", "verify", "omdb:4x-srzoo-test-gdrive")
    assert code == 1 and f"CORRUPT {target}: sha256 mismatch" in out


def test_from_file_same_size_other_bytes_refused(omdb, shared_dir, tmp_path, srzoo_env, capsys):
    bad = tmp_path / "looks-right.pth"
    data = bytearray((shared_dir / "models" / ANIME_PTH[0]).read_bytes())
    data[-5] ^= 0xFF
    bad.write_bytes(bytes(data))
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-test-gdrive", "--from", str(bad))
    assert code == 1 and "sha256 mismatch" in err
    assert [p for p in cache_files(srzoo_env) if p.parts[:2] == ("models", "omdb")] == []


# ---- formats --------------------------------------------------------------------------------
def test_safetensors_reader_matches_the_safetensors_package(shared_dir, tmp_path):
    """Our reader and writer against the independent implementation (safetensors.numpy)."""
    stnp = pytest.importorskip("safetensors.numpy")
    from srzoo.convert.torchload import load_state_dict

    sd = load_state_dict(shared_dir / "models" / ANIME_PTH[0])
    assert len(sd) == 53
    theirs = tmp_path / "theirs.safetensors"
    stnp.save_file({k: np.asarray(v) for k, v in sd.items()}, str(theirs))
    ours = st.load(theirs)
    assert list(sorted(ours)) == sorted(sd)
    assert all(np.array_equal(ours[k], sd[k]) for k in sd)
    mine = tmp_path / "mine.safetensors"
    half = {k: v.astype(np.float16) for k, v in sd.items()}
    st.save(mine, half, {"source": "test"})
    back = stnp.load_file(str(mine))
    assert all(back[k].dtype == np.float16 and np.array_equal(back[k], half[k]) for k in sd)
    assert st.load(mine, float32=False)["body.0.weight"].dtype == np.float16


def test_safetensors_malformed_refused(tmp_path):
    p = tmp_path / "bad.safetensors"
    st.save(p, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)})
    raw = bytearray(p.read_bytes())
    p.write_bytes(bytes(raw[:-4]))  # truncated data
    with pytest.raises(st.SafetensorsError, match="do not hold F32\\[2, 3\\]"):
        st.load(p)
    p.write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(st.SafetensorsError, match="does not fit the file"):
        st.load(p)


def test_safetensors_record_end_to_end(omdb_warm, shared_dir, models_env):
    omdb, srzoo_env = omdb_warm, models_env
    """A .safetensors written from the real tensors runs through omdb: and gives the same
    pixels as the .pth it came from (same weights, same converter)."""
    from srzoo.convert.torchload import load_state_dict

    sd = load_state_dict(shared_dir / "models" / ANIME_PTH[0])
    f = omdb.folder / "animevideov3-test.safetensors"
    st.save(f, sd)
    data = f.read_bytes()
    anime = omdb.records["4x-realesr-animevideo-v3"]
    omdb({"4x-srzoo-test-st": record(anime, "safetensors", len(data), hashlib.sha256(data).hexdigest(),
                                     ["https://example.org/animevideov3-test.safetensors"])})
    e = srzoo.get_model("omdb:4x-srzoo-test-st")
    assert e.source_format == "safetensors" and e.unrunnable is None
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png"))[40:64, 60:92]
    a = srzoo.upscale(img, "omdb:4x-srzoo-test-st", 4)
    b = srzoo.upscale(img, "omdb:4x-srzoo-test-anime", 4)
    assert a.shape == (96, 128, 3) and np.array_equal(a, b)
    rec = json.loads(next((srzoo_env / "derived").glob("omdb-4x-srzoo-test-st-*/record.json")).read_text())
    assert rec["converter"]["name"] == "safetensors-onnx" and rec["source"]["format"] == "safetensors"


def test_onnx_record_runs_directly_after_inspection(omdb_warm, shared_dir, models_env):
    omdb, srzoo_env = omdb_warm, models_env
    """A published ONNX runs as is; its output equals the converted .pth's."""
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "head.png"))[50:70, 50:80]
    ref = srzoo.upscale(img, "omdb:4x-srzoo-test-anime", 4)
    onnx_file = next((srzoo_env / "derived").glob("omdb-4x-srzoo-test-anime-x4-*/model.onnx"))
    shutil.copy(onnx_file, omdb.folder / "anime-published.onnx")
    data = onnx_file.read_bytes()
    anime = omdb.records["4x-realesr-animevideo-v3"]
    omdb({"4x-srzoo-test-onnx": record(anime, "onnx", len(data), hashlib.sha256(data).hexdigest(),
                                       ["https://example.org/anime-published.onnx"])})
    out = srzoo.upscale(img, "omdb:4x-srzoo-test-onnx", 4)
    assert np.array_equal(out, ref)
    assert not list((srzoo_env / "derived").glob("omdb-4x-srzoo-test-onnx*"))  # nothing converted


def test_onnx_that_crops_its_border_is_refused(omdb, srzoo_env):
    """waifu2x UpConv7 (real third-party ONNX): unpadded convolutions, 2x-28 output."""
    with pytest.raises(srzoo.ModelLoadError, match=r"returns 1x3x36x36, not 1x3x64x64"):
        srzoo.upscale(np.zeros((16, 16, 3), np.uint8), "omdb:2x-srzoo-test-waifu2x", 2)


# ---- the catalogue artifact -----------------------------------------------------------------
def _archive(recs: dict, rev: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(f"open-model-database-{rev}/{name}")
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        add("data/architectures.json", b"{}")
        add("README.md", b"not read")
        for rid, r in recs.items():
            add(f"data/models/{rid}.json", json.dumps(r, indent=4).encode())
        evil = tarfile.TarInfo(f"open-model-database-{rev}/data/models/link.json")
        evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(evil)
    return buf.getvalue()


@pytest.fixture
def upstream(tmp_path, shared_dir, srzoo_env, monkeypatch):
    """A local stand-in for GitHub: the head commit and two archives of the sample records."""
    folder = tmp_path / "upstream"
    folder.mkdir()
    a = shared_records(shared_dir)
    b = copy.deepcopy(a)
    del b["16x-PSNR"]
    b["4x-new-record"] = copy.deepcopy(a["4x-realesr-general-x4v3"])
    b["4x-ESRGAN"]["resources"][0]["sha256"] = "f" * 64
    b["2x-Ani4K"]["description"] = "edited"
    (folder / REV_A).write_bytes(_archive(a, REV_A))
    (folder / REV_B).write_bytes(_archive(b, REV_B))
    (folder / "main").write_text(REV_B + "\n")
    server = MirrorServer([folder]).start()
    monkeypatch.setenv("SRZOO_CATALOG_UPSTREAM", server.url)
    yield server
    server.stop()


def test_catalog_update_moves_to_newest_and_prints_changes(upstream, srzoo_env, capsys):
    code, out, _ = run(capsys, "catalog", "update", "--revision", REV_A)
    assert code == 0 and f"(none) -> {REV_A[:12]}" in out and "14 added" in out
    code, out, _ = run(capsys, "catalog", "update")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"OpenModelDB catalogue: {REV_A[:12]} -> {REV_B[:12]}"
    assert "+ omdb:4x-new-record" in lines and "- omdb:16x-PSNR" in lines
    assert f"~ omdb:4x-ESRGAN pth: sha256 545805ce2d86 -> {'f' * 12}" in lines
    assert lines[-1] == "1 added, 1 removed, 1 file hash(es) changed, 1 other record(s) edited"
    assert srzoo.get_model("omdb:4x-ESRGAN").sha256 == "f" * 64
    pin = json.loads((srzoo_env / "catalog" / "openmodeldb.pin.json").read_text())
    built = (srzoo_env / "catalog" / f"openmodeldb-{REV_B[:12]}.json").read_bytes()
    assert pin == {"revision": REV_B, "size": len(built), "sha256": hashlib.sha256(built).hexdigest()}
    # deterministic: the same revision builds the same bytes
    assert store.build_from_archive((upstream.roots[0] / REV_B).read_bytes(), REV_B) == built
    code, out, _ = run(capsys, "catalog", "update")
    assert code == 0 and "0 added, 0 removed" in out
    code, out, _ = run(capsys, "catalog", "show")
    assert f"revision:   {REV_B}" in out and "records:    14;" in out


def test_catalog_used_offline_from_cache_and_re_verified(upstream, srzoo_env, monkeypatch, capsys):
    assert run(capsys, "catalog", "update", "--revision", REV_A)[0] == 0
    n = len(upstream.log)
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    assert srzoo.get_model("omdb:4x-realesrgan-x4plus").scale == 4
    code, _, err = run(capsys, "catalog", "update")
    assert code == 1 and "SRZOO_OFFLINE=1" in err
    assert len(upstream.log) == n  # nothing asked upstream
    cached = srzoo_env / "catalog" / f"openmodeldb-{REV_A[:12]}.json"
    data = bytearray(cached.read_bytes())
    data[100] ^= 0x01
    cached.write_bytes(bytes(data))
    with pytest.raises(srzoo.SrzooError, match="changed after it was verified .*sha256 mismatch"):
        srzoo.get_model("omdb:4x-realesrgan-x4plus")  # never used: moved aside, and offline no rebuild
    assert not cached.exists()


def test_pinned_catalogue_fetched_from_mirror_or_built_and_checked(upstream, shared_dir, srzoo_env,
                                                                    folder_mirror, monkeypatch):
    """A pin names the built file's size and sha256: a mirror copy or an upstream build that
    does not match it is refused; one that does is cached."""
    built = store.build_from_archive((upstream.roots[0] / REV_A).read_bytes(), REV_A)
    pin = store.Pin(REV_A, len(built), hashlib.sha256(built).hexdigest())
    (folder_mirror / pin.artifact.file).write_bytes(built)
    assert store.load(pin).revision == REV_A
    assert (srzoo_env / "catalog" / pin.artifact.file).read_bytes() == built
    # no mirror copy: built from the upstream archive at the pinned revision, then checked
    shutil.rmtree(srzoo_env / "catalog")
    (folder_mirror / pin.artifact.file).unlink()
    assert len(store.load(pin).records) == 14
    shutil.rmtree(srzoo_env / "catalog")
    wrong = store.Pin(REV_A, len(built), "0" * 64)
    with pytest.raises(srzoo.ChecksumError, match="not used"):
        store.load(wrong)
    assert not (srzoo_env / "catalog").exists() or not any((srzoo_env / "catalog").iterdir())


def test_shipped_pin_is_well_formed():
    pin = store.shipped_pin()
    assert len(pin.revision) == 40 and len(pin.sha256) == 64 and pin.size > 100_000
    assert pin.artifact.file == f"openmodeldb-{pin.revision[:12]}.json"


# ---- SPAN -----------------------------------------------------------------------------------
def _spandrel_span():
    """spandrel's SPAN module, the implementation the community loads these files with,
    read from the installed package (spandrel's __init__ needs torchvision, so the one
    file is executed on its own: its helper decorator is a no-op here and its `.cuda()`
    calls are dropped for a CPU-only torch)."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("spandrel")
    if spec is None or spec.origin is None:
        pytest.skip("spandrel is not installed (pip install --no-deps spandrel)")
    path = Path(spec.origin).parent / "architectures" / "SPAN" / "__arch" / "span.py"
    src = re.sub(r"^from \S*util import store_hyperparameters$", "store_hyperparameters = lambda: (lambda c: c)",
                 path.read_text(), flags=re.M).replace(".cuda()", "")
    ns: dict = {"__name__": "spandrel_span_reference"}
    exec(compile(src, str(path), "exec"), ns)
    return ns["SPAN"]


def test_span_record_matches_spandrel(omdb, shared_dir, srzoo_env):
    """A SPAN .pth (random weights, saved by torch) through omdb: against spandrel's SPAN."""
    torch = pytest.importorskip("torch")
    SPAN = _spandrel_span()
    torch.manual_seed(0)
    net = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2).eval()
    with torch.no_grad():  # keep the output inside [0, 1] so the comparison is not all clipping
        net.upsampler[0].weight.mul_(0.002)
        net.upsampler[0].bias.fill_(0.5)
    f = omdb.folder / "2x-span-test.pth"
    torch.save(net.state_dict(), f)  # its eval_conv tensors are stale: srzoo merges sk + conv itself
    data = f.read_bytes()
    omdb({"2x-srzoo-test-span": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                       hashlib.sha256(data).hexdigest(), ["https://example.org/2x-span-test.pth"],
                                       scale=2, size=["16nf"])})
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:104, 40:72]
    out = srzoo.upscale(img, "omdb:2x-srzoo-test-span", 2)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.05 < ref.min() and ref.max() < 0.95 and ref.std() > 0.01  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (48, 64, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    rec = json.loads(next((srzoo_env / "derived").glob("omdb-2x-srzoo-test-span-x2-*/record.json")).read_text())
    assert rec["info"]["arch"] == "span" and rec["info"]["features"] == 16


# ---- RealPLKSR (DySample) ---------------------------------------------------------------------
def test_realplksr_dysample_record_matches_spandrel(omdb, shared_dir, srzoo_env):
    """A RealPLKSR-DySample .pth (random weights, saved by torch) through omdb: listed as
    runnable, converted, upscaled, and equal to spandrel's RealPLKSR to one grey level."""
    torch = pytest.importorskip("torch")
    import spandrel_src

    dys = spandrel_src.load("__arch_helpers/dysample.py")["DySample"]
    RealPLKSR = spandrel_src.load("PLKSR/__arch/RealPLKSR.py", DySample=dys)["RealPLKSR"]
    torch.manual_seed(0)
    net = RealPLKSR(dim=16, n_blocks=2, upscaling_factor=2, kernel_size=7, dysample=True, layer_norm=True).eval()
    with torch.no_grad():  # offsets of about a pixel; the end conv averages each colour's copies into [0.1, 0.9]
        net.to_img.scope.weight.normal_(0, 0.3)
        net.to_img.offset.weight.normal_(0, 0.3)
        net.feats[-1].weight.mul_(2)
        end = torch.zeros_like(net.to_img.end_conv.weight)
        for c in range(3):
            end[c, 4 * c:4 * c + 4] = 0.2
        net.to_img.end_conv.weight.copy_(end + 0.01 * torch.randn_like(end))
        net.to_img.end_conv.bias.fill_(0.1)
    f = omdb.folder / "2x-rplksr-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-rplksr": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                         hashlib.sha256(data).hexdigest(),
                                         ["https://example.org/2x-rplksr-test.pth"],
                                         scale=2, size=None, architecture="realplksr-dysample")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-rplksr"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    out = srzoo.upscale(img, "omdb:2x-srzoo-test-rplksr", 2)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.02 < ref.min() and ref.max() < 0.98 and ref.std() > 0.05  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    rec = json.loads(next((srzoo_env / "derived").glob("omdb-2x-srzoo-test-rplksr-x2-*/record.json")).read_text())
    assert rec["info"]["arch"] == "realplksr" and rec["info"]["upsampler"] == "dysample"


def run_json_list() -> str:
    import contextlib

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["list", "--catalog", "openmodeldb", "--json"]) == 0
    return buf.getvalue()


# ---- OmniSR ----------------------------------------------------------------------------------
def test_omnisr_record_matches_spandrel(omdb, shared_dir, srzoo_env):
    """An OmniSR .pth (random weights, saved by torch) through omdb: listed as runnable,
    converted, upscaled (an odd-sized image, padded to the window inside the graph), and
    equal to spandrel's OmniSR to one grey level."""
    torch = pytest.importorskip("torch")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "convert"))
    from test_arch_omnisr import omnisr_class, randomise

    net = randomise(omnisr_class()(num_feat=16, block_num=1, window_size=8, res_num=1, up_scale=2), seed=3)
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
    with torch.no_grad():  # the last conv scaled so the output is an unclipped image around 0.5
        net.up[0].bias.zero_()
        net.up[0].weight.mul_(0.12 / float(net(x).std()))
        net.up[0].bias.fill_(0.5)
        ref = net(x)[0].numpy()
    f = omdb.folder / "2x-omnisr-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-omnisr": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                         hashlib.sha256(data).hexdigest(),
                                         ["https://example.org/2x-omnisr-test.pth"],
                                         scale=2, size=["16nf", "w8", "1nr"], architecture="omnisr")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-omnisr"]["runnable"] == "yes"
    out = srzoo.upscale(img, "omdb:2x-srzoo-test-omnisr", 2)
    assert 0.02 < ref.min() and ref.max() < 0.98 and ref.std() > 0.05  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    rec = json.loads(next((srzoo_env / "derived").glob("omdb-2x-srzoo-test-omnisr-x2-*/record.json")).read_text())
    assert rec["info"]["arch"] == "omnisr" and rec["info"]["window"] == 8


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_swinir_record_matches_spandrel_on_each_engine(omdb, shared_dir, srzoo_env, backend):
    """A SwinIR .pth (random weights, saved by torch; window 8 on a 23x31 crop, so the graph
    pads and crops) through omdb: listed as runnable, converted, upscaled on each engine
    and equal to spandrel's SwinIR to one grey level. cv2.dnn imports it on OpenCV 5.x; where
    its importer cannot, the request is refused in one line that names the other engines."""
    torch = pytest.importorskip("torch")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    import swin_refs as sw

    net = sw.randomise(sw.swinir_class()(img_size=32, embed_dim=24, depths=[2, 2], num_heads=[2, 3], window_size=8,
                                         mlp_ratio=2.0, upscale=2, upsampler="pixelshuffle"), 3)
    with torch.no_grad():  # an output in [0.1, 0.9]: a small last conv around mid-grey
        net.conv_last.weight.mul_(0.05)
        net.conv_last.bias.fill_(0.0)
    f = omdb.folder / "2x-swinir-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-swinir": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                         hashlib.sha256(data).hexdigest(),
                                         ["https://example.org/2x-swinir-test.pth"],
                                         scale=2, size=["small", "s32w8", "24dim"], architecture="swinir")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-swinir"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    try:
        out = srzoo.upscale(img, "omdb:2x-srzoo-test-swinir", 2, backend=backend)
    except srzoo.SrzooError as e:
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        msg = str(e)
        assert "\n" not in msg and "onnxruntime:cpu" in msg and "openvino:cpu" in msg
        return
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.02 < ref.min() and ref.max() < 0.98 and ref.std() > 0.05  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_drct_record_matches_spandrel_on_each_engine(omdb, shared_dir, srzoo_env, backend):
    """A DRCT .pth (random weights; window 4, shifted) through omdb on each engine: equal to
    spandrel's DRCT on the reflect-padded image, cropped, to one grey level (cv2.dnn 4.x:
    one line naming the other engines)."""
    torch = pytest.importorskip("torch")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    import swin_refs as sw

    net = sw.randomise(sw.drct_class()(img_size=16, embed_dim=24, depths=[6], num_heads=[3], window_size=4,
                                       mlp_ratio=2.0, gc=8, upscale=2, upsampler="pixelshuffle"), 5)
    with torch.no_grad():  # an output in [0.1, 0.9]: a small last conv around mid-grey
        net.conv_last.weight.mul_(0.1)
        net.conv_last.bias.fill_(0.0)
    f = omdb.folder / "2x-drct-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-drct": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                       hashlib.sha256(data).hexdigest(), ["https://example.org/2x-drct-test.pth"],
                                       scale=2, size=None, architecture="drct")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-drct"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31
    try:
        out = srzoo.upscale(img, "omdb:2x-srzoo-test-drct", 2, backend=backend)
    except srzoo.SrzooError as e:
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        assert "\n" not in str(e) and "onnxruntime:cpu" in str(e)
        return
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(torch.nn.functional.pad(x, (0, 1, 0, 1), "reflect"))[0, :, :46, :62].numpy()
    assert 0.02 < ref.min() and ref.max() < 0.98 and ref.std() > 0.05
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_hat_record_matches_spandrel_on_each_engine(omdb, shared_dir, srzoo_env, backend):
    """A HAT .pth (random weights; window 8, overlap 0.5, the records' HAT-S tag) through omdb on
    each engine: equal to spandrel's HAT (which pads 23x31 to 24x32 itself) to one grey level
    (cv2.dnn 4.x: one line naming the other engines)."""
    torch = pytest.importorskip("torch")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    import swin_refs as sw

    net = sw.randomise(sw.hat_class()(img_size=32, embed_dim=24, depths=[2, 2], num_heads=[2, 3], window_size=8,
                                      compress_ratio=6, squeeze_factor=6, mlp_ratio=2.0, upscale=2), 4)
    with torch.no_grad():  # an output in [0.1, 0.9]: a small last conv around mid-grey
        net.conv_last.weight.mul_(0.05)
        net.conv_last.bias.fill_(0.0)
    f = omdb.folder / "2x-hat-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-hat": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                      hashlib.sha256(data).hexdigest(), ["https://example.org/2x-hat-test.pth"],
                                      scale=2, size=["HAT-S", "64nf", "24dim"], architecture="hat")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-hat"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    try:
        out = srzoo.upscale(img, "omdb:2x-srzoo-test-hat", 2, backend=backend)
    except srzoo.SrzooError as e:
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        assert "\n" not in str(e) and "onnxruntime:cpu" in str(e) and "openvino:cpu" in str(e)
        return
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.02 < ref.min() and ref.max() < 0.98 and ref.std() > 0.05  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_atd_record_matches_spandrel_on_each_engine(omdb, shared_dir, srzoo_env, backend):
    """An ATD .pth (random weights; x4 pixelshuffle as the pinned records, window 8, the
    records' <dim>dim / <window>w / <category>cat tags) through omdb on each engine: equal to
    spandrel's ATD (which mirrors 23x31 to 24x32 itself: 768 tokens, three category groups;
    its one torch.sort made stable, tests/swin_refs.py) to one grey level (cv2.dnn 4.x: one
    line naming the other engines)."""
    torch = pytest.importorskip("torch")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    import swin_refs as sw

    net = sw.randomise(sw.atd_class()(img_size=32, embed_dim=24, depths=[2, 2], num_heads=[2, 3], window_size=8,
                                      category_size=256, num_tokens=16, reducted_dim=4, mlp_ratio=2.0, upscale=4,
                                      upsampler="pixelshuffle"), 4)
    with torch.no_grad():  # an output in [0.1, 0.9]: a small last conv around mid-grey
        net.conv_last.weight.mul_(0.05)
        net.conv_last.bias.fill_(0.0)
    f = omdb.folder / "4x-atd-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"4x-srzoo-test-atd": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                      hashlib.sha256(data).hexdigest(), ["https://example.org/4x-atd-test.pth"],
                                      scale=4, size=["24dim", "8w", "256cat"], architecture="atd")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:4x-srzoo-test-atd"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    try:
        out = srzoo.upscale(img, "omdb:4x-srzoo-test-atd", 4, backend=backend)
    except srzoo.SrzooError as e:
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        assert "\n" not in str(e) and "onnxruntime:cpu" in str(e) and "openvino:cpu" in str(e)
        return
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.02 < ref.min() and ref.max() < 0.98 and ref.std() > 0.05  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (92, 124, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_swin2sr_record_matches_spandrel_on_each_engine(omdb, shared_dir, srzoo_env, backend):
    """A Swin2SR .pth (random weights; window 8, shifted, the compressed-input pixelshuffle_aux
    upsampler with its bicubic branch; spandrel's size tags) through omdb on each engine: equal
    to spandrel's Swin2SR on a 23x31 crop (padded inside the graph) to one grey level (cv2.dnn
    4.x: one line naming the other engines). No Swin2SR record is in the pinned catalogue:
    this one is made up."""
    torch = pytest.importorskip("torch")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    import swin_refs as sw

    net = sw.randomise(sw.swin2sr_class()(img_size=32, embed_dim=24, depths=[2, 2], num_heads=[2, 3], window_size=8,
                                          mlp_ratio=2.0, upscale=2, upsampler="pixelshuffle_aux"), 6)
    with torch.no_grad():  # an output in [0.1, 0.9]: a small last conv around mid-grey
        net.conv_last.weight.mul_(0.12)
        net.conv_last.bias.fill_(0.0)
    f = omdb.folder / "2x-swin2sr-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-swin2sr": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                          hashlib.sha256(data).hexdigest(), ["https://example.org/2x-swin2sr-test.pth"],
                                          scale=2, size=["small", "s32w8", "24dim", "1conv"], architecture="swin2sr")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-swin2sr"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    try:
        out = srzoo.upscale(img, "omdb:2x-srzoo-test-swin2sr", 2, backend=backend)
    except srzoo.SrzooError as e:
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        assert "\n" not in str(e) and "onnxruntime:cpu" in str(e) and "openvino:cpu" in str(e)
        return
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.02 < ref.min() and ref.max() < 0.98 and ref.std() > 0.05  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_srformer_record_matches_spandrel_on_each_engine(omdb, shared_dir, srzoo_env, backend):
    """An SRFormer .pth (random weights, saved by torch; window 8, shifted, on a 23x31 crop, so
    the graph pads and crops) through omdb with a pinned record's size tags: listed as runnable,
    converted, upscaled on each engine and equal to spandrel-extra-arches' SRFormer to one grey
    level (cv2.dnn 4.x: one line naming the other engines)."""
    torch = pytest.importorskip("torch")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    import swin_refs as sw

    net = sw.randomise(sw.srformer_class()(img_size=32, embed_dim=24, depths=[2, 2], num_heads=[2, 3],
                                           window_size=8, mlp_ratio=2.0, upscale=2, upsampler="pixelshuffle"), 3)
    with torch.no_grad():  # an output in [0.1, 0.9]: a small last conv around mid-grey
        net.conv_last.weight.mul_(0.15)
        net.conv_last.bias.fill_(0.0)
    f = omdb.folder / "2x-srformer-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-srformer": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                           hashlib.sha256(data).hexdigest(),
                                           ["https://example.org/2x-srformer-test.pth"], scale=2,
                                           size=["base model", "img_size: 48", "window_size: 22"],
                                           architecture="srformer")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-srformer"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    try:
        out = srzoo.upscale(img, "omdb:2x-srzoo-test-srformer", 2, backend=backend)
    except srzoo.SrzooError as e:
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        msg = str(e)
        assert "\n" not in msg and "onnxruntime:cpu" in msg and "openvino:cpu" in msg
        return
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.02 < ref.min() and ref.max() < 0.98 and ref.std() > 0.05  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    rec = json.loads(next((srzoo_env / "derived").glob("omdb-2x-srzoo-test-srformer-x2-*/record.json")).read_text())
    assert rec["info"]["arch"] == "srformer" and rec["info"]["window"] == 8 and rec["info"]["shift"] == 4
