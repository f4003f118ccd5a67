"""Every failure path of every command: one ``srzoo: error:`` line on stderr,
a non-zero exit, no traceback, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from suite import REPO, cache_files, one_error_line, run_cli
from diskfaults import mount_tmpfs, umount


def srzoo_proc(*args: str, stdout=subprocess.PIPE, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "srzoo", *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=full, timeout=60)


@pytest.fixture
def image(tmp_path, shared_dir) -> Path:
    p = tmp_path / "in.png"
    cv2.imwrite(str(p), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:20, :24])
    return p


# --------------------------------------------------------------------------- real processes
def test_info_to_dev_full():
    r = srzoo_proc("info", stdout=open("/dev/full", "w"))
    assert r.returncode == 1
    assert one_error_line(r.stderr) == "srzoo: error: cannot write the output: No space left on device"


@pytest.mark.parametrize("name,value", [("SRZOO_TIMEOUT", "0"), ("SRZOO_OFFLINE", "y"),
                                        ("SRZOO_RETRIES", "-1"), ("SRZOO_BACKOFF", "-1"),
                                        ("SRZOO_MAX_PIXELS", "nan")])
def test_bad_environment_values(capsys, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, "list")
    assert code == 1 and out == ""
    assert one_error_line(err).startswith(f"srzoo: error: {name}={value!r} is not valid: expected ")


def test_bad_environment_value_in_a_real_process():
    r = srzoo_proc("list", SRZOO_TIMEOUT="inf")
    assert r.returncode == 1 and r.stdout == ""
    assert "SRZOO_TIMEOUT='inf' is not valid" in one_error_line(r.stderr)


def test_list_into_a_closed_pipe_is_quiet():
    r = subprocess.run(f"'{sys.executable}' -m srzoo list | head -c 10 >/dev/null", shell=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.stderr == ""


# --------------------------------------------------------------------------- cache and fetch
def test_fetch_with_cache_path_a_file(capsys, tmp_path, monkeypatch, mirror):
    f = tmp_path / "cachefile"
    f.write_text("")
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(f))
    monkeypatch.setenv("SRZOO_MIRROR", mirror.url)
    code, _, err = run_cli(capsys, "fetch", "espcn", "-q")
    assert code == 1 and f"{f} is a file where a folder should be" in one_error_line(err)


def test_fetch_and_cache_rm_with_a_read_only_cache(capsys, tmp_path, monkeypatch, mirror, srzoo_env):
    assert run_cli(capsys, "fetch", "espcn", "-s", "2", "-q")[0] == 0
    ro = tmp_path / "ro"
    if os.geteuid() == 0:
        if not mount_tmpfs(ro, "size=1m"):
            pytest.skip("cannot mount a tmpfs (needed to make a cache read-only for root)")
        (ro / "models").mkdir()
        (ro / "models" / "ESPCN_x2.pb").write_bytes((srzoo_env / "models/ESPCN_x2.pb").read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    else:
        (ro / "models").mkdir(parents=True)
        (ro / "models" / "ESPCN_x2.pb").write_bytes((srzoo_env / "models/ESPCN_x2.pb").read_bytes())
        (ro / "models").chmod(0o555)
        ro.chmod(0o555)
    try:
        monkeypatch.setenv("SRZOO_CACHE_DIR", str(ro))
        code, _, err = run_cli(capsys, "fetch", "espcn", "-s", "3", "-q")
        assert code == 1 and f"cannot create {ro}/" in one_error_line(err)
        code, _, err = run_cli(capsys, "cache", "rm")
        assert code == 1 and f"cannot delete {ro}/models/ESPCN_x2.pb" in one_error_line(err)
        assert (ro / "models" / "ESPCN_x2.pb").exists()
    finally:
        if os.geteuid() == 0:
            umount(ro)
        else:
            ro.chmod(0o755)
            (ro / "models").chmod(0o755)


def test_fetch_every_source_failing(capsys, srzoo_env, mirror):
    mirror.fault("/*", status=404, times=None)
    code, out, err = run_cli(capsys, "fetch", "espcn", "-s", "4", "-q")
    assert code == 1 and out == ""
    assert "could not fetch espcn x4" in one_error_line(err) and "HTTP 404" in err
    assert cache_files(srzoo_env) == []


def test_fetch_unknown_model(capsys):
    code, _, err = run_cli(capsys, "fetch", "no-such-model", "-q")
    assert code == 1 and "no-such-model" in one_error_line(err)


# --------------------------------------------------------------------------- upscale
def test_upscale_output_not_writable(capsys, image, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "upscale", str(image), "-m", "nearest", "-s", "2",
                           "-o", str(blocker / "out.png"), "-q")
    assert code == 1 and f"{blocker}/out.png: cannot write" in one_error_line(err)


def test_upscale_output_on_a_read_only_fs(capsys, image, tmp_path):
    ro = tmp_path / "rofs"
    if os.geteuid() == 0:
        if not mount_tmpfs(ro, "ro,size=64k"):
            pytest.skip("cannot mount a read-only tmpfs as root")
    else:
        ro.mkdir()
        ro.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "upscale", str(image), "-m", "nearest", "-s", "2",
                               "-o", str(ro), "-q")
        line = one_error_line(err)
        assert code == 1 and f"{ro}/in_nearest_x2.png: cannot write: " in line
    finally:
        if os.geteuid() == 0:
            umount(ro)


def test_upscale_missing_input_and_bad_model(capsys, image, tmp_path):
    code, _, err = run_cli(capsys, "upscale", str(tmp_path / "nope.png"), "-m", "nearest", "-q")
    assert code == 1 and "no such file or folder" in one_error_line(err)
    code, _, err = run_cli(capsys, "upscale", str(image), "-m", "no-such-model", "-q")
    assert code == 1 and "no-such-model" in one_error_line(err)
    code, _, err = run_cli(capsys, "upscale", str(image), "-m", "nearest", "-s", "0", "-q")
    assert code == 1 and "scale must be a positive number, got 0" in one_error_line(err)


def test_upscale_float_nan_file(capsys, tmp_path):
    img = np.ones((8, 8), np.float32)
    img[2, 2] = np.nan
    p = tmp_path / "nan.pfm"
    assert cv2.imwrite(str(p), img)
    code, _, err = run_cli(capsys, "upscale", str(p), "-m", "bicubic", "-s", "2", "-q")
    assert code == 1 and "NaN or infinite" in one_error_line(err)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["nan.pfm"]


# --------------------------------------------------------------------------- bench
@pytest.mark.parametrize("args,msg", [
    (["--repeat", "0"], "--repeat must be >= 1"),
    (["--repeat", "-3"], "--repeat must be >= 1"),
    (["--warmup", "-1"], "--warmup must be >= 0"),
])
def test_bench_bad_arguments(capsys, args, msg):
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", *args)
    assert code == 1 and out == "" and msg in one_error_line(err)


@pytest.mark.parametrize("flag", ["--json", "--csv", "--markdown", "--plot"])
def test_bench_report_paths_checked_before_the_run(capsys, tmp_path, flag, monkeypatch):
    import srzoo.evaluate.benchmark

    def must_not_run(*a, **k):  # the check must come first; a real run would take long
        raise AssertionError("benchmark started before the output paths were checked")

    monkeypatch.setattr(srzoo.evaluate.benchmark, "bench", must_not_run)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", flag, str(blocker / "r.out"))
    assert code == 1 and out == ""
    assert f"{flag} {blocker}/r.out: cannot write: " in one_error_line(err)
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", flag, str(tmp_path))
    assert code == 1 and "is a folder" in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
