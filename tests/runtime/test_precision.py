"""precision= on real models and the real OpenVINO CPU plugin: bf16 output within
the measured budget of fp32 (Set5), an over-budget precision refused with its
number, ``auto`` never choosing one over budget, NaN/black outputs from a real
fp16 overflow refused, the measurement kept in the autotune store."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import srzoo
from srzoo.errors import ArgumentError, PrecisionError
from srzoo.resample import imresize
from srzoo.runtime import autotune, precision
from srzoo.runtime.engines import get_engine
from srzoo.runtime.upscaler import Upscaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from standin import write_manifest  # noqa: E402

pytest.importorskip("openvino")


def _ov_has(p: str) -> bool:
    return p in get_engine("openvino").precisions("cpu")


needs_bf16 = pytest.mark.skipif(not _ov_has("bf16"), reason="this CPU has no BF16 in OpenVINO "
                                "(AVX512_BF16 or AMX): nothing to gain, nothing to test")
needs_fp16 = pytest.mark.skipif(not _ov_has("fp16"), reason="OpenVINO runs no FP16 on this CPU")


def _psnr_y(a: np.ndarray, b: np.ndarray, shave: int) -> float:
    ya = cv2.cvtColor(a, cv2.COLOR_BGR2YCrCb)[shave:-shave, shave:-shave, 0].astype(np.float64)
    yb = cv2.cvtColor(b, cv2.COLOR_BGR2YCrCb)[shave:-shave, shave:-shave, 0].astype(np.float64)
    return 10 * math.log10(255.0 ** 2 / np.mean((ya - yb) ** 2))


def _set5(shared: Path, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for p in sorted((shared / "datasets" / "Set5").glob("*.png")):
        hr = cv2.imread(str(p))
        hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale]
        lr = np.clip(np.round(imresize(hr.astype(np.float64), 1 / scale)), 0, 255).astype(np.uint8)
        out.append((lr, hr))
    return out


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / autotune.FILE


# --------------------------------------------------------------------------- bf16, in budget
@needs_bf16
def test_bf16_builtin_within_budget_on_set5_and_recorded(shared_dir, store):
    fp32 = Upscaler("default", 4, backend="openvino:cpu")
    bf16 = Upscaler("default", 4, backend="openvino:cpu", precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert fp32.backend == bf16.backend == "openvino:cpu"
    q = bf16.quality["openvino:cpu@bf16"]
    assert q.kind == "psnr" and q.nonfinite == 0 and not q.flat
    assert q.psnr_drop <= 0.05 and q.psnr_vs_fp32 >= 45.0 and 0 < q.max_diff <= 0.05
    assert "bf16 within the quality budget" in bf16.backend_reason
    # on a real evaluation set (never used by the probe): the same picture
    drops, diffs = [], []
    for lr, hr in _set5(shared_dir, 4):
        a, b = fp32(lr), bf16(lr)
        assert a.shape == b.shape == hr.shape
        diffs.append(int(np.abs(a.astype(int) - b.astype(int)).max()))
        drops.append(_psnr_y(a, hr, 4) - _psnr_y(b, hr, 4))
        assert not np.array_equal(a, b)  # bf16 really ran
    assert max(diffs) <= 16 and abs(float(np.mean(drops))) <= 0.05
    # the measurement is kept with autotune's record, and not made twice
    data = json.loads(store.read_text())
    recs = [v for k, v in data.items() if k.startswith("precision-")]
    assert len(recs) == 1 and recs[0]["model"] == "default"
    assert recs[0]["quality"]["psnr_drop"] == pytest.approx(q.psnr_drop)


@needs_bf16
def test_measurement_is_reused_from_the_store(store, monkeypatch):
    Upscaler("default", 2, backend="openvino:cpu", precision="bf16")

    def boom(*a, **k):
        raise AssertionError("measured twice")

    monkeypatch.setattr(precision, "measure", boom)
    up = Upscaler("default", 2, backend="openvino:cpu", precision="bf16")
    assert up.precision == "bf16" and up.quality["openvino:cpu@bf16"].psnr_drop <= 0.05


# --------------------------------------------------------------------------- refused
@needs_bf16
def test_gan_model_forced_over_budget_is_refused_with_the_number(models_env, store, monkeypatch):
    """realesr-animevideov3-ncnn (tag gan): bf16 is ~50 dB from fp32; a 99 dB budget refuses it."""
    ok = Upscaler("realesr-animevideov3-ncnn", 4, backend="openvino:cpu", precision="bf16")
    q = ok.quality["openvino:cpu@bf16"]
    assert q.kind == "gan" and 40.0 <= q.psnr_vs_fp32 < 99.0
    monkeypatch.setenv("SRZOO_PRECISION_MIN_PSNR", "99")
    with pytest.raises(PrecisionError) as ei:
        Upscaler("realesr-animevideov3-ncnn", 4, backend="openvino:cpu", precision="bf16")
    msg = str(ei.value)
    assert f"output PSNR against fp32 {q.psnr_vs_fp32:.2f} dB < 99 dB" in msg
    assert "SRZOO_PRECISION_MIN_PSNR" in msg and "precision='fp32'" in msg and "\n" not in msg
    # auto never takes it: fp32 it is, and the refusal is on record
    up = Upscaler("realesr-animevideov3-ncnn", 4, backend="openvino:cpu", precision="auto")
    assert up.precision == "fp32"
    assert "openvino:cpu@bf16" in up.refused and f"{q.psnr_vs_fp32:.2f} dB" in up.refused["openvino:cpu@bf16"]
    kept = [v["quality"] for k, v in json.loads(store.read_text()).items() if k.startswith("precision-")]
    assert [k["psnr_vs_fp32"] for k in kept if k["precision"] == "bf16"] == [pytest.approx(q.psnr_vs_fp32)]


def test_psnr_budget_compares_the_measured_drop():
    q = precision.Quality("openvino:cpu@bf16", "bf16", "openvino:cpu", "psnr", psnr_vs_fp32=50.0,
                          psnr_drop=0.08, max_diff=0.01)
    assert q.problem(max_drop=0.05) == ("PSNR drop 0.080 dB > 0.05 dB (budget of PSNR-oriented models, "
                                        "SRZOO_PRECISION_MAX_DROP)")
    assert q.problem(max_drop=0.1) == ""
    assert precision.Quality(**{**q.as_dict(), "nonfinite": 3}).problem(max_drop=1) == \
        "3 NaN/inf values in the network output (overflow)"


def _overflow_model(folder: Path, scale: int = 2) -> Path:
    """A real network whose first layer reaches ~2e5, beyond float16's 65504, and whose
    second scales it back to [0, 1]: exact in fp32 and bf16, inf in fp16."""
    rng = np.random.default_rng(0)
    k = 2e5
    w1 = (np.abs(rng.normal(1, 0.1, (8, 3, 3, 3))) * k / 27 * 2).astype(np.float32)
    w2 = (rng.normal(0, 1, (3 * scale * scale, 8, 1, 1)) / (k * 8)).astype(np.float32)
    b2 = np.full(3 * scale * scale, 0.4, np.float32)
    nodes = [helper.make_node("Conv", ["input", "w1"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w2", "b2"], ["c"]),
             helper.make_node("DepthToSpace", ["c"], ["output"], blocksize=scale, mode="CRD")]
    g = helper.make_graph(nodes, "overflow",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, None, None])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, None, None])],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
                           numpy_helper.from_array(b2, "b2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"overflow_x{scale}.onnx"
    path.write_bytes(m.SerializeToString())
    return write_manifest(folder / "overflow.toml", path, "overflow", scale, color="rgb", range=1.0,
                          layout="nchw")


@pytest.fixture
def overflow(tmp_path, models_env, mirror, monkeypatch) -> Path:
    folder = tmp_path / "overflow"
    manifest = _overflow_model(folder)
    monkeypatch.setenv("SRZOO_REGISTRY", str(manifest))
    monkeypatch.setenv("SRZOO_MIRROR", f"{mirror.url},{folder}")
    return folder


@needs_fp16
def test_fp16_overflow_is_refused_not_shipped_black(overflow, tmp_path):
    with pytest.raises(PrecisionError, match=r"overflow x2: fp16 is refused: openvino:cpu@fp16: \d+ NaN/inf "
                                             r"values in the network output \(overflow\)"):
        Upscaler("overflow", 2, backend="openvino:cpu", precision="fp16")
    # what would have been shipped: the raw fp16 network output is not finite
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(next(overflow.glob("*.onnx"))))
    model.reshape({"input": [1, 3, 16, 16]})
    x = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    got = {}
    for hint in ("f32", "f16"):
        c = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
        got[hint] = c({"input": x})[c.output(0)]
    assert np.isfinite(got["f32"]).all() and np.mean(~np.isfinite(got["f16"])) > 0.5
    # through the CLI: one line, non-zero exit, nothing written
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), (x[0].transpose(1, 2, 0) * 255).astype(np.uint8))
    from srzoo.cli import main

    out = tmp_path / "out"
    assert main(["upscale", str(img), "-m", "overflow", "-s", "2", "--backend", "openvino:cpu",
                 "--precision", "fp16", "-o", str(out), "-q"]) != 0
    assert not out.exists() or not any(out.iterdir())


@needs_fp16
def test_auto_never_picks_the_overflowing_precision(overflow, store):
    up = Upscaler("overflow", 2, backend="openvino:cpu", precision="auto")
    assert up.precision in ("fp32", "bf16")
    assert "NaN/inf" in up.refused["openvino:cpu@fp16"]
    img = (np.random.default_rng(2).random((20, 24, 3)) * 255).astype(np.uint8)
    ref = Upscaler("overflow", 2, backend="openvino:cpu")(img)
    got = up(img)
    assert ref.std() > 8 and np.abs(got.astype(int) - ref.astype(int)).max() <= 2


# --------------------------------------------------------------------------- names and errors
def test_default_is_fp32_and_unchanged():
    up = Upscaler("default", 2, backend="openvino:cpu")
    assert up.precision == "fp32" and up.quality == {} and "@" not in up.backend
    assert str(up.runner.backend) == "openvino:cpu"


def test_unsupported_precision_is_a_clear_error():
    with pytest.raises(PrecisionError, match=r"no backend runs bf16 here \(onnxruntime:cpu runs fp32, int8\)"):
        Upscaler("default", 2, backend="onnxruntime:cpu", precision="bf16")
    with pytest.raises(ArgumentError, match="precision must be one of fp32, bf16, fp16, int8, auto"):
        Upscaler("default", 2, precision="fp8")
    with pytest.raises(PrecisionError, match="interpolation: it runs in fp32 only"):
        Upscaler("bicubic", 2, precision="bf16")


def test_env_default_and_get_upscaler_key(monkeypatch):
    monkeypatch.setenv("SRZOO_PRECISION", "bogus")
    with pytest.raises(srzoo.ConfigError, match="SRZOO_PRECISION"):
        precision.requested(None)
    monkeypatch.setenv("SRZOO_PRECISION", "fp32")
    assert precision.requested(None) == "" and precision.requested("BF16") == "bf16"


@needs_bf16
def test_upscale_and_bench_take_precision(shared_dir, store):
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png"))[:48, :48]
    a = srzoo.upscale(img, "default", 2, backend="openvino:cpu")
    b = srzoo.upscale(img, "default", 2, backend="openvino:cpu", precision="bf16")
    assert a.shape == b.shape and 0 < np.abs(a.astype(int) - b.astype(int)).max() <= 16
    from srzoo.evaluate.benchmark import bench

    rep = bench("default", 2, "openvino:cpu,onnxruntime:cpu", str(shared_dir / "datasets" / "Set5"),
                repeat=1, warmup=0, precisions="fp32,bf16")
    rows = {(r["backend"]): r for r in rep.results}
    assert rows["openvino:cpu@bf16"]["precision"] == "bf16" and rows["openvino:cpu@bf16"]["status"] == "ok"
    assert rows["openvino:cpu@fp32"]["backend_resolved"] == "openvino:cpu"
    assert rows["onnxruntime:cpu@bf16"]["status"].startswith("unavailable: ")
    assert abs(rows["openvino:cpu@bf16"]["psnr"] - rows["openvino:cpu@fp32"]["psnr"]) <= 0.05


@needs_bf16
def test_cli_upscale_precision_and_info(shared_dir, store, tmp_path, capsys):
    from srzoo.cli import main

    src = tmp_path / "bird.png"
    cv2.imwrite(str(src), cv2.imread(str(shared_dir / "datasets" / "Set5" / "bird.png"))[:40, :48])
    outs = {}
    for p in ("fp32", "bf16"):
        dst = tmp_path / f"{p}.png"
        assert main(["upscale", str(src), "-m", "default", "-s", "2", "--backend", "openvino:cpu",
                     "--precision", p, "-o", str(dst), "-q"]) == 0
        outs[p] = cv2.imread(str(dst))
    assert outs["fp32"].shape == outs["bf16"].shape == (80, 96, 3)
    assert 0 < np.abs(outs["fp32"].astype(int) - outs["bf16"].astype(int)).max() <= 16
    import os

    assert "SRZOO_PRECISION" not in os.environ  # the flag does not leak past the command
    assert main(["info"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("openvino:cpu")]
    assert line and "[fp32/bf16" in line[0]
