"""Convert and inspect model files given by path (``srzoo convert``, ``srzoo inspect``).

The format is told from the bytes (zip or pickle: PyTorch; HDF5 signature:
Keras; ``7767517`` text: ncnn; protobuf with an ONNX graph: ONNX), never
from the file name alone.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srzoo import fsutil
from srzoo.convert import Conversion, converter_for
from srzoo.convert.derive import run_converter
from srzoo.errors import SrzooError
from srzoo.hub.manifest import parse_manifest
from srzoo.hub.untrusted import check_onnx_external, reading, regular_file

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def sniff(path: Path) -> str:
    """The format of a model file from its first bytes."""
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "tf-savedmodel"
        raise SrzooError(f"{path}: a folder that is not a TensorFlow SavedModel")
    regular_file(path)  # no device, FIFO or socket; within SRZOO_MAX_MODEL_BYTES
    with reading(path, "model file"):
        return _sniff(path)


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise SrzooError(f"{path}: cannot read: {e.strerror}") from None
    if head.startswith(HDF5_MAGIC):
        return "keras-model" if _h5_has_model(path) else "keras-h5"
    if head.startswith(b"\x1f\x8b"):
        return "tf-savedmodel"  # a .tar.gz of a SavedModel
    if head.startswith(b"PK\x03\x04") and _zip_has(path, "config.json", "model.weights.h5"):
        return "keras-model"
    if head.startswith(b"7767517"):
        return "ncnn"
    if head.startswith(b"PK\x03\x04") or head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "pytorch-pth"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if path.suffix.lower() == ".pb":
        return "tf-graphdef"
    if path.suffix.lower() == ".bin" and path.with_suffix(".param").is_file():
        return "ncnn"
    raise SrzooError(f"{path}: unknown model format (srzoo reads PyTorch .pth, Keras .h5, ncnn "
                     f".param + .bin and ONNX)")


def _h5_has_model(path: Path) -> bool:
    try:
        import h5py
    except ImportError:
        return False
    with h5py.File(path, "r") as f:
        return "model_config" in f.attrs


def _zip_has(path: Path, *names: str) -> bool:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return set(names) <= set(z.namelist())


@dataclass
class Converted:
    source: Path
    output: Path
    format: str
    conversion: Conversion
    sha256: str
    info: dict[str, Any] = field(default_factory=dict)


def atomic_write(path: Path, data: bytes) -> None:
    """``data`` into ``path`` (:func:`srzoo.fsutil.atomic_write`: a regular file is
    replaced atomically, a device or FIFO written through); one
    :class:`SrzooError` line naming the file when it fails."""
    try:
        fsutil.atomic_write(path, data)
    except OSError as e:
        raise SrzooError(fsutil.describe(e, path)) from None


def check_output(out: Path, inputs: list[Path], *, overwrite: bool = False) -> None:
    """Refuse to write ``out`` over one of ``inputs`` (ever), or over an existing
    regular file unless ``overwrite``; a device or FIFO (``/dev/null``) is
    written through and needs no ``overwrite``."""
    what = fsutil.kind(out)
    if what == "missing":
        return
    if what == "dir":
        raise SrzooError(f"{out}: is a folder; give -o a file name (OUT.onnx)")
    for src in inputs:
        try:
            same = src.exists() and os.path.samefile(out, src)
        except OSError:
            same = False
        if same:
            raise SrzooError(f"{out}: is the input {src}; refusing to overwrite it "
                             "(give -o another file)")
    if what == "file" and not overwrite:
        raise SrzooError(f"{out}: exists; refusing to replace it (use --overwrite, or -o another file)")


def convert_file(source: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, *,
                 arch: str = "auto", scale: int | None = None, value_range: float | None = None,
                 overwrite: bool = False) -> Converted:
    """Convert a model file to a verified ONNX file (written atomically).

    ``output`` defaults to the source's name with ``.onnx`` (``-x<scale>``
    added when a scale was asked for). An existing output is replaced only with
    ``overwrite``; the input (and an ncnn ``.bin`` beside it) never. Raises :class:`srzoo.SrzooError` with
    one line when the file is not understood or the check fails.
    """
    src = Path(source)
    fmt = sniff(src)
    if fmt in ("onnx", "tf-graphdef"):
        hint = "it runs as it is: use format = \"onnx\" in a manifest (see `srzoo inspect`)" if fmt == "onnx" \
            else "OpenCV runs TensorFlow GraphDefs directly (format = \"tf-graphdef\")"
        raise SrzooError(f"{src}: is {fmt}; {hint}")
    out = Path(output) if output else src.with_name(src.stem + (f"-x{scale}" if scale else "") + ".onnx")
    check_output(out, [src, src.with_suffix(".bin"), src.with_suffix(".param")], overwrite=overwrite)
    conv = converter_for(fmt)
    options: dict[str, Any] = {"arch": arch}
    if scale:
        options["scale"] = int(scale)
    if value_range:
        options["range"] = float(value_range)
    result = run_converter(conv, src, None, options)
    check_output(out, [src], overwrite=overwrite)  # again: it may have appeared meanwhile
    atomic_write(out, result.onnx)
    return Converted(src, out, fmt, result, hashlib.sha256(result.onnx).hexdigest(), dict(result.info))


def _manifest_name(name: str) -> str:
    n = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return n or "converted"


def write_manifest(path: str | os.PathLike[str], done: Converted, name: str | None = None,
                   license: str = "unknown (converted locally; see the source's licence)") -> str:
    """Append an entry for ``done.output`` (format onnx, a local ``path``) to a manifest file.

    Creates the file (``schema = 1``) if needed; refuses a duplicate name and
    scale. Returns the entry's name.
    """

    path = Path(path)
    name = _manifest_name(name or done.source.stem)
    info = done.info
    scale = int(info["scale"])
    if path.exists():
        models, _ = parse_manifest(path)
        if any(m.name == name and m.scale == scale for m in models):
            raise SrzooError(f"{path}: already has an entry {name} x{scale}; give --name or another --manifest")
        text = path.read_text()
        if not text.endswith("\n"):
            text += "\n"
    else:
        text = "# Converted models (written by `srzoo convert --manifest`).\nschema = 1\n"
    io = [f'color = "{info.get("color", "rgb")}"', f'range = {float(info.get("range", 1.0))}',
          f'layout = "{info.get("layout", "nchw")}"']
    if info.get("pre_upsample"):
        io.append(f'pre_upsample = "{info["pre_upsample"]}"')
    arch = f'{info.get("arch", "?")}, converted from {done.source.name} ({done.format})'
    text += (f'\n[[model]]\nname = "{name}"\nscale = {scale}\nformat = "onnx"\n'
             f'license = "{license}"\narch = "{arch}"\n'
             f'path = {_toml_str(str(done.output.resolve()))}\nsize = {done.output.stat().st_size}\n'
             f'sha256 = "{done.sha256}"\n\n[model.io]\n' + "\n".join(io) + "\n")
    atomic_write(path, text.encode())
    parse_manifest(path)  # what we wrote must read back
    return name


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _onnx_facts(path: Path) -> dict[str, Any]:
    """Inputs, outputs, opset and operator counts of an ONNX file, plus what a probe run shows."""
    try:
        import onnx
    except ImportError:
        raise SrzooError("inspecting ONNX files needs the onnx package: pip install 'srzoo[convert]'") from None
    regular_file(path, "ONNX model file")
    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several kinds
        raise SrzooError(f"{path}: not an ONNX model onnx can read ({str(e).splitlines()[0][:100]})") from None
    check_onnx_external(path, m)  # before cv2.dnn's probe opens what the tensors name
    inits = {i.name for i in m.graph.initializer}

    def dims(v: Any) -> list[Any]:
        return [d.dim_param or d.dim_value or "?" for d in v.type.tensor_type.shape.dim]
    ins = [{"name": i.name, "shape": dims(i)} for i in m.graph.input if i.name not in inits]
    outs = [{"name": o.name, "shape": dims(o)} for o in m.graph.output]
    ops: dict[str, int] = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    params = int(sum(np.prod(i.dims) for i in m.graph.initializer))
    facts: dict[str, Any] = {"format": "onnx", "inputs": ins, "outputs": outs,
                             "opset": max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
                                          default=None),
                             "layers": ops, "params": params}
    shape = ins[0]["shape"] if ins else []
    if len(shape) == 4:
        ch = shape[1] if isinstance(shape[1], int) and shape[1] in (1, 3, 4) else None
        layout = "nchw" if ch else "nhwc" if isinstance(shape[3], int) and shape[3] in (1, 3, 4) else "?"
        c = ch or (shape[3] if layout == "nhwc" else 3)
        facts["layout"] = layout
        facts.update(_probe_onnx(path, int(c), layout))
    return facts


def _probe_onnx(path: Path, c: int, layout: str) -> dict[str, Any]:
    """Scale and border from two probe runs in cv2.dnn: output side = scale * input side - border."""
    import cv2

    try:
        net = cv2.dnn.readNetFromONNX(str(path))
        sides = []
        for n in (48, 64):
            x = np.full((1, c, n, n) if layout == "nchw" else (1, n, n, c), 0.5, np.float32)
            net.setInput(x)
            y = net.forward()
            sides.append(y.shape[2] if layout == "nchw" else y.shape[1])
    except cv2.error as e:
        return {"probe": f"cv2.dnn cannot run it ({str(e).strip().splitlines()[-1][:80]})"}
    scale = (sides[1] - sides[0]) / 16
    border = scale * 48 - sides[0]
    out: dict[str, Any] = {"scale": int(scale) if scale == int(scale) else scale}
    if border:
        out["padding"] = (f"output is {int(border)} px smaller than scale x input: pad the input by "
                          f"{border / scale / 2:g} px per side")
    else:
        out["padding"] = "none (output is exactly scale x input)"
    return out


def inspect_file(path: str | os.PathLike[str], *, scale: int | None = None, arch: str = "auto") -> dict[str, Any]:
    """What a model file is: format, architecture, scale, tensors, inputs and outputs. Converts nothing."""
    p = Path(path)
    fmt = sniff(p)
    if fmt == "onnx":
        return _onnx_facts(p)
    if fmt == "tf-graphdef":
        return {"format": fmt, "note": "OpenCV runs TensorFlow GraphDefs directly; srzoo does not inspect them"}
    conv: Any = converter_for(fmt)
    return conv.inspect(p, scale, arch)


__all__ = ["Converted", "atomic_write", "check_output", "convert_file", "inspect_file", "sniff", "write_manifest"]
