"""References computed with OpenCV directly, not through srzoo."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def run_onnx(data: bytes, x: np.ndarray, tmp: Path) -> np.ndarray:
    """The output of the ONNX model ``data`` on the NCHW tensor ``x`` in plain
    ``cv2.dnn`` (written to ``tmp/m.onnx`` and read back)."""
    p = tmp / "m.onnx"
    p.write_bytes(data)
    net = cv2.dnn.readNetFromONNX(str(p))
    net.setInput(x)
    return net.forward()


#: dnn_superres upsample() of the .pb models, recorded (tests/runtime/test_dnn_superres_refs.py)
DNN_SUPERRES_REFS = Path(__file__).parent / "data" / "dnn_superres"


def refs_crop(shared: Path) -> np.ndarray:
    """The colour crop the dnn_superres references were recorded on (refs.json)."""
    import json

    import cv2

    refs = json.loads((DNN_SUPERRES_REFS / "refs.json").read_text())
    img = cv2.imread(str(shared / refs["image"]), cv2.IMREAD_COLOR)
    assert img is not None, shared / refs["image"]
    c = refs["crop"]
    return np.ascontiguousarray(img[c["y0"]:c["y1"], c["x0"]:c["x1"]])


def dnn_superres_upsample(pb: Path, algo: str, scale: int, img: np.ndarray, tmp: Path,
                          layout: str = "nhwc") -> np.ndarray:
    """``cv2.dnn_superres`` ``upsample()`` of ``img`` with the model ``pb``: the
    ``.pb`` itself where this OpenCV reads TensorFlow graphs (4.x, 5.0); on
    OpenCV 5.1, which reads only ONNX there, the ONNX that
    ``srzoo.convert.graphdef`` translates from it in ``layout`` (the manifest's
    ``io.export_layout``, as ``srzoo export`` writes it; the translation is
    checked against the committed references of the real models in
    test_dnn_superres_refs.py). Either way OpenCV does the pre- and
    post-processing, not srzoo."""
    import cv2

    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    if hasattr(cv2.dnn, "readNetFromTensorflow"):
        sr.readModel(str(pb))
    else:
        from srzoo.convert.graphdef import graphdef_to_onnx

        data, _ = graphdef_to_onnx(Path(pb).read_bytes(), input_layout=layout)
        onnx_path = tmp / (Path(pb).stem + ".onnx")
        onnx_path.write_bytes(data)
        sr.readModel(str(onnx_path))
    sr.setModel(algo, scale)
    return sr.upsample(img)


def assert_near_upsample(out: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    """``out`` is ``upsample()``'s ``ref`` up to chroma rounding.

    upsample() resizes the chroma planes as float32 in [0, 1] and rounds;
    srzoo resizes the 8-bit planes with INTER_LINEAR_EXACT (correctly rounded
    bilinear). They differ only where the exact bilinear value lies half-way
    between two levels and float error picks the side: after the colour
    conversion at most 2 levels, measured on textured crops of monarch on
    0.9-1.5 % of values at x2 (0.3-0.7 % by 2 levels), 0.4 % at x4, 0.2-0.3 %
    at x8, none seen at x3; the bounds below are twice the worst of those. uint8
    INTER_LINEAR (fixed point, not correctly rounded) would differ on ~7 %.
    A network that differs by float error (another engine) adds rare 1-level
    differences. Grey images have no chroma.
    """
    assert out.shape == ref.shape and out.dtype == ref.dtype, (what, out.shape, ref.shape)
    d = np.abs(out.astype(np.int64) - ref.astype(np.int64))
    assert d.max() <= 2, (what, int(d.max()))
    assert (d > 0).mean() <= 0.03, (what, float((d > 0).mean()))
    assert (d > 1).mean() <= 0.015, (what, float((d > 1).mean()))
