"""Disk faults: full disk, file size limit, read-only cache, a file where the
cache folder should be, a folder where the model file should be. Each ends in
one CacheError line naming the path; a partial that failed to write is deleted.

Disk full uses a real 64 KiB tmpfs where this machine lets us mount one (root
in a container that allows it); the RLIMIT_FSIZE variant runs everywhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from diskfaults import mount_tmpfs, umount

import srzoo
from suite import REPO, cache_files

ESPCN4 = "ESPCN_x4.pb"  # 100323 bytes


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "small"
    if not mount_tmpfs(where, "size=64k"):
        why = "cannot mount a tmpfs here (needs root and a kernel that allows it)"
        if os.environ.get("CI") and os.geteuid() == 0:
            # .ci/run sets CI (as CI services do) and runs as root: there the real disk-full case must run
            pytest.fail(f"{why}, in CI as root: the disk-full test would be skipped")
        pytest.skip(f"{why}; test_file_size_limit_deletes_the_partial covers the same path")
    yield where
    umount(where)


@pytest.fixture
def read_only_dir(tmp_path):
    """An existing, empty folder this process cannot write to."""
    where = tmp_path / "ro"
    if os.geteuid() == 0:
        if not mount_tmpfs(where, "ro,size=64k"):
            pytest.skip("running as root and cannot mount a read-only tmpfs: a chmod would not "
                        "stop root from writing")
        yield where
        umount(where)
    else:
        where.mkdir()
        where.chmod(0o555)
        yield where
        where.chmod(0o755)


def test_disk_full_is_one_line_and_deletes_the_partial(small_disk, srzoo_env, mirror, monkeypatch):
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(small_disk))
    with pytest.raises(srzoo.CacheError) as err:
        srzoo.fetch("espcn", 4, quiet=True)
    msg = str(err.value)
    assert msg.startswith(f"disk full writing {small_disk}/.incomplete/") and "\n" not in msg
    assert "SRZOO_CACHE_DIR" in msg and "partial download was deleted" in msg
    assert list((small_disk / ".incomplete").iterdir()) == []
    assert cache_files(small_disk) == []
    assert len(mirror.gets(ESPCN4)) == 1  # no other source tried, no retry: the disk is the problem


FSIZE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (50000, 50000))
from srzoo.cli import main
sys.exit(main(["fetch", "espcn", "-s", "4", "-q"]))
"""


def test_file_size_limit_deletes_the_partial(srzoo_env, mirror):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", FSIZE], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("srzoo: error: file size limit reached writing ")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert list((srzoo_env / ".incomplete").glob("*.part")) == []
    assert cache_files(srzoo_env) == []


def test_read_only_cache_is_one_line(read_only_dir, srzoo_env, mirror, monkeypatch):
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(read_only_dir))
    with pytest.raises(srzoo.CacheError,
                       match=rf"cannot create {read_only_dir}/\S+: (read-only file system|"
                             r"permission denied) \(cache .*set SRZOO_CACHE_DIR"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert mirror.log == []


def test_cache_path_that_is_a_file(tmp_path, srzoo_env, mirror, monkeypatch):
    f = tmp_path / "not-a-folder"
    f.write_text("x")
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(f))
    with pytest.raises(srzoo.CacheError, match=rf"{f} is a file where a folder should be"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert f.read_text() == "x" and mirror.log == []


def test_folder_where_the_model_file_should_be(srzoo_env, mirror):
    (srzoo_env / "models" / ESPCN4).mkdir(parents=True)
    with pytest.raises(srzoo.CacheError, match=rf"{srzoo_env}/models/{ESPCN4} is a folder where "
                                               r"the file of espcn x4 should be; remove it"):
        srzoo.fetch("espcn", 4, quiet=True)
    assert mirror.log == []


@contextlib.contextmanager
def _read_only_copy(src: Path, ro: Path):
    """``ro``: a copy of the folder ``src`` that this process cannot write to (a
    tmpfs remounted read-only as root, where a chmod would not stop it; else a
    chmod of every folder)."""
    if os.geteuid() == 0:
        if not mount_tmpfs(ro, "size=4m"):
            pytest.skip("cannot mount a tmpfs to make a read-only copy as root")
        try:
            shutil.copytree(src, ro, dirs_exist_ok=True)
            subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
            yield ro
        finally:
            umount(ro)
    else:
        shutil.copytree(src, ro)
        folders = [ro] + [p for p in ro.rglob("*") if p.is_dir()]
        for d in folders:
            d.chmod(0o555)
        try:
            yield ro
        finally:
            for d in folders:
                d.chmod(0o755)


def test_read_only_cache_with_the_file_already_verified_still_works(tmp_path, srzoo_env, mirror,
                                                                    monkeypatch):
    """A cache someone else filled and we cannot write to (a shared read-only
    cache): a file that hashes right is used; no record can be written."""
    srzoo.fetch("espcn", 4, quiet=True)
    shutil.rmtree(srzoo_env / ".verified")
    with _read_only_copy(srzoo_env, tmp_path / "ro-copy") as ro:
        monkeypatch.setenv("SRZOO_CACHE_DIR", str(ro))
        assert srzoo.fetch("espcn", 4, quiet=True) == ro / "models" / ESPCN4
    assert len(mirror.gets(ESPCN4)) == 1


def test_cache_rm_on_a_read_only_cache_is_one_line(tmp_path, srzoo_env, mirror, monkeypatch):
    """`cache rm` of a model with a derived ONNX and a measured `auto` choice, in
    a cache it cannot write: exit 1, one line naming the file, nothing claimed
    removed, nothing gone."""
    import numpy as np

    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    srzoo.Upscaler("espcn", 2)(np.zeros((8, 8, 3), np.uint8))
    assert (srzoo_env / "autotune.json").is_file() and list((srzoo_env / "derived").iterdir())
    with _read_only_copy(srzoo_env, tmp_path / "ro-copy") as ro:
        before = sorted(p.relative_to(ro) for p in ro.rglob("*"))
        for argv in (["cache", "rm", "espcn"], ["cache", "rm"]):
            r = subprocess.run([sys.executable, "-m", "srzoo", *argv], capture_output=True, text=True,
                               env={**os.environ, "SRZOO_CACHE_DIR": str(ro)})
            assert r.returncode == 1 and r.stdout == "", r
            assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
            assert r.stderr.startswith("srzoo: error: cannot delete ") and \
                ("read-only file system" in r.stderr or "permission denied" in r.stderr), r.stderr
        assert sorted(p.relative_to(ro) for p in ro.rglob("*")) == before
