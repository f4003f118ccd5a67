"""The downloader against a real local HTTP server with injected faults."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

import srzoo
from srzoo.hub import cache
from suite import cache_files

ESPCN4 = "ESPCN_x4.pb"  # 100323 bytes


def shared_bytes(shared_dir: Path, name: str) -> bytes:
    return next(shared_dir.joinpath("models").rglob(name)).read_bytes()


def assert_verified(path: Path, shared_dir: Path) -> None:
    assert path.read_bytes() == shared_bytes(shared_dir, path.name)


def assert_nothing_unverified(cache_root: Path) -> None:
    assert cache_files(cache_root) == []


def test_fetch_downloads_verifies_and_reuses(srzoo_env, mirror, shared_dir):
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert path == srzoo_env / "models" / ESPCN4
    assert hashlib.sha256(path.read_bytes()).hexdigest() == srzoo.get_model("espcn", 4).sha256
    assert_verified(path, shared_dir)
    assert [h.status for h in mirror.gets(ESPCN4)] == [200]
    # cached: no second request
    assert srzoo.fetch("espcn", 4, quiet=True) == path
    assert len(mirror.gets(ESPCN4)) == 1
    assert not list((srzoo_env / ".incomplete").iterdir())


def test_dropped_connection_resumes_with_range(srzoo_env, mirror, shared_dir):
    mirror.fault(f"/{ESPCN4}", drop_after=30000)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert_verified(path, shared_dir)
    hits = mirror.gets(ESPCN4)
    assert [h.status for h in hits] == [200, 206]
    # resumed where the kept bytes end (at most one 16 KiB read is lost in the drop)
    start = int(hits[1].range[len("bytes="):-1])
    assert 30000 - 16384 <= start <= 30000


def test_server_ignoring_range_restarts_from_zero(srzoo_env, mirror, shared_dir):
    mirror.fault(f"/{ESPCN4}", drop_after=30000)
    mirror.fault(f"/{ESPCN4}", ignore_range=True)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert_verified(path, shared_dir)
    assert [h.status for h in mirror.gets(ESPCN4)] == [200, 200]


def test_500_then_success_is_retried(srzoo_env, mirror, shared_dir):
    mirror.fault(f"/{ESPCN4}", status=500)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert_verified(path, shared_dir)
    assert [h.status for h in mirror.gets(ESPCN4)] == [500, 200]


def test_persistent_500_gives_up_and_leaves_nothing(srzoo_env, mirror):
    mirror.fault(f"/{ESPCN4}", status=503, times=None)
    with pytest.raises(srzoo.DownloadError, match="HTTP 503.*gave up after 3 tries"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert len(mirror.gets(ESPCN4)) == 3  # SRZOO_RETRIES=2 in the fixture
    assert_nothing_unverified(srzoo_env)


def test_404_on_first_mirror_moves_on_without_retry(srzoo_env, mirror, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url}/first,{mirror.url}/second")
    mirror.fault("/first/*", status=404, times=None)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert_verified(path, shared_dir)
    assert [(h.path, h.status) for h in mirror.gets(ESPCN4)] == [
        (f"/first/{ESPCN4}", 404), (f"/second/{ESPCN4}", 200)]


def test_wrong_byte_is_rejected_naming_both_hashes(srzoo_env, mirror):
    mirror.fault(f"/{ESPCN4}", corrupt_at=1234, times=None)
    entry = srzoo.get_model("espcn", 4)
    with pytest.raises(srzoo.ChecksumError) as err:
        srzoo.fetch("espcn", 4, quiet=True)
    msg = str(err.value)  # the line: both hashes named, cut to 12 digits; the full ones in .failures
    assert f"expected {entry.sha256[:12]}..." in msg and entry.sha256 not in msg
    assert "sha256 mismatch" in msg and "git-blob-sha1 mismatch" in msg
    [(_, cause)] = err.value.failures
    assert f"expected {entry.sha256}" in cause
    assert_nothing_unverified(srzoo_env)
    assert not list((srzoo_env / ".incomplete").iterdir())  # bad bytes are not kept for resume


def test_wrong_byte_on_first_mirror_falls_back_to_second(srzoo_env, mirror, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url}/bad,{mirror.url}/good")
    mirror.fault(f"/bad/{ESPCN4}", corrupt_at=0, times=None)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert_verified(path, shared_dir)
    # the bad mirror was tried first (and whole), then the good one from byte 0
    hits = [(h.path.split("/")[1], h.status, h.range) for h in mirror.gets(ESPCN4)]
    assert hits[0] == ("bad", 200, None) and hits[-1] == ("good", 200, None)
    assert {h[0] for h in hits} == {"bad", "good"}


def test_slow_server_times_out_and_leaves_nothing(srzoo_env, mirror, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "0.3")
    monkeypatch.setenv("SRZOO_RETRIES", "1")
    mirror.fault(f"/{ESPCN4}", stall_after=40000, stall=1.5, times=None)
    with pytest.raises(srzoo.DownloadError, match="interrupted|Timeout"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert_nothing_unverified(srzoo_env)
    # what arrived is kept only as a resumable partial, outside the verified folders
    parts = list((srzoo_env / ".incomplete").glob("*.part"))  # (+ its .part.json source record)
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < 100323


def test_stall_once_then_resume(srzoo_env, mirror, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_TIMEOUT", "0.3")
    mirror.fault(f"/{ESPCN4}", stall_after=40000, stall=1.0)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert_verified(path, shared_dir)
    hits = mirror.gets(ESPCN4)
    assert hits[0].status == 200 and hits[-1].status == 206 and hits[-1].range.startswith("bytes=")


def test_interrupted_download_resumes_in_a_later_call(srzoo_env, mirror, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_RETRIES", "0")
    mirror.fault(f"/{ESPCN4}", drop_after=40000)
    with pytest.raises(srzoo.DownloadError):
        srzoo.fetch("espcn", 4, quiet=True)
    assert_nothing_unverified(srzoo_env)
    path = srzoo.fetch("espcn", 4, quiet=True)
    assert_verified(path, shared_dir)
    last = mirror.gets(ESPCN4)[-1]
    assert last.status == 206 and 40000 - 16384 <= int(last.range[6:-1]) <= 40000


def test_too_many_bytes_are_cut_off(srzoo_env, mirror):
    mirror.fault(f"/{ESPCN4}", extra=4096, times=None)
    # refused from its Content-Length before the body is read
    with pytest.raises(srzoo.DownloadError, match="answered 104419 bytes .* manifest says 100323"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert_nothing_unverified(srzoo_env)
    assert not list((srzoo_env / ".incomplete").iterdir())


def test_local_folder_mirror(srzoo_env, mirror, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_MIRROR", str(shared_dir / "models" / "opencv"))
    path = srzoo.fetch("fsrcnn-small", 3, quiet=True)
    assert_verified(path, shared_dir)
    assert mirror.log == []


def test_offline_mode(srzoo_env, mirror, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    with pytest.raises(srzoo.OfflineError, match="srzoo fetch"):
        srzoo.fetch("espcn", 2, quiet=True)
    assert mirror.log == []
    monkeypatch.delenv("SRZOO_OFFLINE")
    path = srzoo.fetch("espcn", 2, quiet=True)
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    assert srzoo.fetch("espcn", 2, quiet=True) == path  # cached: fine offline
    assert len(mirror.gets("ESPCN_x2.pb")) == 1


def test_both_hashes_must_match(srzoo_env, mirror, tmp_path, shared_dir):
    """The EDSR caveat: a wrong sha256 refuses the file, and so does a wrong
    git blob id even when the sha256 is right. Nothing bad can pass."""
    good = hashlib.sha256(shared_bytes(shared_dir, "ESPCN_x2.pb")).hexdigest()
    manifest = tmp_path / "mine.toml"
    manifest.write_text(f'''
schema = 1
[defaults]
format = "tf-graphdef"
license = "test"
file = "ESPCN_x2.pb"
size = 86446
urls = ["https://example.invalid/ESPCN_x2.pb"]
[[model]]
name = "wrong-sha"
scale = 2
sha256 = "{'0' * 64}"
git_blob_sha1 = "b82214f9fb29449b52f6d3f533f01f6be53c41eb"
[[model]]
name = "wrong-blob"
scale = 2
sha256 = "{good}"
git_blob_sha1 = "{'1' * 40}"
''')
    reg = srzoo.Registry([manifest])
    from srzoo.hub.download import fetch_artifact

    with pytest.raises(srzoo.ChecksumError, match="sha256 mismatch"):
        fetch_artifact(reg.get("wrong-sha", 2).artifact, quiet=True)
    with pytest.raises(srzoo.ChecksumError, match="git-blob-sha1 mismatch.*expected 1111"):
        fetch_artifact(reg.get("wrong-blob", 2).artifact, quiet=True)
    assert_nothing_unverified(srzoo_env)


def test_dataset_fetch(srzoo_env, mirror, shared_dir):
    folder = srzoo.fetch_dataset("set5", quiet=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in (shared_dir / "datasets" / "Set5").iterdir())
    assert (folder / "baby.png").read_bytes() == (shared_dir / "datasets/Set5/baby.png").read_bytes()


CONCURRENT = """
import sys, srzoo
print(srzoo.fetch("lapsrn", 8, quiet=True))
"""


def test_concurrent_processes_download_once(srzoo_env, mirror, shared_dir):
    # the first request is held back for a second so the others arrive meanwhile
    mirror.fault("/LapSRN_x8.pb", delay=1.0)
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert paths == {str(srzoo_env / "models" / "LapSRN_x8.pb")}
    assert len(mirror.gets("LapSRN_x8.pb")) == 1
    assert_verified(Path(paths.pop()), shared_dir)
    assert cache.problems(srzoo_env / "models" / "LapSRN_x8.pb",
                          srzoo.get_model("lapsrn", 8).artifact) == []


def test_progress_bar_only_when_asked_or_on_a_terminal(srzoo_env, mirror, capsys):
    srzoo.fetch("espcn", 2)  # stderr is not a terminal under pytest: quiet by default
    assert capsys.readouterr().err == ""
    srzoo.fetch("espcn", 3, quiet=False)
    err = capsys.readouterr().err
    assert "ESPCN_x3.pb" in err and "90.1k" in err  # tqdm's bar: file name and total size


# --------------------------------------------------------------------------- the one-line failure
def test_failure_line_picks_the_most_telling_cause_first_seen_first():
    """Wrong bytes (mismatch, the manifest, cut off) over a server's or reader's error over an
    absent file (HTTP 404/410, no such file); among equals, the first source tried."""
    from srzoo.hub.download import failure_line

    def best(*causes: str) -> str:
        line = failure_line("m x2", "m.pb", [(f"http://h{i}/m.pb", c) for i, c in enumerate(causes)])
        return line.split(": ", 1)[1].split(" (from ")[0]

    assert failure_line("m x2", "m.pb", []) == "could not fetch m x2 (m.pb): no source answered"
    assert best("HTTP 500 Internal Server Error", "sha256 mismatch: a") == "sha256 mismatch: a"
    assert best("HTTP 500 Internal Server Error", "the size differs from the manifest") == \
        "the size differs from the manifest"
    assert best("HTTP 500 Internal Server Error", "cut off after 10 bytes") == "cut off after 10 bytes"
    assert best("size mismatch: b", "cut off after 10 bytes") == "size mismatch: b"  # equals: the first
    assert best("HTTP 410 Gone", "connection refused") == "connection refused"
    assert best("HTTP 404 Not Found", "connection refused") == "connection refused"
    assert best("No such file or directory", "connection refused") == "connection refused"
    assert best("connection refused", "HTTP 404 Not Found") == "connection refused"
    assert best("HTTP 404 Not Found", "HTTP 410 Gone") == "HTTP 404 Not Found"


def test_failure_line_whole_with_others_counted_and_cut():
    from srzoo.hub.download import failure_line

    file = "ESPCN_x4.pb"
    sha = "0123456789ab" + "c" * 52
    long_url = "https://models.example.org/" + "d" * 60 + "/ESPCN_x4.pb"  # 99 characters
    failures = [
        ("http://m1.example.org/ESPCN_x4.pb", "HTTP 404 Not Found"),
        (long_url, f"sha256 mismatch for {file}: expected {sha}, got {'e' * 64}"),
        ("/srv/mirror/models/ESPCN_x4.pb", "No such file or directory"),
        ("http://m2.example.org/ESPCN_x4.pb", "HTTP 404 Not Found"),
    ]
    assert failure_line("espcn x4", file, failures) == (
        "could not fetch espcn x4 (ESPCN_x4.pb): sha256 mismatch: expected 0123456789ab..., got eeeeeeeeeeee... "
        "(from models.example.org/.../ESPCN_x4.pb); 3 other source(s) failed too "
        "(HTTP 404 Not Found x2, ...); `srzoo -v` lists them")
    # one kind of other failure: no ", ..."; a count only above one; the cause of another is cut
    # to 30 characters, without the file's name
    line = failure_line("espcn x4", file, [
        ("http://m1.example.org/ESPCN_x4.pb", "HTTP 500 Internal Server Error"),
        ("http://m2.example.org/ESPCN_x4.pb", f"size mismatch for {file}: got 5 bytes, expected 100323 of them"),
    ])
    assert line == ("could not fetch espcn x4 (ESPCN_x4.pb): size mismatch: got 5 bytes, expected 100323 of them "
                    "(from http://m2.example.org/ESPCN_x4.pb); 1 other source(s) failed too "
                    "(HTTP 500 Internal Server Error); `srzoo -v` lists them")
    line = failure_line("espcn x4", file, [
        ("http://m1.example.org/ESPCN_x4.pb", f"size mismatch for {file}: got 5 bytes, expected 100323 of them"),
        ("http://m2.example.org/ESPCN_x4.pb", f"size mismatch for {file}: got 6 bytes, expected 100323 of them"),
    ])
    assert line.endswith("; 1 other source(s) failed too (size mismatch: got 6 bytes,...); `srzoo -v` lists them")


def test_failure_line_limits_one_source_and_many():
    """One failure: its cause up to 200 characters and its source up to 120; with others,
    110 and 48. A text of exactly the limit is kept whole; a longer one is cut to the limit,
    ending in '...'; a long source keeps its host (URLs) and its file name. (Causes of 'z':
    40 or more hex digits in a row are a hash, cut to 12.)"""
    from srzoo.hub.download import failure_line

    head = "could not fetch m x2 (m.pb): "
    url120 = "https://h.example/" + "p" * 97 + "/m.pb"
    url121 = "https://h.example/" + "p" * 98 + "/m.pb"
    assert (len(url120), len(url121)) == (120, 121)
    for cause in ("z" * 110, "z" * 111, "z" * 200):
        assert failure_line("m x2", "m.pb", [(url120, cause)]) == f"{head}{cause} (from {url120})"
    assert failure_line("m x2", "m.pb", [(url120, "z" * 201)]) == f"{head}{'z' * 197}... (from {url120})"
    assert failure_line("m x2", "m.pb", [(url121, "x")]) == f"{head}x (from h.example/.../m.pb)"
    path = "/srv/" + "q" * 200 + "/m.pb"
    assert failure_line("m x2", "m.pb", [(path, "x")]) == f"{head}x (from .../m.pb)"
    # scheme://host/file, too long: the host and the file (the host is the third field)
    host = "https://" + "h" * 120 + "/m.pb"
    assert failure_line("m x2", "m.pb", [(host, "x")]) == f"{head}x (from {'h' * 117}...)"  # h*120/.../m.pb, cut
    # a file name longer than the limit is cut too
    assert failure_line("m x2", "m.pb", [("/a/" + "f" * 130, "x")]) == f"{head}x (from .../{'f' * 113}...)"

    other = [("http://o/m.pb", "HTTP 404 Not Found")]
    src48 = "http://h.example/" + "p" * 26 + "/m.pb"
    src49 = "http://h.example/" + "p" * 27 + "/m.pb"
    assert (len(src48), len(src49)) == (48, 49)
    tail = "; 1 other source(s) failed too (HTTP 404 Not Found); `srzoo -v` lists them"
    assert failure_line("m x2", "m.pb", [(src48, "z" * 110)] + other) == f"{head}{'z' * 110} (from {src48}){tail}"
    assert failure_line("m x2", "m.pb", [(src49, "z" * 111)] + other) == \
        f"{head}{'z' * 107}... (from h.example/.../m.pb){tail}"


def test_sources_of_a_model_file_given_by_path_are_that_path_only(tmp_path, monkeypatch):
    """A model file given by path (`-m FILE`: an artifact under models/local/) comes from that
    path only: never asked of a mirror (its name would leak to the server) nor taken from a
    mirror folder holding a file of the same name; other artifacts try the mirrors first."""
    from srzoo.hub.download import sources
    from srzoo.hub.manifest import Artifact

    folder = tmp_path / "mirror"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "net.onnx").write_bytes(b"another file of that name")
    monkeypatch.setenv("SRZOO_MIRROR", f"http://127.0.0.1:9/m,{folder}")
    monkeypatch.delenv("SRZOO_MIRROR_ONLY", raising=False)  # (the suite sets it)
    own = str(tmp_path / "mine" / "net.onnx")
    local = Artifact(file="net.onnx", size=1, sha256="ab" * 32, urls=(own,), subdir="models/local/abababababababab")
    assert sources(local) == [own]
    hosted = Artifact(file="net.onnx", size=1, sha256="ab" * 32, urls=("https://example.org/net.onnx",))
    assert sources(hosted) == ["http://127.0.0.1:9/m/net.onnx", str(folder / "sub" / "net.onnx"),
                               "https://example.org/net.onnx"]
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "1")
    assert sources(local) == [own]
    assert sources(hosted) == ["http://127.0.0.1:9/m/net.onnx", str(folder / "sub" / "net.onnx")]


def test_a_folder_where_the_partial_record_goes_is_one_line(srzoo_env, mirror):
    """The record of a partial download (``<part>.json``) cannot be written because a folder
    is in its place: one line saying so and what to do, nothing cached."""
    from srzoo.hub import api

    art = api.get_model("espcn", 4).artifact
    record = cache.partial_path(art).with_name(cache.partial_path(art).name + ".json")
    record.mkdir(parents=True)
    with pytest.raises(srzoo.CacheError) as err:
        srzoo.fetch("espcn", 4, quiet=True)
    assert str(err.value) == f"cannot write {record}: it is a folder where a file should be; remove it"
    assert not cache.path_for(art).exists() and not cache.partial_path(art).exists()


def test_a_read_error_without_a_file_name_names_the_cache(srzoo_env, mirror, monkeypatch):
    """An I/O error while the finished partial is read back for its checks (a failing disk:
    an OSError without a file name) is one line naming the cache, and nothing is cached. The
    failing disk is simulated: the check raises what a read() raises there."""
    import errno

    from srzoo.hub import api

    def failing_disk(path, artifact):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(cache, "problems", failing_disk)
    with pytest.raises(srzoo.CacheError) as err:
        srzoo.fetch("espcn", 4, quiet=True)
    assert str(err.value) == (f"cannot use {srzoo_env}: Input/output error "
                              f"(cache {srzoo_env}; set SRZOO_CACHE_DIR to use another folder)")
    assert not cache.path_for(api.get_model("espcn", 4).artifact).exists()
