"""srzoo.runtime.pipeline's size and memory rules, message by message, and its tiling on
exact boxes (fast, no network: the mutation run of runtime/pipeline uses this file; the
end-to-end tiling is in test_tiling.py)."""

from __future__ import annotations

import numpy as np
import pytest

from srzoo.errors import ImageError, SrzooError
from srzoo.runtime import pipeline


@pytest.fixture
def low_memory(monkeypatch):
    """MemFree never enough, MemAvailable as the test sets it; no pixel limit in the way."""
    monkeypatch.setenv("SRZOO_MAX_PIXELS", str(2**40))
    monkeypatch.setattr(pipeline, "free_memory", lambda: 0)

    def set_available(n):
        monkeypatch.setattr(pipeline, "available_memory", lambda: n)
    return set_available


def test_memory_refusal_messages_in_mib_and_gib(low_memory):
    low_memory(2**30 - 1)
    # 16384 x 16384 x 4 channels x 1 byte: exactly 1 GiB, shown in GiB from 2**30 on
    with pytest.raises(ImageError) as e:
        pipeline.check_size(16384, 16384, 4, 1, 1)
    assert str(e.value) == ("image: the x1 result of a 16384x16384 input needs 1.0 GiB but only "
                            "1024.0 MiB of memory is available; use a smaller scale or crop the image")
    low_memory(5 * 2**20 + 2**19)
    with pytest.raises(ImageError) as e:  # 8192x6144 at x2, 3 channels of 2 bytes: 1.125 GiB
        pipeline.check_size(6144, 8192, 3, 2, 2, what="a.png")
    assert str(e.value).startswith("a.png: the x2 result of a 8192x6144 input needs 1.1 GiB but only "
                                   "5.5 MiB of memory is available")


def test_memory_refusal_counts_channels_and_knows_unknown(low_memory):
    low_memory(400)
    pipeline.check_size(10, 10, 1, 2, 1)  # 400 bytes: fits exactly
    pipeline.check_size(10, 10, 0, 2, 1)  # a 2-D grey image counts one channel
    with pytest.raises(ImageError, match=r"^image: the x2 result of a 10x10 input needs 0.0 MiB"):
        pipeline.check_size(10, 10, 2, 2, 1)  # 800 bytes
    with pytest.raises(ImageError):
        pipeline.check_size(10, 10, 1, 2, 2)  # 800 bytes: the item size counts
    with pytest.raises(ImageError):
        pipeline.check_size(10, 10, 1, 3, 1)  # 900 bytes: the scale counts twice
    low_memory(0)  # 0 or None: unknown, never a refusal
    pipeline.check_size(1000, 1000, 3, 4, 4)
    low_memory(None)
    pipeline.check_size(1000, 1000, 3, 4, 4)


def test_memory_free_is_enough_without_asking_available(monkeypatch):
    monkeypatch.setattr(pipeline, "free_memory", lambda: 400)
    monkeypatch.setattr(pipeline, "available_memory", lambda: 1)
    pipeline.check_size(10, 10, 1, 2, 1)  # 400 <= MemFree: never reads MemAvailable
    with pytest.raises(ImageError, match="needs 0.0 MiB but only 0.0 MiB"):
        pipeline.check_size(10, 10, 1, 2, 2)
    monkeypatch.setattr(pipeline, "free_memory", lambda: None)
    monkeypatch.setattr(pipeline, "available_memory", lambda: 400)
    pipeline.check_size(10, 10, 1, 2, 1)


def test_pixel_limit_message(monkeypatch):
    monkeypatch.setattr(pipeline, "free_memory", lambda: 10**15)
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "399")
    with pytest.raises(ImageError) as e:
        pipeline.check_size(10, 10, 3, 2, 4, what="b.png")
    assert str(e.value) == ("b.png: a 10x10 input at x2 gives 20x20 (400 pixels, 0.0 GiB), above the "
                            "limit of 399 pixels; downscale or crop it, or raise SRZOO_MAX_PIXELS")
    with pytest.raises(ImageError, match=r"^image: a 10x10 input at x2 gives 20x20 \(400 pixels, 1.6 GiB\)"):
        pipeline.check_size(10, 10, 2**20, 2, 4)  # 400 px x 2**20 channels x 4 bytes = 1.5625 GiB
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "400")
    pipeline.check_size(10, 10, 3, 2, 4)  # exactly the limit: accepted


def test_budget_tile_sides():
    """The largest side whose network input, (side + 2 overlap) squared, fits the
    budget's pixels (tiles() then spreads and shrinks the windows); values worked
    out by hand from that rule."""
    assert pipeline.budget_tile(100, 100, 1000.0, 100 * 100 * 1000, 8) is None  # fits exactly
    # 101 columns do not fit in 10000 pixels: a 100 px window, 100 - 2 x 8 = 84 of core
    assert pipeline.budget_tile(100, 101, 1000.0, 100 * 100 * 1000, 8) == 84
    assert pipeline.budget_tile(100, 100, 0.5, 100 * 100, 8) is None  # below 1 byte/pixel counts 1
    assert pipeline.budget_tile(100, 100, 0.5, 100 * 100 - 1, 8) == 83  # a 99 px window
    assert pipeline.budget_tile(1000, 1000, 1000.0, 256 * 256 * 1000, 8) == 240
    assert pipeline.budget_tile(1000, 1000, 1000.0, 256 * 256 * 1000, 8, pre=2) == 112  # 256 // 2 - 16
    # pre-upsampled x2: 100x100 network pixels in 2500: the side floors at MIN_TILE
    assert pipeline.budget_tile(50, 50, 1000.0, 50 * 50 * 1000, 8, pre=2) == pipeline.MIN_TILE == 32
    assert pipeline.budget_tile(50, 50, 1000.0, 50 * 50 * 1000, 8) is None  # the same without pre fits
    assert pipeline.budget_tile(300, 300, 1.0, 200 * 200, 0) == 200
    # taller or wider, the side is the same whole number (tiles() steps by it)
    got = pipeline.budget_tile(168, 100, 1.0, 100 * 100, 8)
    assert got == 84 and type(got) is int
    assert pipeline.budget_tile(100, 168, 1.0, 100 * 100, 8) == 84
    # the largest that fits: one more pixel of side would not
    for budget in (5000, 9999, 40000, 123457):
        side = pipeline.budget_tile(400, 400, 1.0, budget, 10)
        assert (side + 20) ** 2 <= budget < (side + 21) ** 2


def test_tiles_boxes():
    # 7 columns, 4 px cores, 1 px of context: two 5-px windows clamped inside the image
    # (0-5 and 2-7), cores cut half-way through their overlap (0-3, 3-7); one row of 5
    got = list(pipeline.tiles(5, 7, 4, 1))
    assert got == [((0, 5, 0, 3), (0, 5, 0, 5)), ((0, 5, 3, 7), (0, 5, 2, 7))]
    assert list(pipeline.tiles(4, 4, 4, 2)) == [((0, 4, 0, 4), (0, 4, 0, 4))]
    # 500 px, 84 px cores, 96 px of context (realesrgan at the default budget): four windows
    # of 269 px (one size), every core with >= 96 px of context wherever it has a neighbour
    assert pipeline.windows(500, 84, 96) == [(0, 173, 0, 269), (173, 250, 77, 346), (250, 327, 154, 423),
                                             (327, 500, 231, 500)]


def test_run_tiled_pastes_each_core_at_its_place():
    img = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    seen, calls = [], []

    def fn(t):  # "x2": each pixel repeated; also reports the padded tile it got
        seen.append(t.shape)
        return {2: np.repeat(np.repeat(t, 2, 0), 2, 1), 1: t.copy()}
    out = pipeline.run_tiled(img, fn, (2, 1), 4, 1, progress=lambda d, t: calls.append((d, t)))
    assert np.array_equal(out[2], np.repeat(np.repeat(img, 2, 0), 2, 1)) and out[2].dtype == np.float32
    assert np.array_equal(out[1], img)
    assert seen == [(5, 5), (5, 5)] and calls == [(1, 2), (2, 2)]  # one input shape
    assert np.array_equal(pipeline.run_tiled(img[:, :, None], fn, (1,), 3, 0)[1], img[:, :, None])
    with pytest.raises(SrzooError, match=r"^overlap must be >= 0, got -1$"):
        pipeline.run_tiled(img, fn, (2,), 4, -1)
