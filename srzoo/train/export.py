"""ONNX export that ``cv2.dnn`` runs, checked against the torch model, and the
manifest entry that makes the file a registry model.

The graph is exported with the TorchScript-based exporter (``dynamo=False``,
opset 13): plain Conv / Relu / PRelu / Add / DepthToSpace nodes with dynamic
height and width, which OpenCV's ONNX importer reads without ``onnxscript``.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from srzoo import fsutil
from srzoo.errors import SrzooError

__all__ = ["onnx_bytes", "export_onnx", "check_with_opencv", "manifest_entry", "OPSET"]

OPSET = 13


def onnx_bytes(model: torch.nn.Module, *, pre_upsample: bool = False, scale: int = 1) -> bytes:
    """The model as ONNX bytes (input ``input``, output ``output``, N x 1 x H x W)."""
    model = model.eval()
    side = 24 * (scale if pre_upsample else 1)
    dummy = torch.zeros(1, 1, side, side)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, dummy, buf, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {2: "height", 3: "width"},
                                        "output": {2: "out_height", 3: "out_width"}})
    return buf.getvalue()


def check_with_opencv(path: str | Path, model: torch.nn.Module, *, pre_upsample: bool = False,
                      scale: int = 1, seed: int = 0, tol: float = 1e-4) -> float:
    """Run the ONNX file with ``cv2.dnn`` and the torch model on the same random
    input; return max |difference|. Raises if OpenCV cannot run it or the
    difference exceeds ``tol``."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = 37, 45
    if pre_upsample:
        h, w = h * scale, w * scale
    x = rng.random((1, 1, h, w), dtype=np.float32)
    try:
        net = cv2.dnn.readNetFromONNX(str(path), **_classic())
        net.setInput(x)
        got = net.forward()
    except cv2.error as e:
        raise SrzooError(f"{path}: cv2.dnn cannot run the exported model: {str(e).strip().splitlines()[-1]}") from None
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()
    if got.shape != want.shape:
        raise SrzooError(f"{path}: cv2.dnn gives shape {got.shape}, torch {want.shape}")
    d = float(np.abs(got - want).max())
    if d > tol:
        raise SrzooError(f"{path}: cv2.dnn output differs from torch by {d:.2e} (> {tol:g})")
    return d


def _classic() -> dict:
    import cv2

    classic = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    return {} if classic is None else {"engine": classic}


def export_onnx(model: torch.nn.Module, path: str | Path, *, pre_upsample: bool = False,
                scale: int = 1, check: bool = True) -> dict:
    """Write the ONNX file atomically, check it with cv2.dnn; return
    ``{"file", "size", "sha256", "max_abs_diff"}``."""
    path = Path(path)
    data = onnx_bytes(model, pre_upsample=pre_upsample, scale=scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    try:
        diff = check_with_opencv(tmp, model, pre_upsample=pre_upsample, scale=scale) if check else None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fsutil.atomic_write(path, data)  # a regular file atomically; a device written through
    finally:
        tmp.unlink(missing_ok=True)
    return {"file": path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "max_abs_diff": diff}


def manifest_entry(name: str, scale: int, info: dict, *, arch: str = "", pre_upsample: bool = False,
                   bundled: bool = False, description: str = "",
                   license: str = "unspecified (set the licence of your training images)") -> str:
    """A ``[[model]]`` TOML block for the exported file (``info`` from :func:`export_onnx`).

    With ``bundled`` the file ships inside the srzoo package (``srzoo/builtin/``)
    and needs no URL; otherwise ``urls`` holds a placeholder to replace, and until
    then ``SRZOO_MIRROR`` naming the file's folder makes the entry usable."""
    lines = ["[[model]]", f'name = "{name}"', f"scale = {int(scale)}", f'file = "{info["file"]}"',
             'format = "onnx"', f"size = {info['size']}", f'sha256 = "{info["sha256"]}"',
             f"license = {json.dumps(license)}"]
    if bundled:
        lines.append("bundled = true")
        lines.append("urls = []")
    else:
        # a placeholder that validates: with SRZOO_MIRROR naming the folder of the file,
        # the file is copied from there; replace it with the URL where you publish the file
        lines.append(f'urls = ["https://example.invalid/{info["file"]}"]  '
                     "# placeholder: replace with where this file is published")
    if arch:
        lines.append(f'arch = "{arch}"')
    if description:
        lines.append(f"description = {json.dumps(description)}")
    lines.append('io = { color = "y", range = 1.0, layout = "nchw"'
                 + (', pre_upsample = "bicubic"' if pre_upsample else "") + " }")
    return "\n".join(lines) + "\n"
