"""Build an architecture's ONNX graph and check it against an eager forward pass."""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert import Conversion, reference
from srzoo.convert.onnxbuild import OPSET, Graph, probe, run_cv2
from srzoo.errors import ConversionFailed, SrzooError


class VerificationFailed(ConversionFailed):
    """The converted graph and the reference disagree on the probe (a
    :class:`~srzoo.errors.ConversionFailed`, like the dnn_superres converter's refusal)."""


def build(forward: Any, sd: Any, arch: Any, name: str) -> tuple[bytes, int]:
    g = Graph(name, opset=getattr(arch, "opset", OPSET))
    x = g.input(arch.in_channels)
    y = forward(g, sd, arch, x)
    return g.finish(y, arch.out_channels), g.params


def compare(onnx_bytes: bytes, reference: Any, channels: int, *, size: int, tol: float,
            what: str) -> float:
    """Largest |difference| between the ONNX (run by :func:`run_graph`) and ``reference(x)`` on a probe."""
    x = probe(channels, size)
    got = run_graph(onnx_bytes, x)
    want = np.asarray(reference(x), np.float32)
    if got.shape != want.shape:
        raise VerificationFailed(f"{what}: converted graph gives shape {got.shape}, the reference {want.shape}")
    err = float(np.max(np.abs(got - want)))
    if not err <= tol:  # also catches NaN
        raise VerificationFailed(f"{what}: converted graph differs from the reference by {err:.3g} "
                                 f"(allowed {tol:g}); not cached")
    return err


_LAYER_4X = re.compile(r"Can't create layer \"[^\"]*\" of type \"([^\"]+)\"")
_UNSUPPORTED_5X = re.compile(r"Unsupported operations:\n((?:>[ \t]*\S+\n?)+)")


def import_failure(message: str) -> str:
    """What an OpenCV error importing an ONNX graph says could not be imported, in one line:
    ``unsupported operations: A, B`` (4.x names one layer's type, 5.x lists the operations),
    else the error's first line."""
    types = _LAYER_4X.findall(message)
    listed = _UNSUPPORTED_5X.search(message)
    if listed:
        types += re.findall(r"^>\s*(\S+)", listed.group(1), re.M)
    if types:
        return "unsupported operations: " + ", ".join(dict.fromkeys(types))
    return message.strip().partition("\n")[0].strip()


def run_graph(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """cv2.dnn on the graph; ONNX Runtime where this OpenCV's importer cannot take one of
    its operators (OpenCV 4.x has no ``GridSample``, which DySample needs)."""
    import cv2

    try:
        return run_cv2(onnx_bytes, x)
    except cv2.error as e:
        why = import_failure(str(e))
        try:
            import onnxruntime as ort
        except ImportError:
            raise SrzooError(f"OpenCV {cv2.__version__} cannot import the converted graph ({why[:160]}); "
                             "install ONNX Runtime to check and run it: pip install 'srzoo[onnxruntime]'") from None
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0],
                      np.float32)


def tool_versions(*names: str) -> dict[str, str]:
    import importlib

    out = {}
    for n in ("onnx", *names):
        try:
            out[n] = importlib.import_module(n).__version__
        except ImportError:
            pass
    return out


def convert_arch(sd: Mapping[str, np.ndarray], arch: Any, what: str, *, tol: float = 1e-3,
                 ops: Any = None, info: dict[str, Any] | None = None) -> Conversion:
    """ONNX of ``arch`` with ``sd``'s weights, verified on a probe against ``ops`` (default: best)."""

    onnx_bytes, params = build(arch.forward, sd, arch, arch.name)
    ops = ops or reference.best()
    size = max(32, 2 * arch.min_size)

    def ref(x: np.ndarray) -> np.ndarray:
        return ops.output(arch.forward(ops, sd, arch, ops.input(x)))
    err = compare(onnx_bytes, ref, arch.in_channels, size=size, tol=tol, what=what)
    facts = {"opset": getattr(arch, "opset", OPSET), "arch": arch.name, "scale": arch.scale, "params": params,
             "color": arch.color, "pre_upsample": arch.pre_upsample,
             **{k: v for k, v in arch.params.items() if not k.startswith("_")}, **(info or {})}
    return Conversion(onnx=onnx_bytes, info=facts, probe_error=err,
                      checked_against=f"{ops.name} on a {size}x{size} probe",
                      tools=tool_versions("torch" if "torch" in ops.name else "numpy"))
