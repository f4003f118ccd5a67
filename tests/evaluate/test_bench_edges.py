"""srzoo.evaluate.benchmark's runner and protocols at their edges: argument parsing and its
exact messages, the plan, the settings recorded, the rows of runs that fail, the protocols'
image loading. The fake model of test_bench.py (nearest-neighbour, no network) keeps each
test to a second or two, so they run per mutant (docs/mutation/evaluate-benchmark.md)."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from srzoo.evaluate import benchmark, metrics
from srzoo.evaluate.benchmark import protocols, runner

from test_bench import CROP, FakeUpscaler, fake, tiny_set  # noqa: F401 - fixtures


def _msg(e: pytest.ExceptionInfo[BaseException]) -> str:
    return str(e.value)


# --- parsing -----------------------------------------------------------------------------


def test_split_and_parse_threads() -> None:
    assert runner._split(None) == []
    assert runner._split(" a, ,b ,") == ["a", "b"]
    assert runner._split([2, " 3 ", ""]) == ["2", "3"]
    assert runner.parse_threads(None) == [None]
    assert runner.parse_threads(4) == [4]
    assert runner.parse_threads("1, default,2,1,auto,") == [1, None, 2]
    assert runner.parse_threads([None, "DEFAULT", 3]) == [None, 3]
    assert runner.parse_threads([]) == [None]
    for bad in ("0", "-2", "x", "1.5"):
        with pytest.raises(srzoo.SrzooError) as e:
            runner.parse_threads(bad)
        assert _msg(e) == f"threads must be a positive integer or 'default', got {bad!r}"


def test_percentile_is_numpys_linear_one() -> None:
    assert runner._percentile([1, 2, 3, 4], 50) == 2.5
    assert runner._percentile([10.0, 20.0], 95) == pytest.approx(19.5, abs=1e-12)


def test_plan_keeps_order_drops_repeats_and_takes_any_scale_for_interpolation() -> None:
    pairs, skipped = runner._plan(["nearest", "NEAREST", "bicubic-matlab"], [4, 2, 4])
    assert pairs == [("nearest", 4), ("nearest", 2), ("bicubic-matlab", 4), ("bicubic-matlab", 2)]
    assert skipped == []
    pairs, skipped = runner._plan(["bicubic-matlab"], None)
    assert pairs == [("bicubic-matlab", 2), ("bicubic-matlab", 3), ("bicubic-matlab", 4)]
    pairs, skipped = runner._plan(["espcn"], [5])
    assert pairs == [] and skipped == ["espcn x5 (no such model; it has x2, x3, x4)"]


def test_bad_arguments_are_exact_lines(tiny_set: Path) -> None:
    cases = [
        (dict(protocol="ntire"), "unknown protocol 'ntire'; choose from matlab, opencv"),
        (dict(repeat=0), "repeat must be >= 1 and warmup >= 0 (got repeat=0, warmup=1)"),
        (dict(warmup=-1), "repeat must be >= 1 and warmup >= 0 (got repeat=5, warmup=-1)"),
        (dict(scales=1), "scales must be integers >= 2, got 1"),
        (dict(scales="2,1"), "scales must be integers >= 2, got '2,1'"),
        (dict(scales=""), "scales must be integers >= 2, got ''"),
        (dict(models=" , "), "no models to benchmark"),
        (dict(dataset=[]), "no dataset given"),
        (dict(dataset="no/such/folder"), "dataset folder not found: no/such/folder"),
        (dict(dataset="nosuch.png"), "dataset folder not found: nosuch.png"),
    ]
    for kw, want in cases:
        args = dict(models="nearest", scales=2, backends="cpu", dataset=str(tiny_set))
        args.update(kw)
        with pytest.raises(srzoo.SrzooError) as e:
            benchmark.bench(**args)
        assert _msg(e) == want, kw


def test_minimal_valid_arguments(fake: type[FakeUpscaler], tiny_set: Path) -> None:
    fake.delay = 0.0
    rep = benchmark.bench("nearest", "2", "", tiny_set, repeat=1, warmup=0)  # backends "": cpu
    row, = rep.results
    assert row["backend"] == "cpu" and row["scale"] == 2 and row["warmup"] == 0 and row["repeat"] == 1
    assert fake.calls == 3


# --- what a run records ------------------------------------------------------------------


def test_settings_rows_and_notes(fake: type[FakeUpscaler], tiny_set: Path) -> None:
    fake.delay = 0.0
    rep = benchmark.bench("Nearest,bicubic", [3, 2], "CPU", [tiny_set], repeat=2, warmup=1, threads="1")
    assert rep.settings == {
        "models": ["nearest", "bicubic"], "scales": [3, 2], "backends": ["cpu"], "threads": [1],
        "precisions": ["default"], "datasets": {tiny_set.name: str(tiny_set)}, "repeat": 2, "warmup": 1}
    assert rep.protocol == "matlab" and rep.protocol_description == benchmark.PROTOCOLS["matlab"]
    got = [(r["model"], r["scale"], r["backend"], r["threads"]) for r in rep.results]
    # the MATLAB baseline once per bicubic scale, in ascending order, after the asked-for pairs
    assert got == [("nearest", 3, "cpu", 1), ("nearest", 2, "cpu", 1), ("bicubic", 3, "cpu", 1),
                   ("bicubic", 2, "cpu", 1), ("bicubic-matlab", 2, "numpy", "default"),
                   ("bicubic-matlab", 3, "numpy", "default")]
    by = {(r["model"], r["scale"]): r for r in rep.results}
    assert by[("nearest", 2)]["note"] == ""
    assert by[("bicubic", 2)]["note"] == ("bicubic: registry model (cv2.INTER_CUBIC, a=-0.75); the "
                                          "literature's baseline is row bicubic-matlab")
    assert by[("bicubic-matlab", 3)]["note"].startswith("bicubic-matlab: MATLAB imresize bicubic upsampling")
    for r in rep.results:
        assert r["status"] == "ok" and r["images"] == 3 and r["dataset"] == tiny_set.name
        assert r["protocol"] == "matlab" and r["precision"] == "fp32" and "per_image" not in r
        assert r["ms_ssim"] is None  # 96 x 120 crops: too small for five scales
        assert r["backend_reason"] == ""
    assert by[("bicubic-matlab", 2)]["backend_resolved"] == "numpy"
    # the baseline's numbers are MATLAB's: computed here independently
    ps = []
    for f in sorted(tiny_set.glob("*.png")):
        hr = metrics.modcrop(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), 2)
        lr = metrics.imresize(hr, 0.5)
        sr = metrics.imresize(lr, 2.0)
        ps.append(metrics.psnr(hr, sr, shave=2, y_channel=True))
    assert by[("bicubic-matlab", 2)]["psnr"] == pytest.approx(np.mean(ps), abs=1e-9)
    # 6 runs x 3 images x (1 warm-up + 2 timed) calls of the fake model (4 runs are fake)
    assert fake.calls == 4 * 3 * 3


def test_opencv_protocol_keeps_an_asked_for_matlab_baseline_alone(fake: type[FakeUpscaler],
                                                                    tiny_set: Path) -> None:
    rep = benchmark.bench("bicubic-matlab", 2, "cpu", tiny_set, protocol="opencv", repeat=1, warmup=0)
    assert [(r["model"], r["backend"]) for r in rep.results] == [("bicubic-matlab", "numpy")]
    rep = benchmark.bench("bicubic", 2, "cpu", tiny_set, protocol="opencv", repeat=1, warmup=0)
    assert [r["model"] for r in rep.results] == ["bicubic"]


def test_wrong_output_size_is_an_error_row(fake: type[FakeUpscaler], tiny_set: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fake.delay = 0.0
    monkeypatch.setattr(FakeUpscaler, "__call__", lambda self, img: img[:, :-1])
    progress: list[tuple[int, int]] = []
    rep = benchmark.bench("nearest", 2, "cpu,cuda", tiny_set, repeat=1, warmup=0,
                          progress=lambda d, t, s: progress.append((d, t)))
    bad, cuda = rep.results
    assert bad["status"] == ("error: SrzooError: a_bird.png: output is 59x48, expected 120x96")
    assert bad["psnr"] is None and bad["images"] == 0
    assert cuda["status"] == "unavailable: fake: no CUDA here"
    # the run that stopped early still counts all its images: the progress ends at the total
    assert progress[-1] == (6, 6)


def test_per_image_and_ms_ssim_on_large_images(fake: type[FakeUpscaler], shared_dir: Path,
                                               tmp_path: Path) -> None:
    fake.delay = 0.0
    d = tmp_path / "big"
    d.mkdir()
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "baby.png"))
    cv2.imwrite(str(d / "baby.png"), img[:360, :360])
    rep = benchmark.bench("nearest", 2, "cpu", d, repeat=1, warmup=0, per_image=True)
    row, = rep.results
    hr = img[:360, :360]
    sr = cv2.resize(metrics.imresize(hr, 0.5), (360, 360), interpolation=cv2.INTER_NEAREST)
    want = metrics.ms_ssim(hr, sr, shave=2, y_channel=True)
    assert 0.5 < want < 1.0 and row["ms_ssim"] == pytest.approx(want, abs=1e-12)
    assert row["per_image"][0]["image"] == "baby.png"
    assert row["per_image"][0]["ssim"] == pytest.approx(row["ssim"], abs=1e-15)
    rep = benchmark.bench("nearest", 2, "cpu", d, protocol="opencv", repeat=1, warmup=0)
    hr = img[:360, :360]
    sr = cv2.resize(cv2.resize(hr, (180, 180), interpolation=cv2.INTER_LINEAR), (360, 360),
                    interpolation=cv2.INTER_NEAREST)
    assert rep.results[0]["ms_ssim"] == pytest.approx(metrics.ms_ssim(hr, sr), abs=1e-12)


def test_machine_info_is_this_machine() -> None:
    info = runner.machine_info()
    assert info["cores"] == os.cpu_count() and info["cores_usable"] == len(os.sched_getaffinity(0))
    assert info["python"] == platform.python_version() and info["numpy"] == np.__version__
    assert info["opencv_version"] == cv2.__version__ and info["platform"] == platform.platform()
    assert info["opencv_threads_default"] == cv2.getNumThreads()
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        names = [ln.split(":", 1)[1].strip() for ln in f if ln.lower().startswith("model name")]
    assert info["cpu"] == (names[0] if names else platform.processor() or platform.machine())


def test_cpu_name_reads_the_first_model_name_as_written(tmp_path: Path) -> None:
    f = tmp_path / "cpuinfo"
    f.write_bytes(b"processor\t: 0\nvendor_id\t: Acme\n"
                  b"Model Name\t: Acme Turbo: rev 2 @ 3.0GHz \nmodel name\t: second\n")
    assert runner._cpu_name(str(f)) == "Acme Turbo: rev 2 @ 3.0GHz"  # colons after the first kept
    f.write_bytes(b"model name\t: Acme \xff\xfe CPU\n")  # not UTF-8: replaced, never an error
    assert runner._cpu_name(str(f)) == "Acme \ufffd\ufffd CPU"
    fallback = platform.processor() or platform.machine()
    assert fallback  # this machine has a name for its processor or its machine
    f.write_bytes(b"processor\t: 0\n")  # no model name line (e.g. some ARM kernels)
    assert runner._cpu_name(str(f)) == fallback
    assert runner._cpu_name(str(tmp_path / "missing")) == fallback


def test_grey_model_output_is_scored_as_it_is(fake: type[FakeUpscaler], tiny_set: Path,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that returns one channel for a grey image: scored as it is (not converted)."""
    grey_dir = tmp_path / "grey"
    grey_dir.mkdir()
    (grey_dir / "c_bridge.png").write_bytes((tiny_set / "c_bridge.png").read_bytes())

    class GreyOut(FakeUpscaler):
        def __call__(self, img: np.ndarray) -> np.ndarray:
            return cv2.cvtColor(super().__call__(img), cv2.COLOR_BGR2GRAY)

    import srzoo.runtime.upscaler
    monkeypatch.setattr(srzoo.runtime.upscaler, "Upscaler", GreyOut)
    GreyOut.delay = 0.0
    rep = benchmark.bench("nearest", [2], "cpu", str(grey_dir), repeat=1, warmup=0)
    row, = rep.results
    assert row["status"] == "ok", row["status"]
    hr = metrics.modcrop(cv2.imread(str(grey_dir / "c_bridge.png"), cv2.IMREAD_UNCHANGED), 2)
    lr = cv2.cvtColor(metrics.imresize(hr, 0.5), cv2.COLOR_GRAY2BGR)
    sr = cv2.cvtColor(cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_NEAREST),
                      cv2.COLOR_BGR2GRAY)
    assert row["psnr"] == pytest.approx(metrics.psnr(hr, sr, shave=2, y_channel=True), abs=1e-9)


def test_a_clock_that_does_not_move_gives_no_throughput(fake: type[FakeUpscaler], tiny_set: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero total time (a coarse clock) is no Mpix/s, not a division by zero. The clock is
    stopped by hand: no real clock can be made to stand still."""
    monkeypatch.setattr(runner.time, "perf_counter", lambda: 5.0)
    fake.delay = 0.0
    row, = benchmark.bench("nearest", [2], "cpu", str(tiny_set), repeat=2, warmup=0).results
    assert row["status"] == "ok" and row["mpix_per_s"] is None
    assert row["ms_median"] == 0.0 and row["ms_p95"] == 0.0 and row["load_ms"] == 0.0
    ticks = iter(range(1000))  # a clock that moves 0.5 s per reading: model loading took 500 ms
    monkeypatch.setattr(runner.time, "perf_counter", lambda: 0.5 * next(ticks))
    row, = benchmark.bench("nearest", [2], "cpu", str(tiny_set), repeat=1, warmup=0).results
    assert row["load_ms"] == 500.0


# --- protocols -----------------------------------------------------------------------------


def test_load_images_layouts_and_refusals(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    bgr = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "c.png"), bgr)
    cv2.imwrite(str(tmp_path / "a.PNG"), np.dstack((bgr, np.full((20, 24), 7, np.uint8))))
    cv2.imwrite(str(tmp_path / "b.bmp"), bgr[:, :, 0])
    (tmp_path / "z.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()
    got = protocols._load_images(tmp_path, "matlab")
    assert [n for n, _ in got] == ["a.PNG", "b.bmp", "c.png"]
    assert np.array_equal(got[0][1], bgr)  # alpha dropped
    assert got[1][1].shape == (20, 24)  # grey stays one channel under matlab
    assert np.array_equal(got[1][1], bgr[:, :, 0])
    got = protocols._load_images(tmp_path, "opencv")
    assert got[1][1].shape == (20, 24, 3)  # IMREAD_COLOR under opencv
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(srzoo.SrzooError, match=re.escape(f"no images in {empty} (looked for .bmp, .jpeg, ")):
        protocols._load_images(empty, "matlab")
    cv2.imwrite(str(tmp_path / "d16.png"), bgr.astype(np.uint16) * 257)
    with pytest.raises(srzoo.ImageError) as e:
        protocols._load_images(tmp_path, "matlab")
    assert str(e.value) == f"{tmp_path / 'd16.png'}: only 8-bit images can be benchmarked, got uint16"
    (tmp_path / "d16.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(srzoo.ImageError) as e:
        protocols._load_images(tmp_path, "matlab")
    assert str(e.value) == f"cannot decode {tmp_path / 'd16.png'}"


def test_samples_degrade_by_protocol_and_refuse_tiny_images() -> None:
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (26, 35, 3), dtype=np.uint8)
    grey = img[:, :, 1].copy()
    s_m = protocols._samples([("c", img), ("g", grey)], 3, "matlab")
    assert s_m[0].hr.shape == (24, 33, 3) and s_m[0].lr.shape == (8, 11, 3) and not s_m[0].grey
    assert np.array_equal(s_m[0].lr, metrics.imresize(img[:24, :33], 1 / 3))
    assert s_m[1].grey and s_m[1].hr.shape == (24, 33) and s_m[1].lr.shape == (8, 11, 3)
    assert np.array_equal(s_m[1].lr[:, :, 2], metrics.imresize(grey[:24, :33], 1 / 3))
    s_o = protocols._samples([("c", img)], 3, "opencv")
    assert np.array_equal(s_o[0].lr, cv2.resize(img[:24, :33], (11, 8), interpolation=cv2.INTER_LINEAR))
    assert s_o[0].lr.flags["C_CONTIGUOUS"]
    with pytest.raises(srzoo.ImageError) as e:
        protocols._samples([("t", img[:15, :30])], 4, "matlab")  # 12 rows / 4 = 3 < 4
    assert str(e.value) == "t: 30x15 is too small for x4"
    assert protocols._samples([("ok", img[:16, :16])], 4, "matlab")[0].lr.shape == (4, 4, 3)


def test_degrade_floors_the_size_and_keeps_the_protocol_scale() -> None:
    """On a size the scale does not divide (``_samples`` modcrops first, so only a direct
    caller sees this): the LR is floor(size / scale) and MATLAB's kernel is the one of
    1/scale, not of the size ratio (13 -> 6 rows is 0.46)."""
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, (13, 11, 3), dtype=np.uint8)
    lr = protocols._degrade(img, 2, "matlab")
    assert lr.shape == (6, 5, 3)
    assert np.array_equal(lr, metrics.imresize(img, 0.5, output_shape=(6, 5)))
    assert not np.array_equal(lr, metrics.imresize(img, output_shape=(6, 5)))  # the ratio's kernel
    assert np.array_equal(protocols._degrade(img, 2, "opencv"),
                          cv2.resize(img, (5, 6), interpolation=cv2.INTER_LINEAR))


def test_scores_by_protocol() -> None:
    rng = np.random.default_rng(5)
    hr = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 20, hr.shape), 0, 255).astype(np.uint8)
    p, s = protocols._score(hr, sr, 3, "matlab")
    assert p == metrics.psnr(hr, sr, shave=3, y_channel=True)
    assert s == metrics.ssim(hr, sr, shave=3, y_channel=True)
    p, s = protocols._score(hr, sr, 3, "opencv")
    assert p == pytest.approx(cv2.PSNR(hr, sr), abs=1e-9) and s == metrics.ssim(hr, sr)
    assert np.isnan(protocols._ms_ssim_score(hr, sr, 3, "matlab"))
    up = protocols._MatlabBicubic(3)
    assert up.backend == "numpy" and up.scale == 3
    lr = hr[:10, :12]
    assert np.array_equal(up(lr), metrics.imresize(lr, 3.0))


# --- bench(): precisions, fetching, skipped scales, progress text, capabilities ---------------


class _PrecisionFake(FakeUpscaler):
    """The fake model, taking a precision as Upscaler does and saying which one ran."""

    def __init__(self, model: str, scale: int, backend: str = "cpu", threads: int | None = None,
                 precision: str = "fp32") -> None:
        super().__init__(model, scale, backend, threads)
        self.precision = precision


def test_precisions_make_rows_and_the_matlab_baseline_has_none(fake: type[FakeUpscaler], tiny_set: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import srzoo.runtime.upscaler

    monkeypatch.setattr(srzoo.runtime.upscaler, "Upscaler", _PrecisionFake)
    _PrecisionFake.delay = 0.0
    rep = benchmark.bench("bicubic", [2], "cpu", str(tiny_set), repeat=1, warmup=0,
                          precisions=" FP32 , bf16,")
    assert rep.settings["precisions"] == ["fp32", "bf16"]
    got = [(r["model"], r["backend"], r.get("precision"), r["backend_resolved"]) for r in rep.results]
    assert got == [("bicubic", "cpu@fp32", "fp32", "cpu"), ("bicubic", "cpu@bf16", "bf16", "cpu@bf16"),
                   ("bicubic-matlab", "numpy", "fp32", "numpy")]
    rep = benchmark.bench("nearest", [2], "cpu", str(tiny_set), repeat=1, warmup=0,
                          precisions=["BF16", None])  # a list: strings lowered, None kept
    assert [r["backend"] for r in rep.results] == ["cpu@bf16", "cpu"]
    assert rep.settings["precisions"] == ["bf16", "default"]
    rep = benchmark.bench("nearest", [2], "cpu", str(tiny_set), repeat=1, warmup=0, precisions=[])
    assert [r["backend"] for r in rep.results] == ["cpu"]  # an empty list: the default


def test_model_files_of_the_asked_scale_are_fetched_first(fake: type[FakeUpscaler], tiny_set: Path,
                                                          srzoo_env: Path) -> None:
    """The files of each (model, scale) run are fetched before anything is timed (here into an
    empty cache from the test mirror; the fake runs them), and a scale the model lacks is
    reported as skipped."""
    fake.delay = 0.0
    rep = benchmark.bench("espcn", [3, 5], "cpu", str(tiny_set), repeat=1, warmup=0)
    assert rep.skipped == ["espcn x5 (no such model; it has x2, x3, x4)"]
    assert [(r["model"], r["scale"], r["status"]) for r in rep.results] == [("espcn", 3, "ok")]
    names = [p.name for p in (srzoo_env / "models").rglob("*") if p.is_file()]
    assert len(names) == 1 and "x3" in names[0], names


def test_progress_says_which_run(fake: type[FakeUpscaler], tiny_set: Path) -> None:
    fake.delay = 0.0
    seen: list[tuple[int, int, str]] = []
    benchmark.bench("nearest", [2], "cpu", str(tiny_set), repeat=1, warmup=0, threads="1,default",
                    progress=lambda d, t, s: seen.append((d, t, s)))
    ds = tiny_set.name
    assert seen[0] == (0, 6, f"{ds} nearest x2 cpu t1")
    assert seen[-1] == (6, 6, f"{ds} nearest x2 cpu")


def test_machine_info_capabilities_as_json_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Capabilities are kept as they are when JSON can hold them, else as text; a failing
    backends module is one error entry. (Stand-ins for backends.capabilities: this machine's
    engines give neither a non-JSON value nor an error.)"""
    from srzoo.runtime import backends

    assert runner.machine_info()["opencv_capabilities"] == backends.capabilities()
    monkeypatch.setattr(backends, "capabilities",
                        lambda: {"a": 1, "b": "x", "c": None, "d": [1], "e": (1, 2), "f": {"k": 2.5}})
    assert runner.machine_info()["opencv_capabilities"] == {
        "a": 1, "b": "x", "c": None, "d": [1], "e": "(1, 2)", "f": {"k": 2.5}}

    def broken():
        raise RuntimeError("no engines")

    monkeypatch.setattr(backends, "capabilities", broken)
    assert runner.machine_info()["opencv_capabilities"] == {"error": "RuntimeError: no engines"}


def test_rows_that_did_not_run_have_every_key_and_threads_are_restored(
        fake: type[FakeUpscaler], tiny_set: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row that never ran (unavailable backend) still has every column (None), so tables and
    CSV line up; OpenCV's thread count is each run's and is put back afterwards (set to 3
    here, not this machine's default, so that resetting it to anything else shows)."""
    seen: list[int] = []
    real_call = FakeUpscaler.__call__

    def call(self: FakeUpscaler, img: np.ndarray) -> np.ndarray:
        seen.append(cv2.getNumThreads())
        return real_call(self, img)

    monkeypatch.setattr(FakeUpscaler, "__call__", call)
    asked: list[int | None] = []
    real_init = FakeUpscaler.__init__

    def init(self: FakeUpscaler, model: str, scale: int, backend: str = "cpu",
             threads: int | None = None) -> None:
        asked.append(threads)
        real_init(self, model, scale, backend, threads)

    monkeypatch.setattr(FakeUpscaler, "__init__", init)
    fake.delay = 0.0
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        rep = benchmark.bench("bicubic", [2], "cuda,cpu", str(tiny_set), repeat=1, warmup=0,
                              threads="2,default")
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)
    assert seen == [2, 2, 2, 3, 3, 3]  # cpu t2, then cpu default (3 images each)
    assert asked == [2, None, 2, None]  # the engine is given the same count (cuda, then cpu)
    assert rep.settings["threads"] == [2, "default"]
    cuda = [r for r in rep.results if r["backend"] == "cuda"]
    assert [r["threads"] for r in cuda] == [2, "default"]
    assert cuda[1] == {
        "protocol": "matlab", "dataset": tiny_set.name, "model": "bicubic", "scale": 2,
        "backend": "cuda", "backend_resolved": None, "threads": "default", "images": 0,
        "psnr": None, "ssim": None, "ms_ssim": None, "ms_median": None, "ms_p95": None,
        "mpix_per_s": None, "load_ms": None, "repeat": 1, "warmup": 0,
        "status": "unavailable: fake: no CUDA here",
        "note": "bicubic: registry model (cv2.INTER_CUBIC, a=-0.75); the literature's baseline is "
                "row bicubic-matlab",
        "backend_reason": ""}
    matlab, = [r for r in rep.results if r["model"] == "bicubic-matlab"]
    assert matlab["note"] == ("bicubic-matlab: MATLAB imresize bicubic upsampling (numpy), the "
                              "'Bicubic' baseline of published tables; registry model 'bicubic' is "
                              "cv2.INTER_CUBIC")


def test_default_dataset_is_set5(fake: type[FakeUpscaler], srzoo_env: Path) -> None:
    """No dataset: Set5, fetched and verified (here from the test mirror)."""
    fake.delay = 0.0
    row, = benchmark.bench("nearest", [4], "cpu", repeat=1, warmup=0).results
    assert row["dataset"] == "set5" and row["images"] == 5 and row["status"] == "ok"


# --- written against the survivors of the run of 2026-12-05 (quiet machine) -------------------


def test_cpu_name_is_read_as_utf8_under_an_ascii_locale(tmp_path: Path) -> None:
    """/proc/cpuinfo is UTF-8 whatever the locale: a process started with LC_ALL=C and
    UTF-8 mode off (the locale's encoding is then ASCII) still reads a model name's
    trademark sign, not three replacement characters."""
    import subprocess
    import sys

    f = tmp_path / "cpuinfo"
    f.write_bytes("model name\t: Acme\u2122 Turbo CPU\n".encode("utf-8"))
    code = ("import locale; from srzoo.evaluate.benchmark import runner; "
            f"print(locale.getpreferredencoding(False), ascii(runner._cpu_name({str(f)!r})))")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONPATH": str(Path(srzoo.__file__).resolve().parents[1])}  # this srzoo, not another
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out == "ANSI_X3.4-1968 'Acme\\u2122 Turbo CPU'\n"


def test_machine_info_counts_every_core_where_affinity_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without os.sched_getaffinity (macOS, Windows), or when it fails, the usable cores are
    all the cores."""
    assert os.cpu_count()
    monkeypatch.delattr(os, "sched_getaffinity")
    assert runner.machine_info()["cores_usable"] == os.cpu_count()

    def refused(pid: int) -> set[int]:
        raise OSError("not permitted")

    monkeypatch.setattr(os, "sched_getaffinity", refused, raising=False)
    assert runner.machine_info()["cores_usable"] == os.cpu_count()


def test_plan_runs_a_catalogue_model_at_its_own_scale(shared_dir: Path, srzoo_env: Path) -> None:
    """An OpenModelDB name (omdb:ID) has the one scale of its record: no scales asked means
    that one; another asked scale is skipped with its line. A doubled prefix is the
    catalogue's unknown record, with its suggestion, not the registry's unknown model."""
    import json

    from srzoo.hub.catalog import store

    recs = {p.stem: json.loads(p.read_text()) for p in sorted((shared_dir / "openmodeldb").glob("*.json"))
            if p.stem != "architectures"}
    archs = json.loads((shared_dir / "openmodeldb" / "architectures.json").read_text())
    store.install(store.serialise("a" * 40, recs, archs), "a" * 40)
    assert runner._plan(["omdb:2x-dat-2"], None) == ([("omdb:2x-dat-2", 2)], [])
    assert runner._plan(["omdb:2x-dat-2", "nearest"], [4, 2]) == (
        [("omdb:2x-dat-2", 2), ("nearest", 4), ("nearest", 2)],
        ["omdb:2x-dat-2 x4 (no such model; it has x2)"])
    with pytest.raises(srzoo.UnknownModel) as e:
        runner._plan(["omdb:omdb:2x-dat-2"], None)
    assert _msg(e) == ("no OpenModelDB record 'omdb:2x-dat-2' at revision aaaaaaaaaaaa. Did you mean: "
                       "omdb:2x-DAT-2? Run 'srzoo list --catalog openmodeldb PATTERN' to search.")


def test_a_real_engine_says_what_ran_and_why(tiny_set: Path) -> None:
    """The real Upscaler (an interpolation: no network) for every way of asking: each row says
    which engine ran (backend_resolved) and why (backend_reason), and the numbers are those
    of nearest-neighbour upscaling computed here."""
    rep = benchmark.bench("nearest", [2], "cpu,auto", tiny_set, repeat=1, warmup=0)
    ps = []
    for f in sorted(tiny_set.glob("*.png")):
        hr = metrics.modcrop(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), 2)
        sr = cv2.resize(metrics.imresize(hr, 0.5), (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_NEAREST)
        ps.append(metrics.psnr(hr, sr, shave=2, y_channel=True))
    assert [r["backend"] for r in rep.results] == ["cpu", "auto"]
    for row in rep.results:
        assert (row["status"], row["images"], row["precision"]) == ("ok", 3, "fp32")
        assert row["backend_resolved"] == "interpolation:cpu"
        assert row["backend_reason"] == "cv2.resize runs on the CPU"
        assert row["psnr"] == pytest.approx(np.mean(ps), abs=1e-9)
        assert sorted(row) == sorted([
            "protocol", "dataset", "model", "scale", "backend", "backend_resolved", "threads",
            "images", "psnr", "ssim", "ms_ssim", "ms_median", "ms_p95", "mpix_per_s", "load_ms",
            "repeat", "warmup", "status", "note", "backend_reason", "precision"])


def test_an_error_without_a_message_is_a_row_too(fake: type[FakeUpscaler], tiny_set: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare MemoryError() (what Python raises when an allocation fails) has no message: its
    row says so, and the runs after it still run."""
    fake.delay = 0.0
    real_call = FakeUpscaler.__call__

    def call(self: FakeUpscaler, img: np.ndarray) -> np.ndarray:
        if self.backend == "broken":
            raise MemoryError()
        return real_call(self, img)

    monkeypatch.setattr(FakeUpscaler, "__call__", call)
    progress: list[tuple[int, int]] = []
    rep = benchmark.bench("nearest", [2], "broken,cpu", tiny_set, repeat=1, warmup=0,
                          progress=lambda d, t, s: progress.append((d, t)))
    assert [(r["backend"], r["status"], r["images"]) for r in rep.results] == [
        ("broken", "error: MemoryError: ", 0), ("cpu", "ok", 3)]
    assert progress[-1] == (6, 6)
