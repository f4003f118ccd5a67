"""``srzoo upscale``: the exact lines it prints for images, and ``--chunk`` (one image
larger than memory) from the command line: its refusals, its scale, chunk, backend and
Dask scheduler options, and ``-v``."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.cli import main
from suite import Terminal
from test_cli_upscale import images, read  # noqa: F401 - the fixture of three small PNGs


def _time(text: str) -> str:
    """A measured time in a line (``0.12 s``) as ``T s``: the rest is compared exactly."""
    return re.sub(r"\b\d+\.\d+ s\b", "T s", text)


# --------------------------------------------------------------------------- per-file lines
def test_a_line_per_written_image_with_both_sizes_then_the_summary(models_env, images, tmp_path,
                                                                    capsys):
    out = tmp_path / "out"
    cv2.imwrite(str(images / "tall.png"), read(images / "a.png")[:, :20])  # 20 wide, 30 high
    rc = main(["upscale", str(images / "a.png"), str(images / "tall.png"), "-m", "espcn", "-s", "3",
               "-o", str(out)])
    o, e = capsys.readouterr()
    assert rc == 0, e
    assert _time(o).splitlines() == [
        f"{out / 'a_espcn_x3.png'}  ({images / 'a.png'}, 40x30 -> 120x90, T s)",
        f"{out / 'tall_espcn_x3.png'}  ({images / 'tall.png'}, 20x30 -> 60x90, T s)",
        f"upscaled 2 images x3 with espcn in T s -> {out}"]
    assert read(out / "tall_espcn_x3.png").shape == (90, 60, 3)
    # two files: the batch's own summary line on stderr
    assert re.sub(r"\d+\.\d+ images/s", "R images/s", _time(e)) == \
        "srzoo: 2 written, 0 failed, 0 skipped in T s (R images/s, serial)\n"


def test_the_summary_says_the_scale_really_applied(models_env, images, tmp_path, capsys):
    a = images / "a.png"  # 40x30
    cv2.imwrite(str(images / "tall.png"), read(a)[:, :20])  # 20x30

    def summary(*argv: str) -> str:
        assert main(["upscale", *argv, "-m", "bicubic"]) == 0
        return _time(capsys.readouterr().out.splitlines()[-1])

    # 125 wide: x3.125 across, 94/30 = x3.133 down; said to two decimals, as one scale
    assert summary(str(a), "--width", "125", "-o", str(tmp_path / "w.png")) == \
        f"upscaled 1 image x3.12 with bicubic in T s -> {tmp_path / 'w.png'}"
    assert read(tmp_path / "w.png").shape == (94, 125, 3)
    # --stretch to 160x105: x4 across, x3.5 down
    assert summary(str(a), "--width", "160", "--height", "105", "--stretch", "-o",
                   str(tmp_path / "s.png")) == \
        f"upscaled 1 image x4 by 3.5 with bicubic in T s -> {tmp_path / 's.png'}"
    # 120 wide: x3 for the 40x30 image, x6 for the 20x30 one; no -o: beside the inputs
    assert summary(str(a), str(images / "tall.png"), "--width", "120") == \
        "upscaled 2 images x3-x6 with bicubic in T s -> beside the inputs"
    assert read(images / "a_bicubic_w120.png").shape == (90, 120, 3)
    assert read(images / "tall_bicubic_w120.png").shape == (180, 120, 3)


def test_precision_and_memory_reach_the_run(models_env, images, tmp_path, capsys):
    a = str(images / "a.png")
    # an interpolation runs in fp32 only: --precision fp16 reached it
    assert main(["upscale", a, "-m", "bicubic", "-s", "2", "--precision", "fp16",
                 "-o", str(tmp_path / "p.png")]) == 1
    assert capsys.readouterr() == ("", "srzoo: error: bicubic is an interpolation: it runs in fp32 "
                                       "only, not fp16\n")
    assert main(["upscale", a, "-m", "bicubic", "-s", "2", "--memory", "lots",
                 "-o", str(tmp_path / "m.png")]) == 1
    assert capsys.readouterr() == ("", "srzoo: error: --memory 'lots' is not a size: use bytes or "
                                       "a size such as 2G or 500M (0: no limit)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    # a size that parses: the run goes ahead (SRZOO_MEMORY set for it, restored after)
    assert main(["upscale", a, "-m", "bicubic", "-s", "2", "--memory", "64M", "--precision", "fp32",
                 "-o", str(tmp_path / "ok.png"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert np.array_equal(read(tmp_path / "ok.png"), srzoo.upscale(read(images / "a.png"), "bicubic", 2))


# --------------------------------------------------------------------------- --chunk
zarr = pytest.importorskip("zarr")


@pytest.fixture
def store(shared_dir: Path, tmp_path: Path) -> tuple[np.ndarray, Path]:
    """A 60x90 colour image as a Zarr store of 32x32 chunks."""
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:60, :90]
    z = zarr.open(str(tmp_path / "in.zarr"), mode="w", shape=img.shape, chunks=(32, 32, 3),
                  dtype=img.dtype)
    z[:] = img
    return img, tmp_path / "in.zarr"


def test_chunk_refuses_a_fractional_scale_and_a_size(models_env, store, tmp_path, capsys):
    _, src = store
    line = ("srzoo: error: --chunk runs a model's own scale only (no --width/--height or "
            "fractional -s)\n")
    for extra in (["-s", "2.5"], ["--width", "200"], ["--height", "150"],
                  ["--width", "200", "--height", "150"]):
        assert main(["upscale", str(src), "-m", "espcn", "--chunk", "32",
                     "-o", str(tmp_path / "o.zarr"), *extra]) == 1, extra
        assert capsys.readouterr() == ("", line), extra
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr"]


def test_chunk_runs_the_scale_chunk_and_backend_asked_and_v_prints_the_store(models_env, store,
                                                                              tmp_path, capsys):
    img, src = store
    dst = tmp_path / "o.zarr"
    assert main(["upscale", str(src), "-m", "espcn", "-s", "3", "--chunk", "40",
                 "--backend", "opencv:cpu", "-o", str(dst), "-v"]) == 0
    assert capsys.readouterr() == (f"{dst}\n", "")
    z = zarr.open(str(dst), mode="r")
    assert z.shape == (180, 270, 3) and z.chunks == (120, 120, 3)  # chunk * scale
    whole = srzoo.upscale(img, "espcn", 3, tile=0)
    assert np.abs(z[:].astype(int) - whole).max() <= 1
    # without -v: nothing on stdout
    assert main(["upscale", str(src), "-m", "espcn", "-s", "3", "--chunk", "40",
                 "-o", str(tmp_path / "q.zarr")]) == 0
    assert capsys.readouterr() == ("", "")
    q = zarr.open(str(tmp_path / "q.zarr"), mode="r")
    assert q.chunks == (120, 120, 3) and np.abs(q[:].astype(int) - whole).max() <= 1
    # the backend reaches the chunk tasks: an unknown one is the usual one line
    assert main(["upscale", str(src), "-m", "espcn", "-s", "3", "--chunk", "40",
                 "--backend", "nosuch", "-o", str(tmp_path / "b.zarr")]) == 1
    o, e = capsys.readouterr()
    assert o == "" and e.startswith("srzoo: error: unknown backend 'nosuch'; valid backends: ")
    assert len(e.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "o.zarr", "q.zarr"]


distributed = pytest.importorskip("distributed")


@pytest.fixture
def cluster():
    """A Dask scheduler and one worker thread in this process (no worker processes to start)."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as c:
        yield c


def _tasks_run(c) -> int:
    """Tasks the cluster's worker has finished (its log of transitions into memory)."""
    (w,) = c.workers.values()
    return sum(1 for rec in w.state.log if len(rec) > 2 and rec[2] == "memory")


def test_chunk_runs_on_the_scheduler_given_or_the_environments(models_env, store, cluster,
                                                               tmp_path, monkeypatch, capsys):
    img, src = store
    monkeypatch.delenv("SRZOO_SCHEDULER", raising=False)
    assert _tasks_run(cluster) == 0
    assert main(["upscale", str(src), "-m", "espcn", "-s", "2", "--chunk", "32",
                 "--scheduler", cluster.scheduler_address, "-o", str(tmp_path / "a.zarr")]) == 0
    assert capsys.readouterr() == ("", "")
    assert _tasks_run(cluster) == 6  # 2x3 cells of 32 pixels, a task each
    assert sorted(cluster.scheduler.task_prefixes) == ["window_task"]
    got = zarr.open(str(tmp_path / "a.zarr"), mode="r")[:]
    assert np.abs(got.astype(int) - srzoo.upscale(img, "espcn", 2, tile=0)).max() <= 1
    # $SRZOO_SCHEDULER when --scheduler is not given
    monkeypatch.setenv("SRZOO_SCHEDULER", cluster.scheduler_address)
    assert main(["upscale", str(src), "-m", "espcn", "-s", "2", "--chunk", "32",
                 "-o", str(tmp_path / "b.zarr")]) == 0
    assert _tasks_run(cluster) == 12
    assert np.array_equal(zarr.open(str(tmp_path / "b.zarr"), mode="r")[:], got)
    # the client was closed: the scheduler has no client left but its own
    assert set(cluster.scheduler.clients) <= {"fire-and-forget"}


def test_chunk_with_a_local_scheduler_starts_jobs_workers(models_env, store, tmp_path, monkeypatch,
                                                          capsys):
    """``--scheduler local -j N``: a local cluster of N workers, closed afterwards. Its worker
    processes are made threads here (starting processes costs seconds); the count is what
    srzoo asked for."""
    img, src = store
    asked: list[int] = []
    real = distributed.LocalCluster

    def in_process(*a, n_workers=None, processes=True, **kw):
        asked.append(n_workers)
        return real(*a, n_workers=n_workers, processes=False, **kw)

    monkeypatch.setattr(distributed, "LocalCluster", in_process)
    monkeypatch.delenv("SRZOO_SCHEDULER", raising=False)
    assert main(["upscale", str(src), "-m", "espcn", "-s", "2", "--chunk", "32",
                 "--scheduler", "local", "-j", "1", "-o", str(tmp_path / "a.zarr")]) == 0
    assert capsys.readouterr() == ("", "")
    assert asked == [1]
    got = zarr.open(str(tmp_path / "a.zarr"), mode="r")[:]
    assert np.abs(got.astype(int) - srzoo.upscale(img, "espcn", 2, tile=0)).max() <= 1
    # no scheduler at all: no cluster
    assert main(["upscale", str(src), "-m", "espcn", "-s", "2", "--chunk", "32",
                 "-o", str(tmp_path / "b.zarr")]) == 0
    assert asked == [1]


def test_v_shows_opencv_warnings_unless_q_or_the_users_choice(models_env, images, tmp_path, capsys,
                                                              monkeypatch):
    """-v sets SRZOO_LOG=warning in the environment for the run (OpenCV's own warnings; worker
    processes inherit it) unless the user set SRZOO_LOG, and restores it; -q -v only prints the
    written paths."""
    a = str(images / "a.png")
    monkeypatch.setenv("SRZOO_LOG", "")  # empty: not set, for srzoo; restored after the test

    def run(name: str, *flags: str) -> tuple[str, str]:
        assert main(["upscale", a, "-m", "bicubic", "-s", "2", "-o", str(tmp_path / name), *flags]) == 0
        return capsys.readouterr()

    assert run("q.png", "-q") == ("", "")
    assert os.environ["SRZOO_LOG"] == ""
    t0 = time.perf_counter()
    o, e = run("plain.png")
    outside = time.perf_counter() - t0
    # the time said is the command's own: within the time measured around it (to the 0.01 s
    # it is rounded to)
    said = float(re.search(r" in (\d+\.\d\d) s -> ", o).group(1))
    assert 0 <= said <= outside + 0.005
    assert _time(o) == (f"{tmp_path / 'plain.png'}  ({a}, 40x30 -> 80x60, T s)\n"
                        f"upscaled 1 image x2 with bicubic in T s -> {tmp_path / 'plain.png'}\n")
    assert e == "" and os.environ["SRZOO_LOG"] == ""
    from srzoo.jobs import batch

    seen: list = []  # SRZOO_LOG while the batch runs (what workers inherit)
    real = batch.run_batch

    def spy(*a, **kw):
        seen.append(os.environ.get("SRZOO_LOG"))
        return real(*a, **kw)

    monkeypatch.setattr(batch, "run_batch", spy)
    assert run("qv.png", "-q", "-v") == (f"{tmp_path / 'qv.png'}\n", "")
    assert os.environ["SRZOO_LOG"] == "" and seen[-1] == ""
    o, _ = run("v.png", "-v")
    assert _time(o).splitlines()[-1] == f"upscaled 1 image x2 with bicubic in T s -> {tmp_path / 'v.png'}"
    assert seen[-1] == "warning" and os.environ["SRZOO_LOG"] == ""  # for the run only, then restored
    monkeypatch.setenv("SRZOO_LOG", "error")
    run("v2.png", "-v")
    assert seen[-1] == "error" and os.environ["SRZOO_LOG"] == "error"


def test_q_v_hands_each_path_to_a_pipe_as_soon_as_it_is_written(models_env, images, tmp_path):
    """-q -v is for scripts reading the paths as they come: with stdout a pipe, the first
    path arrives while srzoo is still busy with the second file. Here the second output is a
    FIFO, which srzoo writes through and which blocks it until this test opens it to read:
    the first path must be readable before that (a path left in stdout's buffer would only
    come at exit, which cannot happen first)."""
    out = tmp_path / "out"
    out.mkdir()
    fifo = out / "b_bicubic_x2.png"
    os.mkfifo(fifo)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    env.pop("PYTHONUNBUFFERED", None)  # as a script runs it: stdout a buffered pipe
    p = subprocess.Popen([sys.executable, "-m", "srzoo", "upscale", str(images / "a.png"),
                          str(images / "b.png"), "-m", "bicubic", "-s", "2", "-o", str(out), "-q", "-v"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=repo)
    try:
        first = b""
        while not first.endswith(b"\n"):
            ready, _, _ = select.select([p.stdout], [], [], 60)  # a bound, not a measurement
            assert ready, f"no whole line on stdout while srzoo waits on the FIFO: {first!r}"
            chunk = os.read(p.stdout.fileno(), 4096)
            assert chunk, f"stdout closed: {first!r}"
            first += chunk
        assert first == f"{out / 'a_bicubic_x2.png'}\n".encode()
        with open(fifo, "rb") as f:  # let srzoo write the second file through
            png = f.read()
        rest, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err.decode()
    assert rest == f"{fifo}\n".encode() and err == b""
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(img, srzoo.upscale(read(images / "b.png"), "bicubic", 2))


def test_skip_existing_says_nothing_of_the_skipped_files(models_env, images, tmp_path, capsys):
    out = tmp_path / "out"
    a, b = str(images / "a.png"), str(images / "b.png")
    assert main(["upscale", a, "-m", "bicubic", "-s", "2", "-o", str(out), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    before = (out / "a_bicubic_x2.png").stat().st_mtime_ns
    assert main(["upscale", a, "-m", "bicubic", "-s", "2", "-o", str(out), "--skip-existing"]) == 0
    assert capsys.readouterr() == ("", "")  # nothing written: no line, no summary
    o, e = (main(["upscale", a, b, "-m", "bicubic", "-s", "2", "-o", str(out), "--skip-existing"]),
            capsys.readouterr())
    assert o == 0
    assert _time(e.out).splitlines() == [
        f"{out / 'b_bicubic_x2.png'}  ({b}, 40x30 -> 80x60, T s)",
        f"upscaled 1 image x2 with bicubic in T s -> {out / 'b_bicubic_x2.png'}"]
    assert re.sub(r"\d+\.\d+ images/s", "R images/s", _time(e.err)) == \
        "srzoo: 1 written, 0 failed, 1 skipped in T s (R images/s, serial)\n"
    assert (out / "a_bicubic_x2.png").stat().st_mtime_ns == before


def test_the_batch_bar_is_drawn_on_a_terminal_unless_q(models_env, images, tmp_path, monkeypatch):
    term = Terminal(100)  # a real pty as stderr
    monkeypatch.setattr(sys, "stderr", term.file)
    files = [str(images / "a.png"), str(images / "b.png")]
    assert main(["upscale", *files, "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "q"), "-q"]) == 0
    assert term.text() == ""
    term = Terminal(100)
    monkeypatch.setattr(sys, "stderr", term.file)
    assert main(["upscale", *files, "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "b")]) == 0
    monkeypatch.setattr(sys, "stderr", sys.__stderr__)
    text = term.text()
    assert "bicubic x2: 100%" in text and "2/2" in text and "\r" in text  # the bar's frames
    assert re.sub(r"\d+\.\d+ images/s", "R images/s", _time(text.splitlines()[-1])).endswith(
        "srzoo: 2 written, 0 failed, 0 skipped in T s (R images/s, serial)")
