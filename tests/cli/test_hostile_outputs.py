"""Never overwrite what is not ours: report files and converted models written onto
devices, FIFOs and symlinks are written through, never replaced by a regular file;
`convert` never replaces its input, nor an existing output without --overwrite;
a full disk is one line naming the file. Real device nodes (mknod, as root),
real FIFOs, real tmpfs mounts, real models from ../shared."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from diskfaults import mount_tmpfs, umount

from srzoo import fsutil
from srzoo.cli import main

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="device nodes and mounts need root")


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("srzoo: error: "), err
    return lines[0]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def chardev(path: Path, minor: int) -> Path:
    """A real character device node: minor 3 is /dev/null, 7 is /dev/full."""
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return path


@pytest.fixture
def image(tmp_path, shared_dir) -> Path:
    p = tmp_path / "in.png"
    cv2.imwrite(str(p), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:40, :48])
    return p


@pytest.fixture
def carn(tmp_path, shared_dir) -> Path:
    p = tmp_path / "carn_m.pth"
    shutil.copyfile(shared_dir / "models" / "carn" / "carn_m.pth", p)
    return p


# --------------------------------------------------------------------------- fsutil itself
def test_atomic_write_keeps_devices_fifos_and_links(tmp_path):
    reg = tmp_path / "a.json"
    fsutil.atomic_write(reg, "one")
    ino = reg.stat().st_ino
    fsutil.atomic_write(reg, "two")
    assert reg.read_text() == "two" and reg.stat().st_ino != ino  # replaced atomically
    link = tmp_path / "link.json"
    link.symlink_to(reg)
    fsutil.atomic_write(link, "three")
    assert link.is_symlink() and reg.read_text() == "three"  # the link stays, its target changes
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    t.start()
    fsutil.atomic_write(fifo, "through the pipe")
    t.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "link.json", "pipe"]  # no temp left
    with pytest.raises(IsADirectoryError):
        fsutil.atomic_write(tmp_path, "x")


@ROOT_ONLY
def test_atomic_write_to_full_device_is_a_disk_full_line(tmp_path):
    full = chardev(tmp_path / "full", 7)
    with pytest.raises(OSError) as e:
        fsutil.atomic_write(full, "x" * 10)
    assert fsutil.describe(e.value, full) == f"disk full writing {full}: free some space or write elsewhere"
    assert stat.S_ISCHR(os.lstat(full).st_mode)


# --------------------------------------------------------------------------- --json-report
@ROOT_ONLY
def test_json_report_onto_a_full_device_is_refused_and_the_device_kept(tmp_path, image, capsys):
    full = chardev(tmp_path / "full", 7)
    code = main(["upscale", str(image), "-o", str(tmp_path / "x.png"), "-q", "--json-report", str(full)])
    err = capsys.readouterr().err
    assert code == 1
    assert one_error_line(err) == (f"srzoo: error: JSON report: disk full writing {full}: "
                                   "free some space or write elsewhere")
    assert stat.S_ISCHR(os.lstat(full).st_mode) and os.major(os.lstat(full).st_rdev) == 1
    assert (tmp_path / "x.png").is_file()  # the image itself was written


@ROOT_ONLY
def test_json_report_onto_a_null_device_is_written_through(tmp_path, image, capsys):
    null = chardev(tmp_path / "null", 3)
    assert main(["upscale", str(image), "-o", str(tmp_path / "x.png"), "-q", "--json-report", str(null)]) == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_json_report_through_a_stdout_symlink_goes_to_stdout(tmp_path, image):
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    r = subprocess.run([sys.executable, "-m", "srzoo", "upscale", str(image), "-o", str(tmp_path / "x.png"),
                        "-q", "--json-report", str(link)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)  # the report went to our pipe
    assert report["written"] == 1 and report["files"][0]["status"] == "written"
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_json_report_into_a_fifo(tmp_path, image, capsys):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    t.start()
    assert main(["upscale", str(image), "-o", str(tmp_path / "x.png"), "-q", "--json-report", str(fifo)]) == 0
    t.join(30)
    assert json.loads(got[0])["written"] == 1 and stat.S_ISFIFO(os.lstat(fifo).st_mode)


@ROOT_ONLY
def test_json_report_on_a_full_tmpfs_names_the_file(tmp_path, image, capsys):
    mnt = tmp_path / "small"
    if not mount_tmpfs(mnt, "size=4k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        (mnt / "filler").write_bytes(b"x" * 4096)
        code = main(["upscale", str(image), "-o", str(tmp_path / "x.png"), "-q",
                     "--json-report", str(mnt / "r.json")])
        assert code == 1
        assert one_error_line(capsys.readouterr().err) == (
            f"srzoo: error: JSON report: disk full writing {mnt / 'r.json'}: free some space or write elsewhere")
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"]  # nothing half-written
    finally:
        umount(mnt)


# --------------------------------------------------------------------------- convert -o
def test_convert_never_replaces_an_output_without_overwrite_nor_its_input(carn, tmp_path, capsys):
    assert main(["convert", str(carn), "--scale", "2"]) == 0
    out = tmp_path / "carn_m-x2.onnx"
    first = sha(out)
    capsys.readouterr()
    out.write_bytes(b"my own file")
    assert main(["convert", str(carn), "--scale", "2"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"srzoo: error: {out}: exists; refusing to replace it (use --overwrite, or -o another file)")
    assert out.read_bytes() == b"my own file"
    assert main(["convert", str(carn), "--scale", "2", "--overwrite"]) == 0
    assert sha(out) == first
    capsys.readouterr()
    # its own input: never, not even with --overwrite (also through another name for it)
    before = sha(carn)
    alias = tmp_path / "alias.pth"
    alias.symlink_to(carn)
    for target in (carn, alias):
        assert main(["convert", str(carn), "--scale", "2", "-o", str(target), "--overwrite"]) == 1
        assert one_error_line(capsys.readouterr().err) == (
            f"srzoo: error: {target}: is the input {carn}; refusing to overwrite it (give -o another file)")
    assert sha(carn) == before


@ROOT_ONLY
def test_convert_onto_a_device_writes_through(carn, tmp_path, capsys):
    null = chardev(tmp_path / "null", 3)
    assert main(["convert", str(carn), "--scale", "2", "-o", str(null)]) == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    full = chardev(tmp_path / "full", 7)
    capsys.readouterr()
    assert main(["convert", str(carn), "--scale", "2", "-o", str(full)]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"srzoo: error: disk full writing {full}: free some space or write elsewhere")
    assert stat.S_ISCHR(os.lstat(full).st_mode)


@ROOT_ONLY
def test_convert_on_a_full_tmpfs_names_the_file(carn, tmp_path, capsys):
    mnt = tmp_path / "small"
    if not mount_tmpfs(mnt, "size=64k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        assert main(["convert", str(carn), "--scale", "2", "-o", str(mnt / "c.onnx")]) == 1
        assert one_error_line(capsys.readouterr().err) == (
            f"srzoo: error: disk full writing {mnt / 'c.onnx'}: free some space or write elsewhere")
        assert list(mnt.iterdir()) == []
    finally:
        umount(mnt)


@ROOT_ONLY
def test_disk_full_while_deriving_names_the_file(srzoo_env, image, tmp_path, capsys):
    """The cache holds carn_m.pth (1.67 MB) but not its 1.59 MB ONNX as well."""
    if not mount_tmpfs(srzoo_env, "size=1800k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        code = main(["upscale", str(image), "-m", "carn-m", "-s", "2", "-o", str(tmp_path / "x.png"), "-q"])
        line = one_error_line(capsys.readouterr().err)
        assert code == 1
        assert line.startswith(f"srzoo: error: converting carn-m (carn_m.pth) to ONNX: disk full writing "
                               f"{srzoo_env}/.incomplete/carn-m-x2-pytorch-onnx-"), line
        assert line.endswith(f"(cache {srzoo_env}; set SRZOO_CACHE_DIR to use another folder); nothing was kept")
        assert list((srzoo_env / ".incomplete").iterdir()) == []
        assert not (srzoo_env / "derived").exists() or list((srzoo_env / "derived").iterdir()) == []
    finally:
        umount(srzoo_env)


def test_image_output_through_a_link_to_a_device_is_written_through(tmp_path, image, capsys):
    """-o out.png where out.png is a link to a FIFO: the image goes through the pipe; the
    link and the FIFO stay (an atomic replace would have put a regular file there)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "out.png"
    link.symlink_to(fifo)
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    t.start()
    assert main(["upscale", str(image), "-m", "bicubic", "-o", str(link), "-q"]) == 0
    t.join(30)
    decoded = cv2.imdecode(np.frombuffer(got[0], np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (80, 96, 3)
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)


# --------------------------------------------------------------------------- videos and big images
def test_video_output_through_a_link_to_a_fifo(tmp_path, capsys):
    av = pytest.importorskip("av")
    src = tmp_path / "in.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8),
                                                           format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "out.mp4"
    link.symlink_to(fifo)
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    t.start()
    assert main(["upscale", str(src), "-m", "bicubic", "-o", str(link), "-q"]) == 0
    t.join(60)
    (tmp_path / "copy.mp4").write_bytes(got[0])
    with av.open(str(tmp_path / "copy.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (96, 128, 3)
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.mp4", "in.mp4", "out.mp4", "pipe"]


def test_big_image_never_deletes_a_folder_that_is_not_its_zarr(tmp_path, shared_dir):
    tifffile = pytest.importorskip("tifffile")
    pytest.importorskip("zarr")
    from srzoo import SrzooError
    from srzoo.jobs import bigimage

    src = tmp_path / "in.tif"
    tifffile.imwrite(str(src), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:64, :64], tile=(32, 32))
    mine = tmp_path / "photos.zarr"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(SrzooError, match=r"photos.zarr: exists and is not a Zarr store srzoo wrote; "
                                         r"refusing to delete it"):
        bigimage.upscale_big(src, mine, "bicubic", 2, chunk=32)
    assert (mine / "holiday.jpg").read_bytes() == b"precious"
    # its own earlier output is replaced
    out = tmp_path / "out.zarr"
    bigimage.upscale_big(src, out, "bicubic", 2, chunk=32)
    bigimage.upscale_big(src, out, "bicubic", 2, chunk=32)
    import zarr

    assert zarr.open(str(out), mode="r").shape[:2] == (128, 128)


@ROOT_ONLY
def test_big_tiff_onto_a_device_link_is_written_through(tmp_path, shared_dir):
    tifffile = pytest.importorskip("tifffile")
    from srzoo.jobs import bigimage

    src = tmp_path / "in.tif"
    tifffile.imwrite(str(src), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:64, :64], tile=(32, 32))
    null = chardev(tmp_path / "null", 3)
    link = tmp_path / "out.tif"
    link.symlink_to(null)
    bigimage.upscale_big(src, link, "bicubic", 2, chunk=32)
    assert link.is_symlink() and stat.S_ISCHR(os.lstat(null).st_mode)
