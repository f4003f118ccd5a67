"""`srzoo catalog load FILE`: the OpenModelDB catalogue offline, from a real repository
archive (.tar.gz / .zip built here from the 14 real records in ../shared/openmodeldb, laid out
as GitHub and `git archive` lay them out) or from a catalogue .json srzoo wrote."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from srzoo.cli import main
from srzoo.hub.catalog import store

REV = "c0ffee" + "1" * 34
TOP = f"open-model-database-{REV}"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def records(shared: Path) -> dict[str, bytes]:
    """archive member name -> bytes: every record, the architectures, and files that are skipped."""
    src = shared / "openmodeldb"
    out = {f"{TOP}/README.md": b"# not read\n", f"{TOP}/src/app.ts": b"export {}\n"}
    for p in sorted(src.glob("*.json")):
        sub = "data" if p.stem == "architectures" else "data/models"
        out[f"{TOP}/{sub}/{p.name}"] = p.read_bytes()
    return out


def tar_gz(path: Path, members: dict[str, bytes], comment: str | None = REV) -> Path:
    """A tar.gz as `git archive` writes one (the commit in the pax global header)."""
    kw = {"format": tarfile.PAX_FORMAT, "pax_headers": {"comment": comment}} if comment else {}
    with tarfile.open(path, "w:gz", **kw) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def zip_file(path: Path, members: dict[str, bytes], top: str = TOP) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name.replace(TOP, top, 1), data)
    return path


@pytest.fixture
def offline(srzoo_env, monkeypatch):
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    return srzoo_env


def test_offline_error_says_how_to_load_a_file(offline, capsys):
    for argv in (["catalog", "show"], ["list", "--catalog", "openmodeldb"]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err
        assert "SRZOO_OFFLINE=1 forbids" in err
        assert "or load a catalogue file with `srzoo catalog load FILE`" in err


def test_load_tar_gz_then_everything_works_offline(offline, shared_dir, tmp_path, capsys):
    archive = tar_gz(tmp_path / "omdb.tar.gz", records(shared_dir))
    code, out, err = run(capsys, "catalog", "load", str(archive))
    assert code == 0, err
    assert "(none) -> c0ffee111111" in out and "14 added" in out
    assert f"srzoo has no pin for {REV[:12]}" in out
    # stored like a fetched catalogue: the file in the cache, its pin, re-hashed on load
    pin = store.current_pin()
    path = offline / "catalog" / f"openmodeldb-{REV[:12]}.json"
    assert pin.revision == REV and path.is_file()
    assert (pin.size, pin.sha256) == (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    doc = json.loads(path.read_bytes())
    assert sorted(doc["models"]) == sorted(p.stem for p in (shared_dir / "openmodeldb").glob("*.json")
                                           if p.stem != "architectures")
    assert doc["models"]["4x-realesrgan-x4plus"] == json.loads(
        (shared_dir / "openmodeldb" / "4x-realesrgan-x4plus.json").read_text())
    code, out, err = run(capsys, "catalog", "show")
    assert code == 0 and f"revision:   {REV}" in out and "records:    14;" in out
    code, out, err = run(capsys, "list", "--catalog", "openmodeldb", "--arch", "esrgan", "--scale", "4", "--json")
    assert code == 0
    assert {r["name"] for r in json.loads(out)} == {"omdb:4x-ESRGAN", "omdb:4x-NomosWebPhoto-esrgan",
                                                    "omdb:4x-realesrgan-x4plus",
                                                    "omdb:4x-realesrgan-x4plus-anime-6b"}
    # the same file again: nothing changes
    code, out, _ = run(capsys, "catalog", "load", str(archive))
    assert code == 0 and "0 added, 0 removed" in out


def test_zip_and_json_give_the_same_bytes(offline, shared_dir, tmp_path, capsys):
    members = records(shared_dir)
    from_tar = store.read_file(tar_gz(tmp_path / "a.tar.gz", members))
    from_zip = store.read_file(zip_file(tmp_path / "a.zip", members))  # the commit from the top folder
    assert from_tar == from_zip and from_tar[1] == REV
    data, _ = from_tar
    (tmp_path / "c.json").write_bytes(data)
    code, out, err = run(capsys, "catalog", "load", str(tmp_path / "c.json"))
    assert code == 0, err
    assert hashlib.sha256((offline / "catalog" / f"openmodeldb-{REV[:12]}.json").read_bytes()).hexdigest() \
        == hashlib.sha256(data).hexdigest()


def test_revision_when_the_archive_does_not_say(offline, shared_dir, tmp_path, capsys):
    members = {k.replace(TOP, "omdb-main"): v for k, v in records(shared_dir).items()}
    archive = tar_gz(tmp_path / "main.tar.gz", members, comment=None)
    code, _, err = run(capsys, "catalog", "load", str(archive))
    assert code == 1 and err.count("\n") == 1 and str(archive) in err and "--revision COMMIT" in err
    code, out, err = run(capsys, "catalog", "load", str(archive), "--revision", REV)
    assert code == 0 and store.current_pin().revision == REV
    code, _, err = run(capsys, "catalog", "load", str(tar_gz(tmp_path / "x.tar.gz", records(shared_dir))),
                       "--revision", "d" * 40)
    assert code == 1 and f"holds commit {REV}, not {'d' * 40}" in err


def test_an_archive_not_matching_the_shipped_pin_is_refused(offline, shared_dir, tmp_path, capsys):
    """An archive claiming the shipped revision but holding other records: its built catalogue
    does not match the shipped pin (size, sha256): refused, nothing stored."""
    shipped = store.shipped_pin().revision
    members = {k.replace(TOP, f"open-model-database-{shipped}"): v for k, v in records(shared_dir).items()}
    archive = zip_file(tmp_path / "fake.zip", members, top=f"open-model-database-{shipped}")
    code, out, err = run(capsys, "catalog", "load", str(archive))
    assert code == 1 and err.count("\n") == 1 and str(archive) in err
    assert f"the pin (shipped) says {store.shipped_pin().size} bytes" in err and "not loaded" in err
    assert not (offline / "catalog").exists() or not list((offline / "catalog").iterdir())


def test_edited_json_and_hostile_files_are_refused(offline, shared_dir, tmp_path, capsys):
    """Each: one line naming the file, exit 1, the cache untouched. An edited copy of a loaded
    catalogue fails the pin of its revision; a re-formatted one is not srzoo's bytes."""
    archive = tar_gz(tmp_path / "a.tar.gz", records(shared_dir))
    data, _ = store.read_file(archive)
    assert run(capsys, "catalog", "load", str(archive))[0] == 0
    stored = offline / "catalog" / f"openmodeldb-{REV[:12]}.json"
    before = sorted((p.name, p.read_bytes()) for p in (offline / "catalog").iterdir())
    edited = tmp_path / "edited.json"
    edited.write_bytes(data.replace(b'"BSD-3-Clause"', b'"MIT"', 1))
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(json.loads(data), indent=1))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00" * 100)
    empty_zip = zip_file(tmp_path / "empty.zip", {f"{TOP}/README.md": b"x"})
    big = {f"{TOP}/data/models/4x-big.json": b" " * (store.MAX_MEMBER + 1)}
    big_zip = zip_file(tmp_path / "big.zip", big)
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:3000])
    cases = [(edited, "not loaded"), (pretty, "edited?"), (garbage, "neither an OpenModelDB archive"),
             (empty_zip, "no data/models/*.json"), (big_zip, f"more than {store.MAX_MEMBER}"),
             (truncated, "not a readable tar.gz"), (tmp_path / "missing.zip", "cannot read")]
    for path, words in cases:
        code, out, err = run(capsys, "catalog", "load", str(path))
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, (path, err)
        assert str(path) in err and words in err, (path, err)
    assert sorted((p.name, p.read_bytes()) for p in (offline / "catalog").iterdir()) == before
    assert stored.read_bytes() == data


def test_show_and_load_print_every_line(offline, shared_dir, tmp_path, capsys):
    """`srzoo catalog load` prints the change lines, then how it was loaded; `srzoo catalog show`
    prints the source, the revision, where the pin lives, the file's size and sha256, and the
    counts (what `srzoo list --catalog openmodeldb` says runs and downloads)."""
    members = records(shared_dir)
    # one record srzoo cannot run (no converter for ditn) whose file a script could download
    x4plus = json.loads((shared_dir / "openmodeldb" / "4x-realesrgan-x4plus.json").read_text())
    members[f"{TOP}/data/models/4x-srzoo-ditn.json"] = json.dumps(dict(x4plus, architecture="ditn")).encode()
    archive = tar_gz(tmp_path / "omdb.tar.gz", members)
    code, out, err = run(capsys, "catalog", "load", str(archive))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"OpenModelDB catalogue: (none) -> {REV[:12]}"
    assert lines[-2] == "15 added, 0 removed, 0 file hash(es) changed, 0 other record(s) edited"
    assert lines[1:-2] == sorted(lines[1:-2]) and len(lines) == 18
    assert all(ln.startswith("+ omdb:") for ln in lines[1:-2])
    assert lines[-1].startswith(f"loaded {archive}: ") and f"srzoo has no pin for {REV[:12]}" in lines[-1]

    code, out, err = run(capsys, "list", "--catalog", "openmodeldb", "--json")
    rows = json.loads(out)
    runs = [r for r in rows if r["runnable"] != "no"]
    scripted = [r for r in runs if r["downloadable"]]
    assert (len(rows), len(runs), len(scripted)) == (15, 14, 12)  # 2x-DAT-2: a Drive folder; 1x-BroadcastToStudio-SPAN: Mega
    path = offline / "catalog" / f"openmodeldb-{REV[:12]}.json"
    data = path.read_bytes()
    code, out, err = run(capsys, "catalog", "show")
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "catalogue:  openmodeldb (OpenModelDB/open-model-database)",
        f"revision:   {REV}",
        f"pin:        {offline / 'catalog' / 'openmodeldb.pin.json'}",
        f"file:       {path} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})",
        "records:    15; srzoo runs 14, 12 of them downloadable by a script"]
    assert run(capsys, "catalog")[1] == out  # show is the default action


def test_file_argument_errors_are_one_line(offline, capsys):
    for argv, line in ((["catalog", "show", "x.zip"], "a FILE goes with `srzoo catalog load FILE`, not with show"),
                       (["catalog", "update", "x.zip"], "a FILE goes with `srzoo catalog load FILE`, not with update"),
                       (["catalog", "load"], "srzoo catalog load FILE: name an OpenModelDB archive (.tar.gz, .zip) "
                                             "or a catalogue .json")):
        code, out, err = run(capsys, *argv)
        assert (code, out, err) == (1, "", f"srzoo: error: {line}\n")
