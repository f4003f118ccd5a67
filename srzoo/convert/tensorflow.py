"""TensorFlow models to ONNX through tf2onnx (the ``tensorflow`` extra).

Sources: a SavedModel folder or a ``.tar.gz`` of one (like the TF Hub ESRGAN
tutorials use: NHWC RGB in [0,255] in and out), a GraphDef ``.pb`` (given
its input and output names), and a Keras model file. The ONNX keeps the
graph's own layout and range (recorded in the conversion's ``info`` as
``layout``/``range``/``color`` for the manifest). The check runs the
TensorFlow function and cv2.dnn on the ONNX on the same probe; differences
are measured on outputs scaled to [0,1].
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from srzoo.convert import Conversion, register
from srzoo.convert.check import tool_versions
from srzoo.convert.onnxbuild import OPSET, probe, run_cv2
from srzoo.errors import SrzooError
from srzoo.hub.archive import check


def _tf() -> tuple[Any, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError:
        raise SrzooError("converting TensorFlow models needs TensorFlow and tf2onnx: "
                         "pip install 'srzoo[tensorflow]'") from None
    return tf, tf2onnx


def _saved_model_dir(source: Path, tmp: Path) -> Path:
    if source.is_dir():
        return source

    check(source)  # no absolute paths, '..', links; bounded size
    with tarfile.open(source, "r:*") as t:
        t.extractall(tmp, filter="data")
    found = [p.parent for p in tmp.rglob("saved_model.pb")]
    if len(found) != 1:
        raise SrzooError(f"{source}: the archive holds {len(found)} SavedModels (saved_model.pb), expected one")
    return found[0]


def _function(tf: Any, source: Path, tmp: Path) -> tuple[Any, int, Any]:
    """A tf.function of one NHWC image input, its channel count, and the object that owns its variables."""
    if source.is_file() and source.suffix in (".keras", ".h5"):
        model = tf.keras.models.load_model(source, compile=False, safe_mode=True)
        c = int(model.inputs[0].shape[-1])
        spec = tf.TensorSpec([1, None, None, c], tf.float32, name="tf_input")
        return tf.function(lambda x: model(x), input_signature=[spec]), c, model
    folder = _saved_model_dir(source, tmp)
    loaded = tf.saved_model.load(str(folder))
    sig = getattr(loaded, "signatures", {}).get("serving_default")
    if sig is not None:
        (name, spec0), = sig.structured_input_signature[1].items()
        c = int(spec0.shape[-1] or 3)
        spec = tf.TensorSpec([1, None, None, c], tf.float32, name="tf_input")
        out_key = next(iter(sig.structured_outputs))
        return tf.function(lambda x: sig(**{name: x})[out_key], input_signature=[spec]), c, loaded
    spec = tf.TensorSpec([1, None, None, 3], tf.float32, name="tf_input")
    return tf.function(lambda x: loaded(x), input_signature=[spec]), 3, loaded


def _to_nchw(proto: Any, c: int) -> None:
    """Give the graph one NCHW input ``input`` and one NCHW output ``output`` (Transposes
    around TensorFlow's NHWC), like every other converted graph."""
    import onnx
    from onnx import helper

    g = proto.graph
    old_in, old_out = g.input[0].name, g.output[0].name
    g.node.insert(0, helper.make_node("Transpose", ["input"], [old_in], name="srzoo_nchw_to_nhwc", perm=[0, 2, 3, 1]))
    g.node.append(helper.make_node("Transpose", [old_out], ["output"], name="srzoo_nhwc_to_nchw", perm=[0, 3, 1, 2]))
    t = onnx.TensorProto.FLOAT
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("input", t, [1, c, "height", "width"]))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("output", t, [1, c, "out_height", "out_width"]))


class TFToONNX:
    name = "tf-onnx"
    version = "1"
    source_formats = frozenset({"tf-savedmodel", "keras-model"})

    def inspect(self, source: Path, scale: int | None = None, arch: str | None = None) -> dict[str, Any]:
        tf, _ = _tf()
        with tempfile.TemporaryDirectory() as tmp:
            fn, c, _keep = _function(tf, Path(source), Path(tmp))
            y = fn(tf.zeros([1, 16, 16, c]))
        return {"format": "tf-savedmodel", "inputs": [f"NHWC x{c}"], "scale": int(y.shape[1]) // 16,
                "layout": "nhwc"}

    def convert(self, source: Path, entry: Any, options: dict[str, Any]) -> Conversion:
        tf, tf2onnx = _tf()
        value_range = float(options.get("range", entry.io.range if entry is not None else 255.0))
        with tempfile.TemporaryDirectory() as tmp:
            fn, c, _keep = _function(tf, Path(source), Path(tmp))
            spec = (tf.TensorSpec([1, None, None, c], tf.float32, name="tf_input"),)
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=OPSET)
            _to_nchw(proto, c)
            for n in proto.graph.node:  # no free text that could vary
                n.doc_string = ""
            proto.producer_name, proto.producer_version, proto.doc_string = "srzoo+tf2onnx", tf2onnx.__version__, ""
            onnx_bytes = proto.SerializeToString()

            def reference(x_nchw: np.ndarray) -> np.ndarray:  # TensorFlow's own NHWC
                x = x_nchw.transpose(0, 2, 3, 1) * value_range
                return np.asarray(fn(tf.constant(x))).transpose(0, 3, 1, 2) / value_range

            def ours(x_nchw: np.ndarray) -> np.ndarray:
                return run_cv2(onnx_bytes, x_nchw * value_range) / value_range
            size = 32
            x = probe(c, size)
            want, got = reference(x), ours(x)
            if got.shape != want.shape:
                raise SrzooError(f"{source}: converted graph gives shape {got.shape}, TensorFlow {want.shape}")
            err = float(np.max(np.abs(got - want)))
            tol = float(options.get("tolerance", 1e-3))
            if not err <= tol:
                raise SrzooError(f"{source}: converted graph differs from TensorFlow by {err:.3g} "
                                 f"(allowed {tol:g}); not cached")
        scale = want.shape[2] // size
        info = {"opset": OPSET, "arch": "tensorflow", "scale": scale, "color": "rgb" if c == 3 else "y",
                "range": value_range, "layout": "nchw", "pre_upsample": None,
                "params": int(sum(np.prod(t.dims) for t in proto.graph.initializer))}
        return Conversion(onnx=onnx_bytes, info=info, probe_error=err,
                          checked_against=f"tensorflow {tf.__version__} on a {size}x{size} probe",
                          tools=tool_versions("tensorflow", "tf2onnx"))


CONVERTER = register(TFToONNX())
