"""Hostile places for batches: symlink loops under recursive globs, --jobs far
above the cores, bad --threads and --scheduler values, a read-only or /proc
cache for autotune. Real files, real processes, real mounts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from diskfaults import mount_tmpfs, umount

from srzoo.cli import main
from srzoo.jobs import executors
from srzoo.jobs.files import expand_inputs


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("srzoo: error: "), err
    return lines[0]


@pytest.fixture
def loop_tree(tmp_path, shared_dir) -> Path:
    """loop/{a.png, sub/b.png, sub/.hidden/h.png} with two links to '.' and one to '..'."""
    img = cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))
    root = tmp_path / "loop"
    (root / "sub" / ".hidden").mkdir(parents=True)
    cv2.imwrite(str(root / "a.png"), img[:20, :24])
    cv2.imwrite(str(root / "sub" / "b.png"), img[20:40, :24])
    cv2.imwrite(str(root / "sub" / ".hidden" / "h.png"), img[40:60, :24])
    (root / "l1").symlink_to(".")
    (root / "l2").symlink_to(".")
    (root / "sub" / "up").symlink_to("..")
    return root


def test_recursive_glob_does_not_loop_through_directory_links(loop_tree, monkeypatch):
    monkeypatch.chdir(loop_tree.parent)
    t0 = time.monotonic()
    files, failed = expand_inputs(["loop/**/*.png"])
    assert time.monotonic() - t0 < 5
    assert failed == [] and [str(p) for p in files] == ["loop/a.png", "loop/sub/b.png"]
    # what glob does without links, for the same tree
    assert [str(p) for p in expand_inputs([f"{loop_tree}/**/b.png"])[0]] == [f"{loop_tree}/sub/b.png"]
    assert expand_inputs(["loop/**/.hidden/*.png"])[0] == [Path("loop/sub/.hidden/h.png")]


def test_upscale_recursive_glob_with_links_to_dot_returns(loop_tree, tmp_path):
    r = subprocess.run([sys.executable, "-m", "srzoo", "upscale", "loop/**/*.png", "-m", "bicubic",
                        "-o", str(tmp_path / "out"), "-q"], cwd=loop_tree.parent, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_bicubic_x2.png", "b_bicubic_x2.png"]


def test_jobs_far_above_the_cores_are_capped_and_said(tmp_path, shared_dir, capsys):
    n = executors.cores()
    ex = executors.make_executor(jobs=1000)
    assert ex.note == (f"--jobs 1000 capped at {n}: this process may use {n} CPU core(s), and each "
                       "worker loads its own copy of the model (--force-jobs runs them all)")
    assert (ex.name == "serial") if n == 1 else ex.name.startswith(f"{n} processes")
    forced = executors.make_executor(jobs=n + 3, force_jobs=True)
    assert forced.note is None and forced.name.startswith(f"{n + 3} processes")
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:20, :24])
    assert main(["upscale", str(img), "-m", "bicubic", "-o", str(tmp_path / "o.png"), "--jobs", "1000"]) == 0
    err = capsys.readouterr().err
    assert f"srzoo: note: --jobs 1000 capped at {n}: this process may use {n} CPU core(s)" in err


@pytest.mark.parametrize("args,line", [
    (["--threads", "-3"], "srzoo: error: --threads must be at least 1, got -3"),
    (["--threads", "0"], "srzoo: error: --threads must be at least 1, got 0"),
    (["--jobs", "0"], "srzoo: error: --jobs must be at least 1, got 0"),
])
def test_bad_jobs_and_threads_refused(tmp_path, shared_dir, capsys, args, line):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:20, :24])
    assert main(["upscale", str(img), "-m", "bicubic", "-o", str(tmp_path / "o.png"), *args]) == 1
    assert one_error_line(capsys.readouterr().err) == line
    assert not (tmp_path / "o.png").exists()


def test_bogus_scheduler_is_one_line(tmp_path, shared_dir, capsys):
    pytest.importorskip("distributed")
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:20, :24])
    assert main(["upscale", str(img), "-m", "bicubic", "-o", str(tmp_path / "o.png"), "--scheduler", "bogus"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("srzoo: error: cannot use the Dask scheduler 'bogus': ")
    assert line.endswith("(give tcp://HOST:8786 or 'local' to --scheduler / SRZOO_SCHEDULER)")


# --------------------------------------------------------------------------- autotune in hostile caches
def _autotune_upscale(tmp_path: Path, shared_dir: Path, cache: str) -> subprocess.CompletedProcess:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:32, :32])
    env = {**os.environ, "SRZOO_CACHE_DIR": cache, "SRZOO_AUTOTUNE": "1"}
    return subprocess.run([sys.executable, "-m", "srzoo", "upscale", str(img), "-o", str(tmp_path / "o.png"),
                           "-q"], env=env, capture_output=True, text=True, timeout=120)


def test_autotune_in_a_proc_cache_does_not_wait_forever(tmp_path, shared_dir):
    """SRZOO_CACHE_DIR=/proc/self: the lock file cannot exist there; the choice is
    simply not remembered (filelock alone retried forever)."""
    r = _autotune_upscale(tmp_path, shared_dir, "/proc/self")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and cv2.imread(str(tmp_path / "o.png")).shape == (64, 64, 3)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_autotune_in_a_read_only_fresh_cache_degrades_to_not_remembering(tmp_path, shared_dir):
    ro = tmp_path / "ro"
    if not mount_tmpfs(ro, "ro,size=64k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        r = _autotune_upscale(tmp_path, shared_dir, str(ro))
        assert r.returncode == 0, r.stderr
        assert "Read-only file system" not in r.stderr and r.stderr == ""
        assert cv2.imread(str(tmp_path / "o.png")).shape == (64, 64, 3)
    finally:
        umount(ro)


def test_autotune_lock_held_elsewhere_is_bounded(tmp_path, monkeypatch):
    from srzoo.runtime import autotune

    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(autotune, "LOCK_WAIT", 0.5)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import filelock,sys,time; l=filelock.FileLock(sys.argv[1]); l.acquire(); "
                               "print('held', flush=True); time.sleep(60)", str(tmp_path / "autotune.json.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        assert autotune._write("k", {"backend": "x"}) is False
        assert time.monotonic() - t0 < 5
        assert not (tmp_path / "autotune.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert autotune._write("k", {"backend": "x"}) is True



# --------------------------------------------------------------------------- --skip-existing
def test_skip_existing_redoes_empty_truncated_and_wrong_size_outputs(tmp_path, shared_dir, capsys):
    src = tmp_path / "in"
    src.mkdir()
    base = cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))
    for i, name in enumerate(["a", "b", "c", "d", "e"]):
        cv2.imwrite(str(src / f"{name}.png"), base[i * 20:i * 20 + 30, :40])
    out = tmp_path / "out"
    assert main(["upscale", str(src), "-m", "bicubic", "-o", str(out), "-q"]) == 0
    good = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "a_bicubic_x2.png").write_bytes(b"")                                   # 0 bytes
    (out / "b_bicubic_x2.png").write_bytes(good["b_bicubic_x2.png"][: len(good["b_bicubic_x2.png"]) // 2])  # truncated (header intact)
    cv2.imwrite(str(out / "c_bicubic_x2.png"), base[:30, :40])                    # a whole PNG, input size
    (out / "d_bicubic_x2.png").write_bytes(b"not an image at all")
    kept = (out / "e_bicubic_x2.png").stat().st_mtime_ns
    assert main(["upscale", str(src), "-m", "bicubic", "-o", str(out), "--skip-existing",
                 "--json-report", str(tmp_path / "r.json")]) == 0
    import json

    rep = json.loads((tmp_path / "r.json").read_text())
    status = {os.path.basename(f["input"]): f["status"] for f in rep["files"]}
    assert status == {"a.png": "written", "b.png": "written", "c.png": "written", "d.png": "written",
                      "e.png": "skipped"}
    attempts = {os.path.basename(f["input"]): f["attempts"] for f in rep["files"]}
    assert attempts == {"a.png": 1, "b.png": 1, "c.png": 1, "d.png": 1, "e.png": 0}  # never null
    assert {p.name: p.read_bytes() for p in out.iterdir()} == good
    assert (out / "e_bicubic_x2.png").stat().st_mtime_ns == kept
    capsys.readouterr()
