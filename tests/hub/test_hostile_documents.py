"""Hostile manifests, catalogue records, autotune.json and archives: one error line
naming the file (ManifestError / CatalogError / ArchiveError), never a RecursionError,
never a read of /dev/zero or a wait on a FIFO."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_files as hf  # noqa: E402

from srzoo.errors import ManifestError  # noqa: E402
from srzoo.hub import archive  # noqa: E402
from srzoo.hub.catalog.store import CatalogError, parse_catalogue  # noqa: E402
from srzoo.hub.manifest import parse_manifest  # noqa: E402
from srzoo.runtime import autotune  # noqa: E402

GOOD = ('schema = 1\n\n[[model]]\nname = "x"\nscale = 2\nformat = "onnx"\nlicense = "MIT"\n'
        'file = "x.onnx"\nsize = 10\nsha256 = "' + "0" * 64 + '"\nurls = ["https://example.invalid/x.onnx"]\n')


def manifest_refused(path: Path, *words: str) -> str:
    return hf.refusal(parse_manifest, path, ManifestError, *words)


def test_good_manifest_parses(tmp_path):
    (tmp_path / "m.toml").write_text(GOOD)
    models, _ = parse_manifest(tmp_path / "m.toml")
    assert [(m.name, m.scale) for m in models] == [("x", 2)]


def test_manifest_deep_nesting(tmp_path):
    p = tmp_path / "deep.toml"
    p.write_text(GOOD + "tags = " + "[" * 5000 + "]" * 5000 + "\n")
    manifest_refused(p, "nested too deeply")
    p.write_text(GOOD + "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n")
    manifest_refused(p, "nested too deeply")


def test_manifest_devices_and_fifos(tmp_path):
    manifest_refused(Path("/dev/zero"), "not a regular file")
    os.mkfifo(tmp_path / "fifo.toml")
    manifest_refused(tmp_path / "fifo.toml", "not a regular file")  # returns at once, no writer needed


def test_manifest_not_utf8_and_huge(tmp_path):
    p = tmp_path / "bin.toml"
    p.write_bytes(GOOD.encode() + b'notes = "\xff\xfe"\n')
    manifest_refused(p, "not UTF-8")
    with open(p, "wb") as f:
        f.truncate(17 << 20)  # sparse: 17 MiB of zeros
    manifest_refused(p, "more than 16 MiB")


def test_catalogue_deep_record():
    deep = b'{"schema": 1, "models": {"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    with pytest.raises(CatalogError, match=r"^cat\.json: the catalogue file is nested 50002 levels deep"):
        parse_catalogue(deep, "cat.json")


def test_catalogue_archive_deep_record(tmp_path):
    """A record inside the catalogue's tar.gz nested 50000 deep."""
    from srzoo.hub.catalog import store

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = b'{"scale": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        info = tarfile.TarInfo("openmodeldb-main/data/models/4x-deep.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with pytest.raises(CatalogError, match="nested 50001 levels deep"):
        store.build_from_archive(buf.getvalue(), "0" * 40, "test.tar.gz")


def test_autotune_json_deep_is_forgotten(tmp_path, monkeypatch):
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path))
    (tmp_path / autotune.FILE).write_text("[" * 100_000 + "]" * 100_000)
    assert autotune._read() == {}
    (tmp_path / autotune.FILE).write_text('{"k": {"backend": "cpu"}}')
    assert autotune._read() == {"k": {"backend": "cpu"}}


# ------------------------------------------------------------------ archives
def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


PAYLOAD = bytes(range(256)) * 64


@pytest.mark.parametrize("damage", ["encrypted", "method 99", "understated size", "corrupt deflate",
                                    "truncated", "first byte deleted", "compressed size past the end"])
def test_damaged_zip_member(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path / "cache"))
    data = _zip({"model.pth": PAYLOAD})
    if damage == "encrypted":
        data = hf.patch_zip(data, "model.pth", flags=1)
    elif damage == "method 99":
        data = hf.patch_zip(data, "model.pth", method=99)
    elif damage == "understated size":
        data = hf.patch_zip(data, "model.pth", size=100)
    elif damage == "corrupt deflate":
        b = bytearray(data)
        b[40:60] = b"\xff" * 20
        data = bytes(b)
    elif damage == "compressed size past the end":
        data = hf.patch_zip(data, "model.pth", compressed=1 << 31)
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:  # found by test_fuzz_archives: offsets now point before the file, seek() -> EINVAL
        data = data[1:]
    p = tmp_path / "a.zip"
    p.write_bytes(data)
    with pytest.raises(archive.ArchiveError) as e:
        archive.extract_member(p, "model.pth", "ab" * 32)
    assert str(p) in str(e.value) and "\n" not in str(e.value)
    assert not list((tmp_path / "cache").rglob("model.pth"))  # nothing half-written


def test_truncated_tar_gz(tmp_path, monkeypatch):
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path / "cache"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("model.pth")
        info.size = len(PAYLOAD) * 16
        t.addfile(info, io.BytesIO(PAYLOAD * 16))
    p = tmp_path / "a.tar.gz"
    p.write_bytes(buf.getvalue()[:-200])
    with pytest.raises(archive.ArchiveError) as e:
        archive.extract_member(p, "model.pth", "cd" * 32)
    assert str(p) in str(e.value)
    assert not list((tmp_path / "cache").rglob("model.pth"))


def test_tar_gz_with_a_bad_crc(tmp_path, monkeypatch):
    """Found by test_fuzz_archives: one byte of the deflate stream set to 0, and gzip's
    BadGzipFile "CRC check failed" escaped as a traceback."""
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path / "cache"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = bytes(range(256)) * 16
        info = tarfile.TarInfo("model.pth")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    data = bytearray(buf.getvalue())
    data[58] = 0
    p = tmp_path / "a.tar.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(archive.ArchiveError, match="CRC check failed"):
        archive.extract_member(p, "model.pth", "12" * 32)
    assert not list((tmp_path / "cache").rglob("model.pth"))


def test_catalogue_record_with_resources_not_a_list():
    """Found by test_fuzz_catalogue_records: {"resources": true} raised TypeError."""
    doc = json.dumps({"schema": 1, "models": {"x": {"scale": 2, "resources": True}}}).encode()
    with pytest.raises(ManifestError, match=r"record 'x': 'resources' must be a list, got bool"):
        parse_catalogue(doc, "cat.json")
