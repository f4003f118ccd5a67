"""Images larger than memory: chunked Dask arrays from and to Zarr / tiled TIFF."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.jobs import bigimage

zarr = pytest.importorskip("zarr")
tifffile = pytest.importorskip("tifffile")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def scene(shared_dir: Path, tmp_path: Path) -> tuple[np.ndarray, Path]:
    """A 300x410 colour image as a Zarr store with 100x100 chunks."""
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:300, :410]
    z = zarr.open(str(tmp_path / "in.zarr"), mode="w", shape=img.shape, chunks=(100, 100, 3),
                  dtype=img.dtype)
    z[:] = img
    return img, tmp_path / "in.zarr"


def test_chunked_equals_in_memory_tiled_path(models_env, scene, tmp_path):
    img, src = scene
    dst = bigimage.upscale_big(src, tmp_path / "out.zarr", "fsrcnn-small", 2, chunk=96)
    got = zarr.open(str(dst), mode="r")[:]
    assert got.shape == (600, 820, 3) and got.dtype == np.uint8
    tiled = srzoo.upscale(img, "fsrcnn-small", 2, tile=96)
    whole = srzoo.upscale(img, "fsrcnn-small", 2, tile=0)
    assert np.abs(got.astype(int) - tiled).max() <= 1
    assert np.abs(got.astype(int) - whole).max() <= 1
    # a tiled TIFF output holds the same pixels; nothing temporary is left beside it
    tif = bigimage.upscale_big(src, tmp_path / "out.tif", "fsrcnn-small", 2, chunk=96)
    assert np.array_equal(tifffile.imread(str(tif)), got)
    assert tifffile.TiffFile(str(tif)).pages[0].is_tiled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "out.tif", "out.zarr"]


def test_tiff_input_and_the_manifest_overlap_matters(models_env, scene, tmp_path):
    img, _ = scene
    tifffile.imwrite(str(tmp_path / "in.tif"), img, tile=(64, 64))
    entry = srzoo.get_model("espcn", 3)
    assert entry.receptive_field == 4  # from registry/espcn.toml
    out = bigimage.upscale_big(tmp_path / "in.tif", tmp_path / "o.zarr", "espcn", 3, chunk=64)
    got = zarr.open(str(out), mode="r")[:]
    whole = srzoo.upscale(img, "espcn", 3, tile=0)
    assert np.abs(got.astype(int) - whole).max() <= 1
    # without the overlap the chunk seams show: the manifest value is what makes it exact
    arr = bigimage.open_array(tmp_path / "in.tif", 64)
    seams = bigimage.upscale_array(arr, "espcn", 3, overlap=0).compute(scheduler="synchronous")
    assert np.abs(seams.astype(int) - whole).max() > 10


def test_array_inputs_grey_and_x3_tiff_tiles(models_env, scene, tmp_path):
    """NumPy and Dask arrays are sources too; a grey image at x3 goes to a TIFF
    whose tiles are multiples of 16 and of 3 (each tile is one input cell)."""
    dask_array = pytest.importorskip("dask.array")
    img, _ = scene
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    whole = srzoo.upscale(grey, "espcn", 3, tile=0)
    out = bigimage.upscale_big(grey, tmp_path / "g.tif", "espcn", 3, chunk=40)
    got = tifffile.imread(str(out))
    assert got.shape == (900, 1230) and tifffile.TiffFile(str(out)).pages[0].tilewidth == 96
    assert np.abs(got.astype(int) - whole).max() <= 1
    lazy = dask_array.from_array(grey, chunks=70)
    out = bigimage.upscale_big(lazy, tmp_path / "g.zarr", "espcn", 3, chunk=50)
    z = zarr.open(str(out), mode="r")
    assert z.chunks == (150, 150) and np.array_equal(z[:], got)


def test_bad_inputs_are_one_clear_error_and_leave_nothing(models_env, scene, tmp_path):
    _, src = scene
    with pytest.raises(srzoo.ImageError, match="no such file"):
        bigimage.upscale_big(tmp_path / "missing.zarr", tmp_path / "o.zarr", "espcn", 2)
    with pytest.raises(srzoo.SrzooError, match=r"\.zarr store or a \.tif"):
        bigimage.upscale_big(src, tmp_path / "o.png", "espcn", 2)
    (tmp_path / "junk.tif").write_bytes(b"II*\0 not a tiff")
    with pytest.raises(srzoo.ImageError, match="junk.tif: cannot open as a chunked image"):
        bigimage.upscale_big(tmp_path / "junk.tif", tmp_path / "o.zarr", "espcn", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "junk.tif"]


MEMORY_SCRIPT = textwrap.dedent("""
    import gc, sys
    import numpy as np, zarr, dask.array, cv2
    from srzoo.jobs import bigimage
    from srzoo.runtime import upscaler
    chunk, folder, sizes = int(sys.argv[1]), sys.argv[2], [int(n) for n in sys.argv[3:]]
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (chunk, chunk, 3), dtype=np.uint8)
    for n in sizes:
        z = zarr.open(f"{folder}/in{n}.zarr", mode="w", shape=(n, n, 3), chunks=(chunk, chunk, 3),
                      dtype=np.uint8)
        for y in range(0, n, chunk):    # written chunk by chunk: never whole in memory
            for x in range(0, n, chunk):
                z[y:y + chunk, x:x + chunk] = np.roll(tile, y + x, axis=1)
    warm = zarr.open(folder + "/warm.zarr", mode="w", shape=(64, 64, 3), chunks=(32, 32, 3),
                     dtype=np.uint8)
    warm[:] = 1
    bigimage.upscale_big(folder + "/warm.zarr", folder + "/warm_x2.zarr", "bicubic", 2, chunk=32)
    def kib(field):                     # this process's VmRSS / VmHWM (peak RSS), in KiB
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))
    gc.collect()
    before = kib("VmRSS")
    for n in sizes:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                # reset the peak to the current RSS (Linux >= 4.0)
        bigimage.upscale_big(f"{folder}/in{n}.zarr", f"{folder}/out{n}.zarr", "bicubic", 2,
                             chunk=chunk)
        print(n, (kib("VmHWM") - before) * 1024)
""")


def test_peak_memory_does_not_grow_with_the_image(models_env, tmp_path):
    """1024x1024 then 2048x2048 colour images (4x the area: 12 and 48 MiB out)
    upscaled x2 in 256-pixel cells, one after the other in one fresh process;
    the peak RSS (VmHWM, reset before each) is measured above the RSS after a
    warm-up. The peak growth for the larger must stay within 1.5 MiB of the
    smaller's (each task holds one padded window, 0.2 MiB in, 0.75 MiB out, and
    its intermediates: measured about 4.9 and 5.3 MiB), and far under the
    output. The earlier map_overlap design kept two rows of input chunks and
    fails this: 7.1 and 10.8 MiB, +3.7 MiB (27.6 and 35.7 MiB at 2048² and
    4096² in 512-pixel chunks, where this design gives 18.9 and 19.3)."""
    chunk, small, big = 256, 1024, 2048
    r = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(chunk), str(tmp_path),
                        str(small), str(big)],
                       capture_output=True, text=True,
                       # glibc raises its mmap threshold after the first freed large block and
                       # then keeps freed chunks in the heap: RSS would measure the allocator
                       env={**os.environ, "PYTHONPATH": str(REPO), "MALLOC_MMAP_THRESHOLD_": "131072"},
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    growth = dict(map(int, line.split()) for line in r.stdout.strip().splitlines()[-2:])
    print(f"peak RSS growth: {growth[small] / 2**20:.1f} MiB at {small}², "
          f"{growth[big] / 2**20:.1f} MiB at {big}²")
    out = zarr.open(str(tmp_path / f"out{big}.zarr"), mode="r")
    assert out.shape == (2 * big, 2 * big, 3) and out.nbytes == 48 * 2**20
    assert growth[small] > 2**20, "the measurement saw no task at all"
    assert growth[big] - growth[small] < 1.5 * 2**20, (
        f"peak RSS grew with the image: {growth[small] / 2**20:.1f} MiB at {small}², "
        f"{growth[big] / 2**20:.1f} MiB at {big}²")
    assert growth[big] < 12 * 2**20, f"peak RSS grew by {growth[big] / 2**20:.0f} MiB"
    # and the pixels are right: a window across cell corners equals cv2.resize's
    src = zarr.open(str(tmp_path / f"in{big}.zarr"), mode="r")
    ref = cv2.resize(src[240:290, 1014:1074], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out[500:560, 2048:2128], ref[20:80, 20:100])


def test_cli_chunk_option(models_env, scene, tmp_path, capsys):
    from srzoo.cli import main

    img, src = scene
    assert main(["upscale", str(src), "-m", "fsrcnn-small", "-s", "2", "--chunk", "128",
                 "-o", str(tmp_path / "o.tif")]) == 0
    got = tifffile.imread(str(tmp_path / "o.tif"))
    assert np.abs(got.astype(int) - srzoo.upscale(img, "fsrcnn-small", 2, tile=0)).max() <= 1
    assert main(["upscale", str(src), str(src), "-m", "espcn", "--chunk", "64",
                 "-o", str(tmp_path / "x.zarr")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["srzoo: error: --chunk takes one input (.zarr, .tif) and -o OUT.zarr or OUT.tif"]
    assert not (tmp_path / "x.zarr").exists()


def test_default_overlap_is_capped_as_for_in_memory_tiles(models_env):
    """RRDB's manifest gives its theoretical receptive field (350 px); a window of
    a huge image gets the same capped context as an in-memory tile (96 px, where
    RRDB's output is within one level: docs/photos-and-memory.md), not 350 px of
    context around every cell (about 8x the work for a 512 px chunk)."""
    entry = srzoo.get_model("realesrgan-x4plus-ncnn", 4)
    assert entry.receptive_field == 350
    assert bigimage._prepare(entry, 4, None)[2] == 96
    assert bigimage._prepare(entry, 4, 130)[2] == 130  # an explicit overlap is kept
    espcn = srzoo.get_model("espcn", 3)  # below the cap: the manifest value itself
    assert bigimage._prepare(espcn, 3, None)[2] == 4
