"""Memory is a budget: automatic tiles are sized from the model's measured memory per
pixel so that a run stays under ``memory=`` / ``SRZOO_MEMORY``, and the result is the
untiled one. Peak memory is the VmHWM of a fresh subprocess running a real model
(realesr-animevideov3, the smallest Real-ESRGAN network, on a real 360x300 crop so
that the test stays short; realesrgan-x4plus on the 500x480 image is in the report)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo import config
from srzoo.runtime import pipeline

MODEL, SCALE = "realesr-animevideov3-ncnn", 2

#: the default budget follows the process's real resident memory (run in a fresh process)
RSS_SCRIPT = r"""
import os
os.environ.pop("SRZOO_MEMORY", None)
import numpy as np
from srzoo.runtime import pipeline
rss = pipeline.resident_memory()
assert rss is not None and 20 << 20 < rss < 600 << 20, rss
held = np.ones(400 << 20, np.uint8)  # the process grows by 400 MB: the default shrinks
now = pipeline.resident_memory()
assert now >= rss + (390 << 20), (rss, now)
assert pipeline.memory_budget() <= pipeline.DEFAULT_PEAK - now, (pipeline.memory_budget(), now)
base = min(pipeline.DEFAULT_MEMORY, pipeline.available_memory() // 4)  # the rules without the process
assert base >= 400 << 20, base  # (this test needs 1.6 GB available)
reserve = pipeline.DEFAULT_PEAK - now - base * 7 // 8  # room for 7/8 of the base: that is the budget
assert abs(pipeline.memory_budget(None, reserve) - base * 7 // 8) <= 32 << 20, (pipeline.memory_budget(None, reserve), base)
# a process past the peak still gets three quarters (not 64 MB: tiles of mostly overlap)
assert pipeline.memory_budget(None, pipeline.DEFAULT_PEAK) == max(pipeline.MIN_MEMORY, base * 3 // 4)
assert pipeline.memory_budget("3G", pipeline.DEFAULT_PEAK) == 3 << 30  # asked for: kept
del held
print("ok")
"""

SCRIPT = r"""
import json, sys, numpy as np, cv2, srzoo
img = cv2.imread(sys.argv[1])
up = srzoo.Upscaler(sys.argv[2], int(sys.argv[3]), backend="onnxruntime:cpu")
up(img[:16, :16])  # loaded and warm: what follows is the run itself
def status():
    with open("/proc/self/status") as f:
        return {k: int(v.split()[0]) * 1024 for k, v in (ln.split(":", 1) for ln in f)
                if k in ("VmRSS", "VmHWM")}
before = status()["VmRSS"]
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
out = up.upscale(img, memory=sys.argv[4])
np.save(sys.argv[5], out)
print(json.dumps({"grown": status()["VmHWM"] - before, "bpp": up._bpp}))
"""


def run_measured(tmp_path: Path, image: Path, memory: str) -> tuple[int, dict, np.ndarray]:
    out = tmp_path / f"out-{memory}.npy"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(image), MODEL, str(SCALE), memory, str(out)],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    return int(rec["grown"]), rec["bpp"], np.load(out)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_memory_stays_under_the_budget_and_output_is_unchanged(models_env, shared_dir, tmp_path):
    crop = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:300, :360]
    image = tmp_path / "crop.png"
    cv2.imwrite(str(image), crop)
    whole_grown, _, whole = run_measured(tmp_path, image, "0")  # 0: no budget, one run
    budget = 16 << 20
    grown, bpp, tiled = run_measured(tmp_path, image, "16M")
    (per_pixel,) = bpp.values()
    # measured (onnxruntime 1.32, 2 cores): ~960 bytes per input pixel; untiled the run
    # grows by ~100 MB, with a 16 MB budget by ~25-35 MB (the budget, plus the
    # output and the engine's own buffers)
    assert 200 < per_pixel < 20000
    px = crop.shape[0] * crop.shape[1]
    # the measurement does not under-estimate what a whole run takes (it may over-estimate:
    # tiles are then smaller than they could be, never too large)
    assert 0.9 * whole_grown <= px * per_pixel <= 3 * whole_grown, (whole_grown, px * per_pixel)
    assert grown < 0.6 * whole_grown and grown < 2.5 * budget, (grown, whole_grown)
    assert tiled.shape == whole.shape == (600, 720, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1  # tiles keep the receptive field
    # measured once: remembered beside the autotune choices
    store = json.loads((models_env / "autotune.json").read_text())
    assert any(k.startswith("memory-") and v["model"] == MODEL for k, v in store.items())


def test_budget_rules_and_one_line_errors(monkeypatch):
    # the whole image fits: no tiles; else the side that fits, overlap counted
    assert pipeline.budget_tile(100, 100, 1000.0, 100 * 100 * 1000, 8) is None
    assert pipeline.budget_tile(1000, 1000, 1000.0, 256 * 256 * 1000, 8) == 240  # 240 + 2 x 8 = 256
    # the windows tiles() makes of it fit the budget, all of one size, evened out
    # (5 windows of 213, not 4 of 256 and a thin one)
    assert {(b - a, d - c) for _, (a, b, c, d) in pipeline.tiles(1000, 1000, 240, 8)} == {(213, 213)}
    assert len(list(pipeline.tiles(1000, 1000, 240, 8))) == 25
    assert pipeline.budget_tile(1000, 1000, 1000.0, 256 * 256 * 1000, 8, pre=2) == 112
    assert pipeline.budget_tile(1000, 1000, 1e9, 1000, 8) == pipeline.MIN_TILE
    monkeypatch.setenv("SRZOO_MEMORY", "1.5G")
    assert pipeline.memory_budget() == int(1.5 * 2**30)
    assert pipeline.memory_budget("800M") == 800 * 2**20 and pipeline.memory_budget(0) is None
    monkeypatch.setenv("SRZOO_MEMORY", "0")
    assert pipeline.memory_budget() is None
    monkeypatch.delenv("SRZOO_MEMORY")
    assert 64 << 20 <= pipeline.memory_budget() <= pipeline.DEFAULT_MEMORY
    # the default leaves room under DEFAULT_PEAK for what the process holds and the
    # result's buffers: in a fresh process (this one's resident memory depends on what
    # the suite loaded before: 1.8 GB in CI, over the peak once 400 MB are added)
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "SRZOO_MEMORY"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
    monkeypatch.setenv("SRZOO_MEMORY", "lots")
    with pytest.raises(srzoo.ConfigError, match=r"SRZOO_MEMORY='lots' is not valid: expected a size"):
        config.get("SRZOO_MEMORY")
    with pytest.raises(srzoo.SrzooError, match=r"memory='2 GB please' is not valid"):
        pipeline.memory_budget("2 GB please")
    with pytest.raises(srzoo.SrzooError, match="memory must be"):
        pipeline.memory_budget(-1)
