"""``auto`` chooses at the size that runs: the size class is the network input's
(a tile with its overlap when tiled), the trial is measured at that size or
extrapolated to it, and memory counts. Real engines on espcn; nothing is timed
here (which engine wins is the bench's business: bench/photo_memory.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.runtime import autotune

pytest.importorskip("onnxruntime")


def _records(cache) -> list[dict]:
    return [v for k, v in json.loads((cache / "autotune.json").read_text()).items()
            if not k.startswith("memory-") and v.get("model") == "espcn"]


def test_choice_is_keyed_by_the_size_that_runs_tiles_included(models_env, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    autotune.forget()
    img = cv2.resize(cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png")), (600, 600))
    up = srzoo.Upscaler("espcn", 2, memory=0)
    assert set(up._choices) == {"medium"}  # the constructor's guess: the class's own size
    # in 64 px tiles the network sees 72x72 (64 + 4 px of overlap on both sides):
    # a small-class trial at 72x72, not the medium choice of the 600x600 image
    tiled = up(img, tile=64)
    small = up._choices["small"]
    assert small.how == "measured" and small.trial == "72x72"
    assert set(small.times_ms) == {"onnxruntime:cpu", "openvino:cpu", "opencv:cpu"}
    (rec,) = [r for r in _records(models_env) if r["class"] == "small"]
    assert rec["size"] == [72, 72] and rec["backend"] == up.backend
    # the same image untiled is another class: the small trial is not reused for it
    whole = up(img, tile=0)
    assert up._choices["medium"].size_class == "medium" and up.backend == str(up._choices["medium"].backend)
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    # a new process (a new Upscaler) finds both in the cache, each under its class
    again = srzoo.Upscaler("espcn", 2, memory=0)
    again(img[:100, :100])
    assert again._choices["small"].how == "cached" and again._choices["small"].trial == "72x72"
    assert sorted(r["class"] for r in _records(models_env)) == ["medium", "small"]


def test_heavy_trial_of_a_strip_grows_its_long_side(models_env, shared_dir, monkeypatch):
    """A network input narrower than the smallest trial (16 rows): the second trial size
    doubles the side that is still below the target, never shrinks the other."""
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    autotune.forget()
    monkeypatch.setattr(autotune, "RUN_BUDGET", 1e-9)
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:16, :200]
    up = srzoo.Upscaler("espcn", 2)
    out = up(img, tile=0)
    assert out.shape == (32, 400, 3)
    ch = up._choices["small"]  # the image's class (the constructor's guess was for "medium")
    assert ch.how == "measured" and ch.trial == "32x32 and 64x32, extrapolated to 200x16", ch.trial


def test_heavy_trials_are_extrapolated_and_memory_ranks(models_env, shared_dir, monkeypatch):
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    autotune.forget()
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:256, :384]
    # a model "too slow" for a full-size trial (a run budget of ~0): timed at 32x32 and
    # 64x64 (both sides doubled), extrapolated to the size that runs; a 1 MB budget that a 384x256 run exceeds
    # on every engine: each engine's memory per pixel is measured and counted
    monkeypatch.setattr(autotune, "RUN_BUDGET", 1e-9)
    monkeypatch.setattr(autotune, "_memory", {})  # measured here, not remembered by an earlier test
    up = srzoo.Upscaler("espcn", 2, memory="1M")
    assert not up._choices["medium"].memory  # the constructor's guess: no image, no memory
    up(img, tile=0)
    ch = up._choices["medium/memory"]
    assert ch.how == "measured" and ch.trial == "32x32 and 64x64, extrapolated to 384x256"
    assert set(ch.memory) == set(ch.times_ms) == {"onnxruntime:cpu", "openvino:cpu", "opencv:cpu"}
    # bytes per pixel (measured) x 256*384: every engine needs more than 1 MB
    assert all(v > 2**20 for v in ch.memory.values()) and sorted(ch.over_budget) == sorted(ch.memory)
    assert "over the memory budget" in up.backend_reason
    store = json.loads((models_env / "autotune.json").read_text())
    bpp = {v["backend"]: v["bytes_per_pixel"] for k, v in store.items() if k.startswith("memory-")
           and v["model"] == "espcn"}
    assert {k: int(bpp[k] * 256 * 384) for k in ch.memory} == ch.memory
    # with a budget that one engine fits and the others not, the one that fits wins
    # whatever the times say: measured now, and reused from the store (ranked again)
    mid = sorted(ch.memory.values())[0] + 1
    for how in ("measured", "cached"):
        if how == "measured":
            autotune.forget()
        up2 = srzoo.Upscaler("espcn", 2, memory=mid)
        up2(img, tile=0)
        ch2 = up2._choices["medium/memory"]
        fits = [k for k, v in ch2.memory.items() if v <= mid]
        assert ch2.how == how and fits and ch2.over_budget and up2.backend in fits
        assert up2.backend == min(fits, key=ch2.times_ms.get)


def test_engines_over_the_budget_are_ranked_by_their_tiled_run(models_env, shared_dir, monkeypatch):
    """With automatic tiling, an engine over the budget is not ranked last: it will run in
    tiles sized from its own memory per pixel (more memory: more, smaller windows), and it is
    timed as that tiled run. With ``tile=0`` (above) the old rule holds: over the budget, last."""
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    autotune.forget()
    monkeypatch.setattr(autotune, "RUN_BUDGET", 1e-9)
    monkeypatch.setattr(autotune, "_memory", {})
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:256, :384]
    up = srzoo.Upscaler("espcn", 2, memory="1M")
    out = up(img)
    assert out.shape == (512, 768, 3)
    ch = up._choices["medium/memory/tiled"]  # chosen for the whole image, every engine over 1 MB
    assert ch.how == "measured" and set(ch.memory) == set(ch.times_ms) == set(ch.tiles)
    assert all(v > 2**20 for v in ch.memory.values()) and ch.over_budget == []
    assert all(n > 1 for n in ch.tiles.values())
    by_memory = sorted(ch.tiles, key=ch.memory.get)  # more memory per pixel: never fewer tiles
    assert [ch.tiles[k] for k in by_memory] == sorted(ch.tiles[k] for k in by_memory)
    assert str(ch.backend) == min(ch.times_ms, key=ch.times_ms.get)
    assert "over the memory budget" not in ch.reason and f"({ch.tiles[str(ch.backend)]} tiles)" in ch.reason
    # remembered apart from the untiled rule's choice, and reused as it was
    store = json.loads((models_env / "autotune.json").read_text())
    (rec,) = [v for k, v in store.items() if v.get("tiles") and v.get("model") == "espcn" and v["class"] == "medium"]
    assert rec["tiles"] == ch.tiles and rec["backend"] == str(ch.backend)
    up2 = srzoo.Upscaler("espcn", 2, memory="1M")
    up2(img)
    ch2 = up2._choices["medium/memory/tiled"]
    assert ch2.how == "cached" and str(ch2.backend) == str(ch.backend) and ch2.tiles == ch.tiles and ch2.over_budget == []


def test_trials_hold_one_losing_runner_at_a_time(models_env, monkeypatch):
    """While auto tries the engines, only the leading candidate's runner is kept beside
    the one being tried (every engine's pools held at once made a first auto run of
    realesrgan-x4plus on a 500x480 photo peak at 2.6 GB): at most two runners are alive
    at any load, and one after the choice."""
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    autotune.forget()
    from srzoo.runtime.upscaler import Upscaler

    alive: list[int] = []
    real = Upscaler._load

    def counting(self, resolved):
        runner = real(self, resolved)
        alive.append(len(self._runners))
        return runner

    monkeypatch.setattr(Upscaler, "_load", counting)
    up = srzoo.Upscaler("fsrcnn-small", 2)
    assert set(up._choices["medium"].times_ms) == {"onnxruntime:cpu", "openvino:cpu", "opencv:cpu"}
    assert len(alive) >= 3 and max(alive) == 2, alive
    assert list(up._runners) == [up.backend]


def test_memory_probes_run_before_the_candidates_trial_runner_loads(models_env, shared_dir,
                                                                     monkeypatch):
    """A first auto run that counts memory measures each engine's memory per pixel (a
    fresh runner of its own) while only the leading candidate is loaded, not beside
    the candidate's trial runner too: at most two runners at once (the leader's and the
    probe's), so the trials add no third engine's pools on top."""
    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    autotune.forget()
    monkeypatch.setattr(autotune, "_memory", {})  # measured here, not remembered by an earlier test
    from srzoo.runtime.upscaler import Upscaler

    seen: list[tuple[str, list[str]]] = []
    real = Upscaler._bytes_per_pixel

    def spy(self, backend=None):
        if backend is not None:
            seen.append((str(backend), list(self._runners)))
        return real(self, backend)

    monkeypatch.setattr(Upscaler, "_bytes_per_pixel", spy)
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:256, :384]
    up = srzoo.Upscaler("espcn", 2, memory="1M")
    up(img, tile=0)
    assert sorted(b for b, _ in seen) == ["onnxruntime:cpu", "opencv:cpu", "openvino:cpu"]
    for backend, loaded in seen:
        assert backend not in loaded and len(loaded) <= 1, seen
    assert list(up._runners) == [up.backend]
