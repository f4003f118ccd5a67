"""OpenCV DNN engine: TensorFlow GraphDef (the dnn_superres models) and ONNX.

Graphs are read with the classic DNN engine where this OpenCV has the choice
(OpenCV 5's new engine cannot import the ``DepthToSpace`` of ESPCN/FSRCNN, and
it runs on the CPU only). The ``DepthToSpace`` layer those graphs use is the one
``cv2.dnn_superres`` registers, so a ``DnnSuperResImpl`` is created once before
the first load. Pre- and post-processing are not done here but in
:mod:`srzoo.pipeline`, from the manifest, to exactly what
``DnnSuperResImpl.upsample`` does for the four dnn_superres families.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import cv2
import numpy as np

from ..errors import ModelLoadError, SrzooError

if TYPE_CHECKING:  # pragma: no cover
    from ..backends import ResolvedBackend
    from ..registry import ModelEntry

_layers_registered = False
_lock = threading.Lock()


def _register_superres_layers() -> None:
    """Make the ``DepthToSpace`` layer of ``cv2.dnn_superres`` known to ``cv2.dnn``."""
    global _layers_registered
    if not _layers_registered:
        with _lock:
            if not _layers_registered:
                cv2.dnn_superres.DnnSuperResImpl_create()
                _layers_registered = True


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's log (e.g. import-time ERROR lines of engines that fall back)."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:  # pragma: no cover - very old OpenCV
        yield
        return
    old = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(old)


def fetch_hint(entry: "ModelEntry") -> str:
    """The command that re-downloads this entry's file."""
    scale = f" --scale {entry.scale}" if entry.scale is not None else ""
    return f"srzoo fetch {entry.name}{scale} --force"


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    # cv2.error: the useful part is the '> ...' line or the '(-NNN:...)' line
    for ln in lines:
        if ln.startswith(">"):
            return ln.lstrip("> ").strip()
    return lines[-1] if lines else type(e).__name__


class OpenCVRunner:
    """A ``cv2.dnn.Net`` with its backend/target set; forward() behind a lock."""

    direct = False

    def __init__(self, net: Any, output_names: tuple[str, ...], backend: "ResolvedBackend",
                 entry: "ModelEntry", path: Path) -> None:
        self.net = net
        self.output_names = output_names
        self.backend = backend
        self.entry = entry
        self.path = path
        self._names = list(output_names)
        self._lock = threading.Lock()

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Forward one NCHW float32 blob; returns one array per output name."""
        with self._lock:
            try:
                self.net.setInput(blob)
                if len(self._names) == 1:
                    return [self.net.forward(self._names[0])]
                return list(self.net.forward(self._names))
            except cv2.error as e:
                raise ModelLoadError(
                    f"{self.path}: {self.entry.name} x{self.entry.scale} failed to run on "
                    f"{self.backend} for a {blob.shape[2]}x{blob.shape[3]} input: {_first_line(e)}; "
                    f"if the file is damaged, run '{fetch_hint(self.entry)}'") from None


class OpenCVEngine:
    """Engine for ``engine = "opencv"`` manifests in ``tf-graphdef`` or ``onnx`` format."""

    name = "opencv"
    formats = frozenset({"tf-graphdef", "onnx"})

    def _read(self, entry: "ModelEntry", path: Path, backend: "ResolvedBackend") -> Any:
        classic = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
        kw: dict[str, Any] = {} if classic is None else {"engine": classic}
        if entry.format == "tf-graphdef":
            _register_superres_layers()
            return cv2.dnn.readNetFromTensorflow(str(path), **kw)
        if entry.format == "onnx":
            try:
                return cv2.dnn.readNetFromONNX(str(path), **kw)
            except cv2.error:
                auto = getattr(cv2.dnn, "ENGINE_AUTO", None)
                if auto is None or backend.target != "cpu":
                    raise
                # some ONNX graphs only import with OpenCV 5's new engine (CPU only)
                return cv2.dnn.readNetFromONNX(str(path), engine=auto)
        raise SrzooError(f"{entry.name}: the opencv engine cannot load format {entry.format!r}")

    def load(self, entry: "ModelEntry", path: Path | None, backend: "ResolvedBackend") -> OpenCVRunner:
        """Read the graph, pick its outputs from ``io.outputs`` and set backend/target."""
        if path is None:
            raise SrzooError(f"{entry.name} x{entry.scale}: the opencv engine needs a model file")
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: model file of {entry.name} x{entry.scale} is missing; "
                                 f"run '{fetch_hint(entry)}'")
        try:
            with quiet_opencv():
                net = self._read(entry, path, backend)
        except (cv2.error, SystemError, ValueError) as e:
            raise ModelLoadError(
                f"{path}: cannot load {entry.name} x{entry.scale} as {entry.format} "
                f"({_first_line(e)}); the file may be corrupt or truncated: run "
                f"'{fetch_hint(entry)}'") from None
        if net is None or net.empty():
            raise ModelLoadError(f"{path}: {entry.name} x{entry.scale} loaded as an empty network; "
                                 f"run '{fetch_hint(entry)}'")
        have = tuple(net.getUnconnectedOutLayersNames())
        names = tuple(entry.io.outputs) or have[-1:]
        layer_names = set(net.getLayerNames()) | set(have)
        missing = [n for n in names if n not in layer_names]
        if missing:
            raise ModelLoadError(f"{path}: {entry.name} x{entry.scale} has no output "
                                 f"{', '.join(missing)} (its outputs: {', '.join(have)}); "
                                 f"fix io.outputs in {entry.manifest or 'the manifest'}")
        try:
            net.setPreferableBackend(backend.backend_id)
            net.setPreferableTarget(backend.target_id)
        except cv2.error as e:  # pragma: no cover - resolve() checked availability
            from ..errors import BackendUnavailable

            raise BackendUnavailable(f"backend {backend} refused by OpenCV: {_first_line(e)}") from None
        if backend.target.startswith("opencl"):
            cv2.ocl.setUseOpenCL(True)
        return OpenCVRunner(net, names, backend, entry, path)
