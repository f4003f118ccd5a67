"""The converters' own verification must be able to fail: for every converter family,
a reference (or a converted graph) that is off by a little more than the tolerance
raises the verification error, and nothing is cached.

Each test perturbs ONE side only (one output value of the reference, one weight of
the reference's forward pass, or one initializer of the emitted ONNX) by about
10x the converter's tolerance, so a tolerance loosened 10x or more (or a check
that compares a graph with itself) lets the test fail.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import srzoo
from srzoo.convert import check, converter_for, derive, reference
from srzoo.errors import ConversionFailed

class PerturbedOps:
    """A real reference backend (NumpyOps/TorchOps) whose FIRST convolution sees one
    weight changed by ``delta``: a reference that disagrees with the graph."""

    def __init__(self, ops: Any, delta: float) -> None:
        self._ops, self._delta, self._done = ops, delta, False
        self.name = ops.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ops, name)

    def conv(self, x: Any, w: np.ndarray, *a: Any, **k: Any) -> Any:
        if not self._done:
            w = np.array(w, np.float32, copy=True)
            w.flat[0] += self._delta
            self._done = True
        return self._ops.conv(x, w, *a, **k)


def off_by(fn: Any, delta: float) -> Any:
    """``fn`` with one output value moved by ``delta``."""
    def ref(x: np.ndarray) -> np.ndarray:
        y = np.array(fn(x), np.float32, copy=True)
        y.flat[y.size // 2] += delta
        return y
    return ref


# ---------------------------------------------------------------- check.compare itself
def test_compare_refuses_more_than_the_tolerance_and_nan():
    onnx_bytes, _ = check.build(lambda g, sd, a, x: g.relu(x), {}, type("A", (), {"in_channels": 1,
                                                                                   "out_channels": 1})(), "id")
    ident = lambda x: np.maximum(x, 0)  # noqa: E731  the graph's own function, computed apart
    assert check.compare(onnx_bytes, ident, 1, size=16, tol=1e-6, what="id") == 0.0
    assert check.compare(onnx_bytes, off_by(ident, 1e-3), 1, size=16, tol=1e-3, what="id") <= 1e-3
    err = check.compare(onnx_bytes, off_by(ident, 5e-4), 1, size=16, tol=1.0, what="id")
    assert 4e-4 < err < 6e-4
    assert check.compare(onnx_bytes, off_by(ident, 5e-4), 1, size=16, tol=err, what="id") == err  # <=, not <
    with pytest.raises(check.VerificationFailed, match=r"^id: converted graph differs from the reference by "
                                                       r"0.002 \(allowed 0.001\); not cached$"):
        check.compare(onnx_bytes, off_by(ident, 2e-3), 1, size=16, tol=1e-3, what="id")
    with pytest.raises(check.VerificationFailed, match="by nan"):
        check.compare(onnx_bytes, off_by(ident, float("nan")), 1, size=16, tol=1e-3, what="id")
    with pytest.raises(check.VerificationFailed, match=r"^id: converted graph gives shape \(1, 1, 16, 16\), "
                                                       r"the reference \(1, 1, 8, 16\)$"):
        check.compare(onnx_bytes, lambda x: x[:, :, :8], 1, size=16, tol=1e-3, what="id")
    assert issubclass(check.VerificationFailed, ConversionFailed)


# ---------------------------------------------------------------- pytorch-pth and safetensors
def perturb_reference(monkeypatch, delta: float) -> None:
    real = reference.best
    monkeypatch.setattr(reference, "best", lambda: PerturbedOps(real(), delta))


def test_pth_with_a_wrong_reference_weight_fails_and_caches_nothing(srzoo_env, monkeypatch):
    # measured: carn_m.pth x3 converts with probe error 6e-7; one weight of the reference's
    # first convolution +0.05 makes it 0.067 (67x the 1e-3 tolerance, 1/15 of a 1000x one)
    perturb_reference(monkeypatch, 0.05)
    entry = srzoo.get_model("carn-m", 3)
    with pytest.raises(check.VerificationFailed, match=r"carn_m.pth: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        srzoo.model_file(entry, quiet=True)
    root = derive.derived_root()
    assert not root.exists() or not any(p.name.startswith("carn-m") for p in root.iterdir())
    assert not any(p.suffix == ".onnx" for p in srzoo_env.rglob("*"))


def test_safetensors_with_a_wrong_reference_weight_fails(tmp_path, monkeypatch):
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(0)
    sd = golden_srvgg_state(rng)
    path = tmp_path / "srvgg.safetensors"
    st.save_file(sd, str(path))
    conv = converter_for("safetensors").convert(path, None, {})
    assert conv.info["arch"] == "srvgg" and conv.probe_error <= 1e-4
    perturb_reference(monkeypatch, 0.05)
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


def golden_srvgg_state(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A tiny SRVGGNetCompact x2 state dict (nf=8, 2 body convs) with random weights."""
    nf, sd = 8, {}
    shapes = [(nf, 3), (nf, nf), (nf, nf), (3 * 4, nf)]
    for i, (co, ci) in enumerate(shapes):
        sd[f"body.{2 * i}.weight"] = (rng.standard_normal((co, ci, 3, 3)) * 0.2).astype(np.float32)
        sd[f"body.{2 * i}.bias"] = (rng.standard_normal(co) * 0.05).astype(np.float32)
        if i < len(shapes) - 1:
            sd[f"body.{2 * i + 1}.weight"] = np.full(nf, 0.25, np.float32)
    return sd


# ---------------------------------------------------------------- keras-h5
def test_keras_with_a_wrong_reference_fails(monkeypatch, shared_dir):
    from srzoo.convert import keras

    path = shared_dir / "models" / "srcnn" / "m_model_adam_new30.h5"
    real = keras.reference

    def wrong(arch: Any, layers: Any) -> tuple[Any, str]:
        fn, name = real(arch, layers)
        return off_by(fn, 1e-2), name

    monkeypatch.setattr(keras, "reference", wrong)
    with pytest.raises(check.VerificationFailed, match=r"m_model_adam_new30.h5: converted graph differs from "
                                                       r"the reference by 0.01 \(allowed 0.001\); not cached"):
        converter_for("keras-h5").convert(path, None, {})


# ---------------------------------------------------------------- ncnn
def test_ncnn_with_a_wrong_reference_fails_and_caches_nothing(srzoo_env, monkeypatch):
    from srzoo.convert import ncnn

    def wrong_best() -> Any:
        return PerturbedOps(reference.NumpyOps(), 0.05)

    # the fp16 file's tolerance is 1e-2: the wrong reference is off by more than that
    class WrongNcnn(ncnn._NcnnReference):
        def __call__(self, x: np.ndarray) -> np.ndarray:
            return off_by(super().__call__, 0.1)(x)

    monkeypatch.setattr(ncnn, "_NcnnReference", WrongNcnn)
    monkeypatch.setattr(ncnn, "best", wrong_best)  # the fallback when the ncnn package is missing
    entry = srzoo.get_model("realesr-animevideov3-ncnn", 2)
    with pytest.raises(check.VerificationFailed, match=r"realesr-animevideov3-x2.param: converted graph "
                                                       r"differs from the reference by"):
        srzoo.model_file(entry, quiet=True)
    root = derive.derived_root()
    assert not root.exists() or not any(p.name.startswith("realesr") for p in root.iterdir())


# ---------------------------------------------------------------- tf-graphdef (dnn_superres .pb)
def test_graphdef_with_one_wrong_onnx_weight_fails(monkeypatch, shared_dir):
    import onnx
    from onnx import numpy_helper

    from srzoo.convert import graphdef

    real = graphdef.graphdef_to_onnx

    def one_weight_off(*a: Any, **k: Any) -> tuple[bytes, dict[str, Any]]:
        data, info = real(*a, **k)
        m = onnx.load_from_string(data)
        init = [t for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT][-1]
        assert list(init.dims) == [4, 1, 1]  # the last convolution's bias (before DepthToSpace, Tanh)
        w = numpy_helper.to_array(init).copy()
        w.flat[0] += 2e-3
        init.CopyFrom(numpy_helper.from_array(w, init.name))
        return m.SerializeToString(), info

    monkeypatch.setattr(graphdef, "graphdef_to_onnx", one_weight_off)
    entry = srzoo.get_model("espcn", 2)
    src = shared_dir / "models" / "opencv" / "ESPCN_x2.pb"
    # measured: the unperturbed conversion's probe error is 2.8e-7; this bias moves it to 1e-3..3e-3
    # (10-30x the 1e-4 limit)
    with pytest.raises(ConversionFailed, match=r"the ONNX conversion of espcn x2 differs from .* by 0.00[12]\d* "
                                               r"\(limit 0.0001\); please report it"):
        converter_for("tf-graphdef").convert(src, entry, {})


# ---------------------------------------------------------------- what convert_arch records (mutation survivors)
def test_convert_arch_builds_and_records_what_it_checked():
    import onnx

    import golden
    from srzoo.convert import arch as archs

    g = golden.load("srvgg_x2")
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    a = archs.detect(sd, 2)
    conv = check.convert_arch(sd, a, "srvgg test", ops=reference.NumpyOps())
    params = sum(int(v.size) for v in sd.values())
    assert conv.info == {"opset": a.opset, "arch": "srvgg", "scale": 2, "params": params, "color": "rgb",
                         "pre_upsample": None, "convs": 4, "features": 8}
    assert conv.checked_against == f"{reference.NumpyOps().name} on a 32x32 probe"
    assert conv.tools == {"onnx": onnx.__version__, "numpy": np.__version__}
    m = onnx.load_from_string(conv.onnx)
    assert m.graph.name == "srvgg"
    dims = lambda v: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(m.graph.input[0])[1] == 3 and dims(m.graph.output[0])[1] == 3
    # the default tolerance is 1e-3: a reference off by 0.05 in one weight is refused
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\)"):
        check.convert_arch(sd, a, "srvgg test", ops=PerturbedOps(reference.NumpyOps(), 0.05))


def test_convert_arch_with_torch_names_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    import golden
    from srzoo.convert import arch as archs

    g = golden.load("srvgg_x2")
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    conv = check.convert_arch(sd, archs.detect(sd, 2), "srvgg test")  # best(): PyTorch here
    assert conv.tools["torch"] == torch.__version__ and "numpy" not in conv.tools
    assert conv.checked_against.startswith(f"torch {torch.__version__}")


def test_probe_is_twice_the_smallest_input_when_that_is_above_32():
    class Tiny:  # an architecture that needs inputs of at least 20 pixels
        name, scale, in_channels, out_channels, min_size = "tiny", 1, 1, 1, 20
        color, pre_upsample, params = "y", None, {}

        @staticmethod
        def forward(F, sd, arch, x):
            return F.relu(x)

    from srzoo.convert.onnxbuild import OPSET

    conv = check.convert_arch({}, Tiny(), "tiny", ops=reference.NumpyOps())
    assert conv.checked_against.endswith("on a 40x40 probe") and conv.probe_error == 0.0
    assert conv.info["opset"] == OPSET  # an architecture without its own opset: the default


@pytest.mark.parametrize("name", ["rfdn_x4", "rrdbnet_x2"])
def test_record_has_the_architectures_opset_and_no_private_params(name):
    import onnx

    import golden
    from srzoo.convert import arch as archs
    from srzoo.convert.onnxbuild import OPSET, OPSET_RESIZE_LIKE

    g = golden.load(name)
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    a = archs.detect(sd, g["meta"]["scale"])
    conv = check.convert_arch(sd, a, name, ops=reference.NumpyOps())
    want = OPSET_RESIZE_LIKE if name.startswith("rfdn") else OPSET
    assert conv.info["opset"] == want == onnx.load_from_string(conv.onnx).opset_import[0].version
    assert not any(k.startswith("_") for k in conv.info)  # rrdbnet keeps its state dict in "_sd"


def test_compare_is_in_float32_the_graphs_precision():
    onnx_bytes, _ = check.build(lambda g, sd, a, x: g.relu(x), {}, type("A", (), {"in_channels": 1,
                                                                                   "out_channels": 1})(), "id")
    # a float64 reference within float32 rounding of the graph's output is not a difference
    ref = lambda x: np.maximum(x, 0).astype(np.float64) + 1e-12  # noqa: E731
    assert check.compare(onnx_bytes, ref, 1, size=16, tol=0.0, what="id") == 0.0


# ---------------------------------------------------------------- transformers (SwinIR: tokens, windows, masks)
def _swinir_safetensors(tmp_path: Any, name: str = "swinir_ps-x2-w4") -> Any:
    """A Swin-family golden's weights (tests/data/golden, torch-free) as a .safetensors file."""
    st = pytest.importorskip("safetensors.numpy")
    import golden

    g = golden.load(name)
    sd = golden.weights(g["spec"], gain=g["meta"].get("gain", 1.0))
    sd.update({k: np.asarray(g[f"buffer:{k}"]) for k in g["meta"]["buffers"]})
    path = tmp_path / "swinir.safetensors"
    st.save_file(sd, str(path))
    return path


def test_swinir_with_a_wrong_reference_weight_fails(tmp_path, monkeypatch):
    # measured: the conversion's probe error is 4.8e-6; conv_first's first weight +0.05 in the
    # reference moves it to 2.3e-2 (23x the 1e-3 tolerance)
    path = _swinir_safetensors(tmp_path)
    conv = converter_for("safetensors").convert(path, None, {})
    assert conv.info["arch"] == "swinir" and conv.probe_error <= 1e-5
    perturb_reference(monkeypatch, 0.05)
    with pytest.raises(check.VerificationFailed, match=r"swinir.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


def test_swinir_with_one_wrong_attention_weight_in_the_graph_fails(tmp_path, monkeypatch):
    """One row of the first attention Linear's weight (a MatMul initializer: only the
    transformer path has them) moved by 0.5 in the emitted ONNX: the check must see it
    (measured: the probe error goes from ~5e-6 to 9.1e-3, 9x the 1e-3 tolerance)."""
    import onnx
    from onnx import numpy_helper

    path = _swinir_safetensors(tmp_path)
    real = check.build

    def one_weight_off(*a: Any, **k: Any) -> tuple[bytes, int]:
        data, params = real(*a, **k)
        m = onnx.load_from_string(data)
        matmul_w = {n.input[1] for n in m.graph.node if n.op_type == "MatMul"}
        init = next(t for t in m.graph.initializer if t.name in matmul_w)
        w = numpy_helper.to_array(init).copy()
        w[0] += 0.5
        init.CopyFrom(numpy_helper.from_array(w, init.name))
        return m.SerializeToString(), params

    monkeypatch.setattr(check, "build", one_weight_off)
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


def test_drct_with_a_wrong_reference_weight_fails(tmp_path, monkeypatch):
    # measured: the conversion's probe error is 4.4e-6; conv_first's first weight +0.05 in the
    # reference moves it to 2.3e-2 (23x the 1e-3 tolerance)
    path = _swinir_safetensors(tmp_path, "drct_shift-x2")
    conv = converter_for("safetensors").convert(path, None, {})
    assert conv.info["arch"] == "drct" and conv.info["shift"] == 2 and conv.probe_error <= 1e-5
    perturb_reference(monkeypatch, 0.05)
    with pytest.raises(check.VerificationFailed, match=r"swinir.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


def test_srformer_with_a_wrong_reference_weight_fails(tmp_path, monkeypatch):
    # measured: the conversion's probe error is 2.9e-6; conv_first's first weight +0.05 in the
    # reference moves it to 2.4e-2 (24x the 1e-3 tolerance)
    path = _swinir_safetensors(tmp_path, "srformer_ps-x2-w4")
    conv = converter_for("safetensors").convert(path, None, {})
    assert conv.info["arch"] == "srformer" and conv.info["shift"] == 2 and conv.probe_error <= 1e-5
    perturb_reference(monkeypatch, 0.05)
    with pytest.raises(check.VerificationFailed, match=r"swinir.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


def test_srformer_with_one_wrong_key_weight_in_the_graph_fails(tmp_path, monkeypatch):
    """One row of the first permuted attention's ``kv`` weight (the keys' MatMul initializer,
    of shape (dim, dim/4)) moved by 0.5 in the emitted ONNX: the check must see it
    (measured: the probe error goes from 2.9e-6 to 1.6e-2, 16x the 1e-3 tolerance)."""
    import onnx
    from onnx import numpy_helper

    path = _swinir_safetensors(tmp_path, "srformer_ps-x2-w4")
    real = check.build

    def one_weight_off(*a: Any, **k: Any) -> tuple[bytes, int]:
        data, params = real(*a, **k)
        m = onnx.load_from_string(data)
        matmul_w = {n.input[1] for n in m.graph.node if n.op_type == "MatMul"}
        init = next(t for t in m.graph.initializer if t.name in matmul_w and tuple(t.dims) == (12, 3))
        w = numpy_helper.to_array(init).copy()
        w[0] += 5.0
        init.CopyFrom(numpy_helper.from_array(w, init.name))
        return m.SerializeToString(), params

    monkeypatch.setattr(check, "build", one_weight_off)
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


# ---------------------------------------------------------------- DAT (windows, masks, position bias)
def _dat_golden():
    import golden
    from srzoo.convert import arch as archs

    g = golden.load("dat_2x4-ps-x2")
    # unit-scale weights of either sign (golden.weights draws 2-D weights in [0.05, 0.3], which
    # makes the position-bias MLP nearly constant, and a constant bias is lost in the softmax)
    rng = np.random.default_rng(3)
    sd = {}
    for key, shape in g["spec"]:
        v = rng.standard_normal(shape)
        if len(shape) >= 2:
            v /= np.sqrt(np.prod(shape[1:]))
        else:
            v = 1 + 0.3 * v if key.endswith("weight") else 0.1 * v
        sd[key] = v.astype(np.float32)
    sd.update({k: np.asarray(g[f"buffer:{k}"]) for k in g["meta"]["buffers"]})
    return sd, archs.detect(sd, 2)


def test_dat_with_a_wrong_reference_weight_fails():
    sd, a = _dat_golden()
    conv = check.convert_arch(sd, a, "dat test", ops=reference.NumpyOps())
    assert conv.probe_error <= 1e-4 and conv.checked_against.endswith("on a 32x32 probe")
    with pytest.raises(check.VerificationFailed, match=r"^dat test: converted graph differs .*\(allowed 0.001\)"):
        check.convert_arch(sd, a, "dat test", ops=PerturbedOps(reference.NumpyOps(), 0.05))


@pytest.mark.parametrize("part", ["shift_mask", "position_bias"])
def test_dat_reference_without_the_mask_or_the_position_bias_fails(monkeypatch, part):
    """The check sees DAT's own parts: a reference that leaves out the shifted-window mask
    (or has the relative position bias of the queries in reverse order) while the graph has it is refused."""
    from srzoo.convert.arch import _dat

    sd, a = _dat_golden()
    onnx_bytes, _ = check.build(a.forward, sd, a, "dat")
    real = getattr(_dat, part)
    if part == "shift_mask":
        monkeypatch.setattr(_dat, part, lambda F, x, *r: F.input(np.zeros((1, 1, 1, 1), np.float32)))
    else:
        monkeypatch.setattr(_dat, part, lambda *args: real(*args)[:, ::-1])  # queries reversed
    ops = reference.NumpyOps()

    def ref(x):
        return ops.output(a.forward(ops, sd, a, ops.input(x)))
    with pytest.raises(check.VerificationFailed, match=r"differs from the reference by .*\(allowed 0.001\)"):
        check.compare(onnx_bytes, ref, 3, size=32, tol=1e-3, what="dat")
    monkeypatch.setattr(_dat, part, real)
    assert check.compare(onnx_bytes, ref, 3, size=32, tol=1e-4, what="dat") <= 1e-4


def test_rgt_with_a_wrong_reference_weight_fails():
    import golden
    from srzoo.convert import arch as archs

    g = golden.load("rgt_2x4-x2")
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    sd.update({k: np.asarray(g[f"buffer:{k}"]) for k in g["meta"]["buffers"]})
    a = archs.detect(sd, 2)
    conv = check.convert_arch(sd, a, "rgt test", ops=reference.NumpyOps())
    assert a.name == "rgt" and conv.probe_error <= 1e-4 and conv.checked_against.endswith("on a 32x32 probe")
    with pytest.raises(check.VerificationFailed, match=r"^rgt test: converted graph differs .*\(allowed 0.001\)"):
        check.convert_arch(sd, a, "rgt test", ops=PerturbedOps(reference.NumpyOps(), 0.05))


# ---------------------------------------------------------------- HAT (overlapping cross-attention)
def test_hat_with_a_wrong_reference_weight_fails(tmp_path, monkeypatch):
    # measured: the conversion's probe error is 3.7e-6; conv_first's first weight +0.05 in the
    # reference moves it to 3.5e-2 (35x the 1e-3 tolerance)
    path = _swinir_safetensors(tmp_path, "hat_ps-x2-w4")
    conv = converter_for("safetensors").convert(path, None, {})
    assert conv.info["arch"] == "hat" and conv.info["overlap_window"] == 6 and conv.probe_error <= 1e-5
    perturb_reference(monkeypatch, 0.05)
    with pytest.raises(check.VerificationFailed, match=r"swinir.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


def test_hat_with_overlapping_windows_one_row_off_in_the_graph_fails(tmp_path, monkeypatch):
    """The emitted graph's overlapping key/value windows taken one row lower (an off-by-one
    in their padding) while the reference is right: the check must see it (measured: the
    probe error goes from 3.7e-6 to 1.0e-1)."""
    from srzoo.convert.onnxbuild import Graph

    path = _swinir_safetensors(tmp_path, "hat_ps-x2-w4")
    real = Graph.overlap_windows
    monkeypatch.setattr(Graph, "overlap_windows", lambda self, x, ws, ows: real(self, self.roll(x, -1, 0), ws, ows))
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


# ---------------------------------------------------------------- Swin2SR (Swin V2: cosine attention)
def test_swin2sr_with_a_wrong_reference_weight_fails(tmp_path, monkeypatch):
    # measured: the conversion's probe error is 5.1e-6; conv_first's first weight +0.05 in the
    # reference moves it to 2.9e-2 (29x the 1e-3 tolerance)
    path = _swinir_safetensors(tmp_path, "swin2sr_ps-x2-w4")
    conv = converter_for("safetensors").convert(path, None, {})
    assert conv.info["arch"] == "swin2sr" and conv.info["shift"] == 2 and conv.probe_error <= 1e-5
    perturb_reference(monkeypatch, 0.05)
    with pytest.raises(check.VerificationFailed, match=r"swinir.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})


def test_swin2sr_with_dot_product_attention_in_the_graph_fails(tmp_path, monkeypatch):
    """The emitted graph's queries and keys left unnormalised (Swin V1's dot products instead
    of V2's cosine similarity) while the reference is right: the check must see it
    (measured: the probe error goes from 5.1e-6 to 0.25)."""
    from srzoo.convert.onnxbuild import Graph

    path = _swinir_safetensors(tmp_path, "swin2sr_ps-x2-w4")
    monkeypatch.setattr(Graph, "l2_normalize", lambda self, t, eps=1e-12: t)
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached"):
        converter_for("safetensors").convert(path, None, {})
# ---------------------------------------------------------------- RCAN (channel attention, MeanShift, unshuffle)
@pytest.mark.parametrize("name", ["rcan_norm-x3", "rcan_unshuffle-x1"])
def test_rcan_with_a_wrong_reference_weight_fails(name):
    import golden
    from srzoo.convert import arch as archs

    g = golden.load(name)
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    a = archs.detect(sd, g["meta"]["scale"])
    conv = check.convert_arch(sd, a, "rcan test", ops=reference.NumpyOps())
    assert a.name == "rcan" and conv.probe_error <= 1e-4
    with pytest.raises(check.VerificationFailed, match=r"^rcan test: converted graph differs .*\(allowed 0.001\)"):
        check.convert_arch(sd, a, "rcan test", ops=PerturbedOps(reference.NumpyOps(), 0.05))


def test_rcan_reference_without_the_channel_attention_fails(monkeypatch):
    """A reference whose channel attention is the identity (sigmoid -> 1) while the graph has it is refused."""
    import golden
    from srzoo.convert import arch as archs
    from srzoo.convert.arch import rcan

    g = golden.load("rcan_norm-x3")
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    a = archs.detect(sd, 3)
    onnx_bytes, _ = check.build(a.forward, sd, a, "rcan")
    ops = reference.NumpyOps()

    def ref(x):
        return ops.output(a.forward(ops, sd, a, ops.input(x)))
    assert check.compare(onnx_bytes, ref, 3, size=32, tol=1e-4, what="rcan") <= 1e-4
    real = rcan._rcab
    monkeypatch.setattr(rcan, "_rcab", lambda F, sd_, p, x: real(type("NoCA", (), {
        "__getattr__": lambda s, n: getattr(F, n), "sigmoid": lambda s, t: F.affine(t, 0.0, 1.0)})(), sd_, p, x))
    with pytest.raises(check.VerificationFailed, match=r"differs from the reference by .*\(allowed 0.001\)"):
        check.compare(onnx_bytes, ref, 3, size=32, tol=1e-3, what="rcan")


# ---------------------------------------------------------------- SAFMN (pooled levels, channels-first LayerNorm)
@pytest.mark.parametrize("name", ["safmn_x2", "safmn_bcie-u2"])
def test_safmn_with_a_wrong_reference_weight_fails(name):
    import golden
    from srzoo.convert import arch as archs

    g = golden.load(name)
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    a = archs.detect(sd, g["meta"]["scale"])
    conv = check.convert_arch(sd, a, "safmn test", ops=reference.NumpyOps())
    assert a.name.startswith("safmn") and conv.probe_error <= 1e-4
    with pytest.raises(check.VerificationFailed, match=r"^safmn test: converted graph differs .*\(allowed 0.001\)"):
        check.convert_arch(sd, a, "safmn test", ops=PerturbedOps(reference.NumpyOps(), 0.05))


def test_safmn_reference_with_average_instead_of_max_pooling_fails(monkeypatch):
    """The check sees SAFM's pooled levels: a reference that averages where the graph takes the
    maximum is refused."""
    import golden
    from srzoo.convert import arch as archs

    g = golden.load("safmn_x2")
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    a = archs.detect(sd, 2)
    onnx_bytes, _ = check.build(a.forward, sd, a, "safmn")
    ops = reference.NumpyOps()

    def ref(x):
        return ops.output(a.forward(ops, sd, a, ops.input(x)))
    assert check.compare(onnx_bytes, ref, 3, size=32, tol=1e-4, what="safmn") <= 1e-4

    def avgpool(x, k, stride):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // k, k, w // k, k).mean((3, 5))
    monkeypatch.setattr(ops, "maxpool", avgpool)
    with pytest.raises(check.VerificationFailed, match=r"differs from the reference by .*\(allowed 0.001\)"):
        check.compare(onnx_bytes, ref, 3, size=32, tol=1e-3, what="safmn")


# ---------------------------------------------------------------- SPSR (gradient branch, two RRDB trunks)
def test_spsr_with_a_wrong_reference_weight_fails():
    import golden
    from srzoo.convert import arch as archs

    g = golden.load("spsr_upconv-x2")
    sd = golden.weights(g["spec"], gain=g["meta"]["gain"])
    sd.update({k: sd[a] for k, a in g["meta"]["alias"].items()})
    a = archs.detect(sd, 2)
    conv = check.convert_arch(sd, a, "spsr test", ops=reference.NumpyOps())
    assert a.name == "spsr" and conv.probe_error <= 1e-4
    with pytest.raises(check.VerificationFailed, match=r"^spsr test: converted graph differs .*\(allowed 0.001\)"):
        check.convert_arch(sd, a, "spsr test", ops=PerturbedOps(reference.NumpyOps(), 0.05))


# ---------------------------------------------------------------- ATD (token dictionary, category-sorted groups)
def test_atd_with_a_wrong_reference_weight_fails(tmp_path, monkeypatch):
    # measured: the conversion's probe error is 4.5e-6; conv_first's first weight +0.05 in the
    # reference moves it to 3.3e-2 (33x the 1e-3 tolerance)
    path = _swinir_safetensors(tmp_path, "atd_ps-x2-w4")
    conv = converter_for("safetensors").convert(path, None, {})
    assert conv.info["arch"] == "atd" and conv.info["category_size"] == 256 and conv.probe_error <= 1e-5
    perturb_reference(monkeypatch, 0.05)
    with pytest.raises(check.VerificationFailed, match=r"swinir.safetensors: converted graph differs from the "
                                                       r"reference by .* \(allowed 0.001\); not cached") as e:
        converter_for("safetensors").convert(path, None, {})
    print(e.value)


def test_atd_with_ties_sorted_the_other_way_in_the_graph_fails(tmp_path, monkeypatch):
    """The emitted graph's category sort breaking ties in reverse token order (another valid
    sort by category, as an unstable sort may give) while the reference sorts stably: the
    groups of the 32x32 probe (1024 tokens in groups of 256) then hold other tokens, and the
    check must see it (measured: the probe error goes from 4.5e-6 to 5.1e-2)."""
    from srzoo.convert.onnxbuild import Graph

    path = _swinir_safetensors(tmp_path, "atd_ps-x2-w4")
    real = Graph.category_order

    def reversed_ties(self: Graph, sim: str, m: int) -> tuple[str, str]:
        big = np.iinfo(np.int64).max
        flip = [self._i64([-1]), self._i64([-big]), self._i64([1]), self._i64([-1])]
        perm_r, rank_r = real(self, self.node("Slice", [sim, *flip]), m)
        last = self.node("Sub", [self._dims(sim, 1, 2), self._i64([1])])
        return self.node("Sub", [last, perm_r]), self.node("Slice", [rank_r, *flip])

    monkeypatch.setattr(Graph, "category_order", reversed_ties)
    with pytest.raises(check.VerificationFailed, match=r"\(allowed 0.001\); not cached") as e:
        converter_for("safetensors").convert(path, None, {})
    print(e.value)


# --------------------------------------------------------------------------- graphs OpenCV cannot import
def _one_op_graph(op: str, out_shape: list[int]) -> bytes:
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], name="g")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def _cv2_imports(onnx_bytes: bytes) -> bool:
    import cv2

    from srzoo.convert.onnxbuild import run_cv2

    try:
        run_cv2(onnx_bytes, np.ones((1, 1, 4, 4), np.float32))
        return True
    except cv2.error:
        return False


def test_run_graph_falls_back_to_onnxruntime_for_an_operation_opencv_lacks():
    """GlobalLpPool (neither OpenCV 4.10 nor 5.1 imports it) runs on ONNX Runtime: the L2 norm
    of each channel, as NumPy computes it."""
    pytest.importorskip("onnxruntime")
    graph = _one_op_graph("GlobalLpPool", [1, 1, 1, 1])
    if _cv2_imports(graph):
        pytest.skip("this OpenCV imports GlobalLpPool: no fallback to test with it")
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4) / 7  # float64 in: cast for the graph
    got = check.run_graph(graph, x)
    assert got.dtype == np.float32 and got.shape == (1, 1, 1, 1)
    assert abs(float(got[0, 0, 0, 0]) - float(np.sqrt((x.astype(np.float64) ** 2).sum()))) <= 1e-5


def test_run_graph_without_onnxruntime_names_what_opencv_could_not_import(monkeypatch):
    """Without ONNX Runtime, a graph OpenCV cannot import is one line naming the operation (cut
    to 160 characters) and what to install; OpenCV's own words for 4.10 and 5.1 are read the same."""
    import sys

    import cv2

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime: ImportError
    x = np.ones((1, 1, 4, 4), np.float32)
    long_op = "Long" + "q" * 200  # no OpenCV has it
    for op, shape, why in (("GlobalLpPool", [1, 1, 1, 1], "unsupported operations: GlobalLpPool"),
                           (long_op, [1, 1, 4, 4], f"unsupported operations: {long_op}"[:160])):
        graph = _one_op_graph(op, shape)
        if op == "GlobalLpPool" and _cv2_imports(graph):
            continue
        with pytest.raises(srzoo.SrzooError) as err:
            check.run_graph(graph, x)
        assert str(err.value) == (f"OpenCV {cv2.__version__} cannot import the converted graph ({why}); "
                                  "install ONNX Runtime to check and run it: pip install 'srzoo[onnxruntime]'")


# OpenCV's errors for a graph with a GlobalLpPool node, as 4.10.0 and 5.1.0 word them
CV410 = ("OpenCV(4.10.0) /io/opencv/modules/dnn/src/onnx/onnx_importer.cpp:1057: error: (-2:Unspecified error) "
         "in function 'handleNode'\n> Node [GlobalLpPool@ai.onnx]:(onnx_node!g) parse error: OpenCV(4.10.0) "
         "/io/opencv/modules/dnn/src/net_impl.hpp:108: error: (-2:Unspecified error) Can't create layer "
         "\"onnx_node!g\" of type \"GlobalLpPool\" in function 'getLayerInstance'\n> ")
CV510 = ("OpenCV(5.1.0) /io/opencv/modules/dnn/src/net_impl.cpp:1588: error: (-2:Unspecified error) in function "
         "'setInput'\n> DNN/ONNX: the model cannot be loaded by the DNN engine. Unsupported operations:\n"
         "> \tGlobalLpPool\n> \tMeanVarianceNormalization\n> ")


def test_import_failure_reads_both_opencv_wordings():
    assert check.import_failure(CV410) == "unsupported operations: GlobalLpPool"
    assert check.import_failure(CV510) == "unsupported operations: GlobalLpPool, MeanVarianceNormalization"
    assert check.import_failure(CV510.replace("\tGlobalLpPool", "\tXor")) == \
        "unsupported operations: Xor, MeanVarianceNormalization"
    # each type once, both wordings in one message too; anything else: the error's first line
    assert check.import_failure(CV410 + CV410) == "unsupported operations: GlobalLpPool"
    assert check.import_failure(CV410.replace("GlobalLpPool", "Xor") + CV510) == \
        "unsupported operations: Xor, GlobalLpPool, MeanVarianceNormalization"
    assert check.import_failure("\n  OpenCV(5.1.0) x.cpp:1: error: (-215) shape\n> more\n> and more\n") == \
        "OpenCV(5.1.0) x.cpp:1: error: (-215) shape"
