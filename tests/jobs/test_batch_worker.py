"""What a batch worker does with one job (srzoo.jobs.batch.run_job and its helpers), on
exact values: the record it returns, the sizes, the metadata and JPEG quality it writes,
its share of a real Dask worker's cores, the tile bar on a real terminal (a pty), the
partial files a killed worker leaves, and run_batch's defaults. Fast enough to be the
jobs/batch mutation run's first file: one image, the file-free ``bicubic`` model (or the
package's built-in ``default`` network where tiles are needed)."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import struct
import sys
import termios
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from srzoo.errors import SrzooError
from srzoo.jobs import batch
from srzoo.jobs.executors import cores
from srzoo.jobs.resize import resize_down
from suite import Terminal

fsspec = pytest.importorskip("fsspec")


LIMIT_X3 = "a 64x48 image gives 192x144 at x3, 0.028 MP, above the limit of 9216 pixels"
ADVICE = "; downscale or crop it, or raise SRZOO_MAX_PIXELS"


def _photo(h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)
    return base


def _jpeg_with_exif(path: Path, img: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "srzoo-test"  # Make
    exif[0x0110] = "worker"      # Model
    Image.fromarray(img[:, :, ::-1]).save(path, quality=95, exif=exif.tobytes())
    return exif.tobytes()


def _job(src: Path | str, dst: Path | str, model: str = "bicubic", scale: float | None = 2,
         **kw) -> batch.Job:
    entries = batch.model_entries(model)
    return batch.Job(index=kw.pop("index", 3), input=str(src), output=str(dst), entries=entries,
                     scale=scale, **kw)


def _timed(job: batch.Job) -> tuple[dict, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    rec = batch.run_job(job)
    return rec, time.perf_counter() - t0, time.process_time() - c0


def test_written_record_and_pixels(tmp_path: Path) -> None:
    img = _photo()
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), img)
    rec, wall, cpu = _timed(_job(src, tmp_path / "out.png", index=7))
    assert set(rec) == {"index", "input", "output", "error", "status", "worker", "in_shape", "out_shape",
                        "seconds", "cpu_seconds"}
    assert (rec["index"], rec["input"], rec["output"], rec["error"], rec["status"]) == (
        7, str(src), str(tmp_path / "out.png"), None, "written")
    assert rec["worker"] == f"{os.uname().nodename}:{os.getpid()}"
    assert rec["in_shape"] == (48, 64) and rec["out_shape"] == (96, 128)
    assert 0 < rec["seconds"] <= wall and 0 <= rec["cpu_seconds"] <= cpu
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(out, cv2.resize(img, (128, 96), interpolation=cv2.INTER_CUBIC))


def test_failed_records_name_the_cause_once(tmp_path: Path) -> None:
    missing = tmp_path / "gone.png"
    rec = batch.run_job(_job(missing, tmp_path / "o.png", index=1))
    assert set(rec) == {"index", "input", "output", "error", "status", "worker", "seconds", "cpu_seconds"}
    assert (rec["index"], rec["input"], rec["output"], rec["status"]) == (1, str(missing), None, "failed")
    assert rec["error"] == "no such file"  # srzoo's own errors: no type name, no file name
    assert rec["worker"] == f"{os.uname().nodename}:{os.getpid()}"
    assert rec["seconds"] >= 0 and rec["cpu_seconds"] >= 0
    # anything else names its type: a job without entries (an IndexError inside the worker)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())
    job = batch.Job(index=2, input=str(src), output=str(tmp_path / "o.png"), entries=(), scale=2)
    rec = batch.run_job(job)
    assert (rec["status"], rec["error"]) == ("failed", "IndexError: tuple index out of range")
    assert not (tmp_path / "o.png").exists()


def test_the_pixel_limit_is_checked_at_the_jobs_scale(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())  # 64 x 48 = 3072 pixels, 12288 at x2, 27648 at x3
    monkeypatch.setenv("SRZOO_MAX_PIXELS", str(3 * 3072))
    rec = batch.run_job(_job(src, tmp_path / "o.png", scale=3))
    assert (rec["status"], rec["error"]) == ("failed", LIMIT_X3 + " (refused before decoding)" + ADVICE)
    assert not (tmp_path / "o.png").exists()
    monkeypatch.setenv("SRZOO_MAX_PIXELS", str(3 * 3072 + 1))
    # a width (no scale): the header is checked at x1, then the x2 model's result is refused
    rec = batch.run_job(_job(src, tmp_path / "o.png", scale=None, width=96))
    assert rec["error"] == ("image: a 64x48 input at x2 gives 128x96 (0.012 MP, 0.0 GiB), above the "
                            "limit of 9217 pixels" + ADVICE)
    monkeypatch.setenv("SRZOO_MAX_PIXELS", str(4 * 3072))
    ok = batch.run_job(_job(src, tmp_path / "o.png", scale=None, width=96))  # x2 model, then x1.5
    assert (ok["status"], ok["out_shape"]) == ("written", (72, 96))


def test_sizes_widths_and_stretch(tmp_path: Path) -> None:
    img = _photo()
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), img)
    rec = batch.run_job(_job(src, tmp_path / "w.png", scale=None, width=100))
    assert rec["out_shape"] == (75, 100)  # 48 * 100 / 64 = 75: fits, keeps the aspect
    ref = resize_down(cv2.resize(img, (128, 96), interpolation=cv2.INTER_CUBIC), (100, 75))
    assert np.array_equal(cv2.imread(str(tmp_path / "w.png")), ref)
    fit = batch.run_job(_job(src, tmp_path / "f.png", scale=None, width=100, height=100))
    assert fit["out_shape"] == (75, 100)
    st = batch.run_job(_job(src, tmp_path / "s.png", scale=None, width=100, height=100, stretch=True))
    assert st["out_shape"] == (100, 100)
    # a scale between the model's: bicubic runs at x3 (the next integer), then shrinks to x2.5
    rec = batch.run_job(_job(src, tmp_path / "x.png", scale=2.5))
    assert rec["out_shape"] == (120, 160)
    ref = resize_down(cv2.resize(img, (192, 144), interpolation=cv2.INTER_CUBIC), (160, 120))
    assert np.array_equal(cv2.imread(str(tmp_path / "x.png")), ref)


def test_metadata_and_quality_reach_the_output(tmp_path: Path) -> None:
    img = _photo()
    src = tmp_path / "in.jpg"
    _jpeg_with_exif(src, img)
    rec = batch.run_job(_job(src, tmp_path / "q.jpg", quality=30))
    assert rec["status"] == "written"
    with Image.open(tmp_path / "q.jpg") as im:
        exif = im.getexif()
        assert (exif[0x010F], exif[0x0110]) == ("srzoo-test", "worker")
        tables = im.quantization
    ok, ref = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 30])
    with Image.open(io.BytesIO(ref.tobytes())) as r:
        assert tables == r.quantization  # the IJG tables of quality 30 (the default is 95)


def test_urls_in_and_out_keep_metadata_quality_and_name_the_cause(tmp_path: Path, monkeypatch) -> None:
    fs = fsspec.filesystem("memory")
    img = _photo()
    local = tmp_path / "in.jpg"
    _jpeg_with_exif(local, img)
    fs.pipe("/w24/in.jpg", local.read_bytes())
    fs.pipe("/w24/bad.png", b"\x89PNG\r\n\x1a\n not really")
    try:
        rec = batch.run_job(_job("memory://w24/in.jpg", "memory://w24/out/r.jpg", quality=30))
        assert (rec["status"], rec["output"], rec["out_shape"]) == ("written", "memory://w24/out/r.jpg", (96, 128))
        data = fs.cat("/w24/out/r.jpg")
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "JPEG" and im.getexif()[0x010F] == "srzoo-test"
            ok, ref = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 30])
            with Image.open(io.BytesIO(ref.tobytes())) as r:
                assert im.quantization == r.quantization
        assert fs.ls("/w24/out", detail=False) == ["/w24/out/r.jpg"]  # no partial left
        bad = batch.run_job(_job("memory://w24/bad.png", "memory://w24/out/b.png"))
        assert bad["status"] == "failed" and "None" not in bad["error"] and bad["error"].startswith(
            "not an image"), bad["error"]
        # the pixel limit holds for URLs too, at the job's scale
        monkeypatch.setenv("SRZOO_MAX_PIXELS", str(3 * 3072))
        big = batch.run_job(_job("memory://w24/in.jpg", "memory://w24/out/x3.jpg", scale=3))
        assert (big["status"], big["error"]) == ("failed", LIMIT_X3 + " (refused before decoding)" + ADVICE)
    finally:
        fs.rm("/w24", recursive=True)


def test_a_bomb_from_a_url_is_refused_before_decoding(monkeypatch) -> None:
    """A PNG whose header claims 60000 x 50000 pixels (3 GP; 9 GB decoded) arrives as
    bytes from a URL: refused from its header, the way a local file is."""
    fs = fsspec.filesystem("memory")
    ihdr = struct.pack(">IIBBBBB", 60000, 50000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    fs.pipe("/w24b/bomb.png", b"\x89PNG\r\n\x1a\n" + chunk + b"\0" * 64)
    calls: list[int] = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: calls.append(1) or real(*a))
    try:
        with pytest.raises(SrzooError) as e:
            batch._read("memory://w24b/bomb.png", 2)
    finally:
        fs.rm("/w24b", recursive=True)
    assert str(e.value) == ("memory://w24b/bomb.png: a 60000x50000 image gives 120000x100000 at x2, "
                            "12000 MP, above the limit of 1074 MP (refused before decoding); downscale "
                            "or crop it, or raise SRZOO_MAX_PIXELS")
    assert calls == []  # never decoded


def test_a_failed_move_into_place_leaves_no_partial(monkeypatch) -> None:
    """The upload lands under a temporary name, then moves into place; when the move fails
    (an injected fault of the real in-memory filesystem), the temporary file is removed."""
    fs = fsspec.filesystem("memory")
    fs.mkdir("/w24c")

    def refuse(self, *a, **k):
        raise PermissionError("read-only bucket")

    monkeypatch.setattr(type(fs), "mv", refuse)
    try:
        with pytest.raises(PermissionError):
            batch._write("memory://w24c/out/r.png", _photo())
        assert fs.find("/w24c") == []
    finally:
        fs.rm("/w24c", recursive=True)


def test_urls_need_fsspec_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # `import fsspec` now fails as if not installed
    with pytest.raises(SrzooError) as e:
        batch._fsspec()
    assert str(e.value) == ("URLs as inputs or outputs need fsspec: pip install 'srzoo[dask]' "
                            "(or pip install fsspec and the filesystem's package, e.g. s3fs)")


def test_scheduler_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("SRZOO_SCHEDULER", raising=False)
    assert batch._env_scheduler() is None
    monkeypatch.setenv("SRZOO_SCHEDULER", "  ")
    assert batch._env_scheduler() is None
    monkeypatch.setenv("SRZOO_SCHEDULER", " tcp://10.0.0.1:8786 ")
    assert batch._env_scheduler() == "tcp://10.0.0.1:8786"


# --------------------------------------------------------------------------- Dask workers' threads
@pytest.fixture
def cv2_threads():
    before = cv2.getNumThreads()
    cv2.setNumThreads(7)
    yield
    cv2.setNumThreads(before)


@pytest.mark.parametrize("nthreads", [1, 2])
def test_a_dask_task_gets_its_share_of_the_cores(nthreads: int, tmp_path: Path, cv2_threads) -> None:
    distributed = pytest.importorskip("distributed")
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())

    def task(job):
        rec = batch.run_job(job)
        return batch._dask_worker_threads(), cv2.getNumThreads(), rec["status"]

    def task_with_threads(job):
        rec = batch.run_job(job)
        return cv2.getNumThreads(), rec["status"]

    # a real (in-process) Dask worker with `nthreads` task threads
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=nthreads,
                            dashboard_address=None) as client:
        share, now, status = client.submit(task, _job(src, tmp_path / "a.png"), pure=False).result()
        expected = max(1, cores() // nthreads)
        assert (share, type(share), now, status) == (expected, int, expected, "written")
        cv2.setNumThreads(7)
        # a job that asks for threads itself leaves the task's OpenCV setting alone
        now, status = client.submit(task_with_threads, _job(src, tmp_path / "b.png", threads=1),
                                    pure=False).result()
        assert (now, status) == (7, "written")
        # run_batch on this client: the jobs go to its worker
        rep = batch.run_batch([src], "bicubic", 2, output=tmp_path / "c", client=client, progress=False)
        assert rep.written == 1 and rep.executor.startswith("dask"), rep.executor
    # outside a worker (distributed imported): no share
    assert "distributed" in sys.modules and batch._dask_worker_threads() is None


def test_no_share_without_dask(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "distributed", raising=False)
    assert batch._dask_worker_threads() is None
    assert "distributed" not in sys.modules  # and asking did not import it


# --------------------------------------------------------------------------- the tile bar
def test_tile_bar_only_from_two_tiles() -> None:
    bar = batch._TileBar("a.png")
    assert bar.name == "a.png" and bar.bar is None
    bar(1, 1)
    assert bar.bar is None
    bar.close()  # no bar: nothing to close
    bar(0, 2)
    assert bar.bar is not None and bar.bar.total == 2
    bar.close()


@contextlib.contextmanager
def _terminal(monkeypatch):
    """sys.stderr on a real pseudo-terminal of 100 columns; yields a list that holds
    what the terminal received once the block ends."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    tty = os.fdopen(slave, "w", buffering=1)
    got: list[str] = []
    with monkeypatch.context() as m:
        m.setattr(sys, "stderr", tty)
        try:
            yield got
            tty.flush()
            os.set_blocking(master, False)
            data = b""
            while True:
                try:
                    chunk = os.read(master, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                data += chunk
            got.append(data.decode())
        finally:
            tty.close()
            os.close(master)


def test_tile_bar_on_a_terminal(tmp_path: Path, monkeypatch) -> None:
    """One image in tiles with ``progress``: a tqdm bar named after the input on stderr when
    it is a terminal (a real pty), cleared when the image is done; nothing without."""
    img = _photo(96, 128)
    src = tmp_path / "tiles.png"
    cv2.imwrite(str(src), img)
    with _terminal(monkeypatch) as shown:
        rec = batch.run_job(_job(src, tmp_path / "o.png", model="default", tile=32, progress=True))
    assert rec["status"] == "written", rec
    text = shown[0]
    # the first frame, any later ones (tqdm redraws at most every 0.1 s), then the line cleared
    assert re.fullmatch(r"\rtiles\.png:   0%\|\s+\| 0/6 \[00:00<\?, \?tile/s\]"
                        r"(\rtiles\.png: [ \d]{3}%\|[^\r]*\| [1-6]/6 \[[^\r]*tile/s\])*\r {99}\r", text), text
    assert len(text.split("\r")[1]) == 99  # the terminal's width less one (tqdm)
    with _terminal(monkeypatch) as quiet:
        rec = batch.run_job(_job(src, tmp_path / "p.png", model="default", tile=32))
    assert rec["status"] == "written" and quiet == [""]
    assert np.array_equal(cv2.imread(str(tmp_path / "o.png")), cv2.imread(str(tmp_path / "p.png")))
    # the tile size reached the model: 6 tiles of 32 (+ overlap) at most, one call without
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(batch, "_TileBar", lambda name: _Recorder(name, calls))
    batch.run_job(_job(src, tmp_path / "q.png", model="default", tile=32, progress=True))
    assert calls == [("tiles.png", i, 6) for i in range(1, 7)]
    calls.clear()
    batch.run_job(_job(src, tmp_path / "r.png", model="default", progress=True))
    assert calls == [("tiles.png", 1, 1)]  # one tile: the bar (created on the 2nd tile) never shows


class _Recorder:
    def __init__(self, name: str, calls: list) -> None:
        self.name, self.calls = name, calls

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((self.name, done, total))

    def close(self) -> None:
        pass


def test_tile_bar_stays_off_when_stderr_is_not_a_terminal(monkeypatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = batch._TileBar("a.png")
    bar(1, 4)
    bar(4, 4)
    bar.close()
    assert bar.bar is not None and err.getvalue() == ""


def test_the_model_scale_backend_and_threads_reach_the_run(tmp_path: Path) -> None:
    from srzoo.runtime import upscaler

    img = _photo()
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), img)
    upscaler.clear_cache()
    # x2.5 of the built-in model: its x3 network, then an area shrink
    rec = batch.run_job(_job(src, tmp_path / "o.png", model="default", scale=2.5,
                             backend="onnxruntime", threads=1))
    assert rec["out_shape"] == (120, 160)
    keys = [(k[0].name, k[0].scale, k[1], k[3]) for k in upscaler._cache]
    assert keys == [("default", 3, "onnxruntime", 1)]
    up = next(iter(upscaler._cache.values()))
    ref = resize_down(up.upscale(img), (160, 120))
    assert np.array_equal(cv2.imread(str(tmp_path / "o.png")), ref)
    # a scale the model does not have: the message names the model
    bad = batch.run_job(_job(src, tmp_path / "b.png", model="default", scale=8))
    assert bad["error"] == ("model 'default' has no x8; it has scales x2, x3, x4 (srzoo runs a model "
                            "scale at or above the request, then shrinks): use a smaller scale or size, "
                            "or a model with a larger scale")


# --------------------------------------------------------------------------- partials
def test_partials_of_our_outputs_are_removed_others_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    names = [".a.png.123.part", ".b.png.9.part", ".a.png.part", "a.png.123.part", ".a.png.123.tmp",
             ".c.png.1.part", "a.png"]
    for n in names:
        (out / n).write_bytes(b"x")
    # the first output's folder does not exist: the others are still cleaned
    batch._clean_partials([str(tmp_path / "nowhere" / "z.png"), str(out / "a.png"),
                           "memory://w/c.png", str(out / "b.png")])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".a.png.part", "a.png.123.part", ".a.png.123.tmp", ".c.png.1.part", "a.png"])


# --------------------------------------------------------------------------- prefetch
def test_prefetch_fetches_only_the_scale_the_jobs_need(models_env, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())
    p = batch.plan([src], "fsrcnn-small", 3, output=tmp_path / "o")
    files = batch.prefetch(p, quiet=True)
    assert [Path(f).name for f in files] == ["FSRCNN-small_x3.pb"]
    assert Path(files[0]).is_file() and Path(files[0]).is_relative_to(models_env)
    p = batch.plan([src], "fsrcnn-small", 2.5, output=tmp_path / "o")  # the next scale up: x3
    assert [Path(f).name for f in batch.prefetch(p, quiet=True)] == ["FSRCNN-small_x3.pb"]
    p = batch.plan([src], "fsrcnn-small", None, width=200, output=tmp_path / "o")  # any: all of them
    assert sorted(Path(f).name for f in batch.prefetch(p, quiet=True)) == [
        "FSRCNN-small_x2.pb", "FSRCNN-small_x3.pb", "FSRCNN-small_x4.pb"]
    assert batch.prefetch(batch.plan([src], "bicubic", 2, output=tmp_path / "o")) == ()


# --------------------------------------------------------------------------- run_batch's defaults
def test_run_batch_defaults(models_env, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in" / "im.png"
    src.parent.mkdir()
    cv2.imwrite(str(src), _photo())
    out = tmp_path / "o"
    rep = batch.run_batch([src], output=out, progress=False)  # espcn, x2, serial
    assert (rep.written, rep.executor, rep.model, rep.label) == (1, "serial", "espcn", "x2")
    assert [p.name for p in out.iterdir()] == ["im_espcn_x2.png"]
    cv2.imwrite(str(out / "im_espcn_x2.png"), np.zeros((96, 128, 3), np.uint8))  # finished, right size
    old = (out / "im_espcn_x2.png").read_bytes()
    again = batch.run_batch([src], output=out, progress=False)  # not --skip-existing: redone
    assert (again.written, again.skipped) == (1, 0) and (out / "im_espcn_x2.png").read_bytes() != old
    # not --overwrite: an output that is an input is refused
    same = batch.run_batch([src], "bicubic", 2, output=src, progress=False)
    assert same.failed == 1 and same.results[0].error.startswith(f"output {src} is an input; refusing")
    # width and height: fit inside by default
    rep = batch.run_batch([src], "bicubic", None, width=100, height=100, output=tmp_path / "f",
                          progress=False)
    assert rep.results[0].out_shape == (75, 100)
    capsys.readouterr()
    # more jobs than cores: capped, with one note on stderr (not with progress=False)
    n = cores()
    rep = batch.run_batch([src], "bicubic", 2, output=tmp_path / "j", jobs=n + 5, progress=None)
    assert rep.written == 1 and rep.executor == ("serial" if n == 1 else f"{n} processes x 1 threads")
    err = capsys.readouterr().err
    assert err.startswith(f"srzoo: note: --jobs {n + 5} capped at {n}: this process may use {n} CPU "
                          "core(s), and each worker loads its own copy of the model "
                          "(--force-jobs runs them all)\n"), err
    batch.run_batch([src], "bicubic", 2, output=tmp_path / "k", jobs=n + 5, progress=False)
    assert capsys.readouterr().err == ""
    rep = batch.run_batch([src], "bicubic", 2, output=tmp_path / "m", jobs=n + 5, force_jobs=True)
    assert rep.executor == f"{n + 5} processes x 1 threads" and capsys.readouterr().err == ""


def test_the_scheduler_comes_from_the_argument_or_the_environment(tmp_path: Path, monkeypatch) -> None:
    """A Dask scheduler address that fails at once (no port): asked for by argument or by
    SRZOO_SCHEDULER, the batch goes to Dask (and says why it cannot), never silently serial."""
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())
    why = ("cannot use the Dask scheduler 'tcp://': missing port number in address '' (give "
           "tcp://HOST:8786 or 'local' to --scheduler / SRZOO_SCHEDULER)")
    monkeypatch.delenv("SRZOO_SCHEDULER", raising=False)
    with pytest.raises(SrzooError) as e:
        batch.run_batch([src], "bicubic", 2, output=tmp_path / "o", scheduler="tcp://", progress=False)
    assert str(e.value) == why
    monkeypatch.setenv("SRZOO_SCHEDULER", "tcp://")
    with pytest.raises(SrzooError) as e:
        batch.run_batch([src], "bicubic", 2, output=tmp_path / "o", progress=False)
    assert str(e.value) == why
    assert not (tmp_path / "o").exists()


def test_prefetch_of_a_scale_between_the_models(models_env, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())
    p = batch.plan([src], "lapsrn", 3, output=tmp_path / "o")  # LapSRN has x2, x4, x8: x4 runs
    assert [Path(f).name for f in batch.prefetch(p, quiet=True)] == ["LapSRN_x4.pb"]


def test_quiet_downloads_stay_off_the_terminal(srzoo_env, tmp_path: Path, monkeypatch) -> None:
    """On a terminal a download shows a bar unless asked to be quiet: prefetch(quiet=True)
    and run_batch(progress=False) show nothing; prefetch(quiet=None) shows it."""
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())
    with _terminal(monkeypatch) as shown:
        batch.prefetch(batch.plan([src], "fsrcnn-small", 2, output=tmp_path / "o"), quiet=True)
        rep = batch.run_batch([src], "fsrcnn-small", 3, output=tmp_path / "o", progress=False)
    assert rep.written == 1 and shown == [""]
    with _terminal(monkeypatch) as shown:
        batch.prefetch(batch.plan([src], "fsrcnn-small", 4, output=tmp_path / "o"), quiet=None)
    assert "FSRCNN-small_x4.pb" in shown[0], shown


def test_run_batch_passes_every_option_on(tmp_path: Path, monkeypatch) -> None:
    from srzoo.runtime import upscaler

    img = _photo(96, 128)
    src = tmp_path / "in.jpg"
    _jpeg_with_exif(src, img)
    upscaler.clear_cache()
    calls: list = []
    monkeypatch.setattr(batch, "_TileBar", lambda name: _Recorder(name, calls))
    rep = batch.run_batch([src], "default", None, output=src, width=100, height=100, stretch=True,
                          format="jpg", quality=30, overwrite=True, tile=32, backend="onnxruntime",
                          threads=1, progress=True)
    assert rep.written == 1 and rep.results[0].output == src and rep.results[0].out_shape == (100, 100)
    with Image.open(src) as im:
        assert im.size == (100, 100) and im.getexif()[0x010F] == "srzoo-test"
        ok, ref = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 30])
        with Image.open(io.BytesIO(ref.tobytes())) as r:
            assert im.quantization == r.quantization
    assert calls == [("in.jpg", i, 6) for i in range(1, 7)]  # 128 x 96 in tiles of 32 (+ overlap)
    assert [(k[0].name, k[0].scale, k[1], k[3]) for k in upscaler._cache] == [("default", 2, "onnxruntime", 1)]
    png = batch.run_batch([tmp_path / "in.jpg"], "bicubic", 2, output=tmp_path / "o", format="png",
                          progress=False)
    assert png.results[0].output == tmp_path / "o" / "in_bicubic_x2.png"


def test_the_model_is_loaded_once_at_the_scale_that_runs(models_env, tmp_path: Path) -> None:
    """run_batch loads the model before any file (backend errors first): at the scale the
    jobs run, x4 for x3 of LapSRN (x2, x4, x8), which the job then reuses."""
    from srzoo.runtime import upscaler

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())
    upscaler.clear_cache()
    rep = batch.run_batch([src], "lapsrn", 3, output=tmp_path / "o", progress=False)
    assert rep.written == 1 and rep.results[0].out_shape == (144, 192)
    assert [(k[0].name, k[0].scale) for k in upscaler._cache] == [("lapsrn", 4)]


def test_the_batch_bar_on_a_terminal(tmp_path: Path, monkeypatch) -> None:
    """progress=None (the default): a bar over the images on a terminal from two images on,
    none for one image (its tiles get their own); never one when nothing runs."""
    a, b = tmp_path / "in" / "a.png", tmp_path / "in" / "b.png"
    a.parent.mkdir()
    cv2.imwrite(str(a), _photo())
    cv2.imwrite(str(b), _photo())
    with _terminal(monkeypatch) as two:
        batch.run_batch([a, b], "bicubic", 2, output=tmp_path / "o2")
    assert "bicubic x2: 100%|" in two[0] and "| 2/2 [" in two[0] and "img/s]" in two[0], two
    with _terminal(monkeypatch) as one:
        batch.run_batch([a], "bicubic", 2, output=tmp_path / "o1")
    assert one == [""]
    with _terminal(monkeypatch) as none:
        rep = batch.run_batch([tmp_path / "nothing*.png"], "bicubic", 2, output=tmp_path / "o0", progress=True)
    assert rep.failed == 1 and none == [""]


def _widths(text: str) -> list[int]:
    """The width of each bar frame drawn (tqdm pads a shorter frame to the previous one's length)."""
    return [len(fr.rstrip()) for fr in text.split("\r")[1:] if fr.strip()]


def test_the_bars_follow_a_resized_terminal(tqdm_clock, tmp_path: Path, monkeypatch) -> None:
    """The tile bar and the batch bar are redrawn at the terminal's new width when it is resized
    mid-run (tqdm draws one column short of it)."""
    term = Terminal(100)
    monkeypatch.setattr(sys, "stderr", term.file)
    bar = batch._TileBar("a.png")
    bar(0, 4)
    bar(1, 4)
    term.resize(60)
    bar(2, 4)
    bar(4, 4)
    bar.close()
    text = term.text()
    assert "a.png:" in text and _widths(text) == [99, 99, 99, 59, 59]

    srcs = []
    for name in "abc":
        srcs.append(tmp_path / "in" / f"{name}.png")
        srcs[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(srcs[-1]), _photo())
    term = Terminal(100)
    monkeypatch.setattr(sys, "stderr", term.file)
    rep = batch.run_batch(srcs, "bicubic", 2, output=tmp_path / "o", on_result=lambda r: term.resize(60))
    text = term.text()
    assert rep.written == 3 and "bicubic x2:" in text
    widths = _widths(text)
    assert widths[0] == 99 and set(widths[1:]) == {59}, widths


def test_the_model_loaded_first_is_the_one_the_jobs_use(tmp_path: Path) -> None:
    from srzoo.runtime import upscaler

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _photo())
    upscaler.clear_cache()
    rep = batch.run_batch([src], "default", 2, output=tmp_path / "o", backend="onnxruntime", threads=1,
                          progress=False)
    assert rep.written == 1
    assert [(k[0].name, k[0].scale, k[1], k[3]) for k in upscaler._cache] == [("default", 2, "onnxruntime", 1)]
