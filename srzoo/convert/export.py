"""``srzoo export``: the verified ONNX file of any registry model, written where you say.

For the OpenCV ``dnn_superres`` families (ESPCN, FSRCNN, FSRCNN-small,
LapSRN, EDSR) the file is a drop-in for plain OpenCV 5.1, which no longer
reads their TensorFlow ``.pb`` files::

    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel("ESPCN_x4.onnx"); sr.setModel("espcn", 4)
    out = sr.upsample(img)

It is the ONNX srzoo derives from the ``.pb`` (checked against the ``.pb``
when derived), in the layout 5.1's ``upsample()`` feeds that algorithm
(``io.export_layout`` in the manifest: the ``.pb``'s NHWC for ESPCN, FSRCNN
and LapSRN, NCHW for EDSR); a pyramid file (LapSRN x4, x8) keeps only the
output of its own scale, the one ``upsample()`` reads. Other models are exported as the
ONNX their engines run: the published file, or the one derived from Keras,
PyTorch or ncnn weights.

The output is written to a temporary file beside it and renamed into place:
an existing file is replaced only with ``force``, and never when it is not a
regular file (a device, a FIFO, a symlink).
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from srzoo.convert import converter_for
from srzoo.convert import derive as derived
from srzoo.convert.files import atomic_write
from srzoo.errors import SrzooError
from srzoo.hub.api import fetch_entry, get_model, list_models

if TYPE_CHECKING:  # pragma: no cover
    from srzoo.hub.manifest import ModelEntry


@dataclass(frozen=True)
class Exported:
    """One written file: the model, its scale, where it went and what it holds."""

    model: str
    scale: int | None
    path: Path
    source: str  # "published", or the converter that derived it
    outputs: tuple[str, ...]
    algorithm: str | None  # the dnn_superres name (setModel), where one applies


def _onnx_for(entry: "ModelEntry", quiet: bool) -> tuple[bytes, str]:
    if entry.artifact is None:
        raise SrzooError(f"{entry.name} is a built-in {entry.format} method: there is no network to export")
    path = fetch_entry(entry, quiet=quiet)
    if entry.format == "onnx":
        return Path(path).read_bytes(), "published"

    conv = converter_for(entry.format)
    # a .pb in the layout OpenCV 5.1's dnn_superres feeds this algorithm (io.export_layout):
    # the .pb's own NHWC is the file the engines run (ESPCN, FSRCNN, LapSRN); NCHW for EDSR
    nchw = entry.format == "tf-graphdef" and entry.io.export_layout == "nchw"
    out = derived.derive(path, entry, conv, {"input_layout": "nchw"} if nchw else None)
    return out.read_bytes(), conv.name


def _own_output(data: bytes, entry: "ModelEntry") -> tuple[bytes, tuple[str, ...]]:
    """A pyramid graph cut down to the output of the entry's own scale (what
    ``dnn_superres.upsample()`` reads); other graphs unchanged."""
    import onnx

    model = onnx.load_from_string(data)
    names = tuple(o.name for o in model.graph.output)
    scales = tuple(entry.io.output_scales or ())
    if len(names) <= 1 or len(scales) != len(names) or entry.scale not in scales:
        return data, names
    keep = names[scales.index(entry.scale)]
    with tempfile.TemporaryDirectory(prefix="srzoo-export-") as tmp:
        src, dst = Path(tmp) / "full.onnx", Path(tmp) / "cut.onnx"
        src.write_bytes(data)
        inputs = [i.name for i in model.graph.input
                  if i.name not in {t.name for t in model.graph.initializer}]
        onnx.utils.extract_model(str(src), str(dst), inputs, [keep], check_model=True)
        return dst.read_bytes(), (keep,)


def _check_target(path: Path, force: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) \
            else "not a regular file"
        raise SrzooError(f"{path}: exists and is {kind}; srzoo export writes regular files only: "
                         "choose another -o")
    if not force:
        raise SrzooError(f"{path}: already exists; pass --force (force=True) to replace it")


def export(model: str, scale: int | None = None, output: str | os.PathLike[str] | None = None, *,
           force: bool = False, quiet: bool | None = True) -> Exported:
    """Write the verified ONNX of ``model`` x``scale`` to ``output``.

    ``output`` defaults to the published file's name with ``.onnx`` in the
    current folder (``ESPCN_x4.onnx``: the name dnn_superres users know); a
    folder puts that name inside it. Downloads and derives as needed (cached).
    Raises :class:`srzoo.SrzooError` with one line when the model is unknown,
    cannot be fetched or converted, or the target exists (``force`` replaces a
    regular file, never anything else).
    """

    entry = get_model(model, scale)
    default_name = f"{Path(entry.file).stem}.onnx" if entry.file else f"{entry.name}_x{entry.scale}.onnx"
    target = Path(output) if output is not None else Path(default_name)
    if target.is_dir():
        target = target / default_name
    if target.suffix.lower() != ".onnx":
        raise SrzooError(f"{target}: the exported file is ONNX: give -o a name ending in .onnx or a folder")
    _check_target(target, force)
    data, source = _onnx_for(entry, quiet)
    data, outputs = _own_output(data, entry)
    atomic_write(target, data)
    return Exported(entry.name, entry.scale, target, source, outputs, entry.io.algorithm)


def opencv_families() -> list["ModelEntry"]:
    """Every registry entry with a ``dnn_superres`` algorithm name (``--all-opencv``)."""

    return [e for e in list_models() if e.io.algorithm and e.artifact is not None]


__all__ = ["Exported", "export", "opencv_families"]
