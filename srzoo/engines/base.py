"""The small contracts every inference engine fulfils.

An :class:`Engine` declares what it is (``name``, the manifest ``formats`` it
loads, its ``targets``, the pip ``extra`` that installs it), says why each
target can or cannot run here (:meth:`Engine.why_not`), and turns a manifest
entry plus its file into a runner with :meth:`Engine.load`. Runners come in
two small kinds:

* :class:`TensorRunner`: runs a network on a preprocessed float32 tensor in its
  ``input_layout`` (``nchw`` or ``nhwc``), fed to ``input_name``; the pipeline
  (:mod:`srzoo.pipeline`) does every pre- and post-processing step from the
  manifest's ``io`` table, the same for every engine;
* :class:`ImageRunner`: maps a whole image to the upscaled image (classical
  interpolation); no pre/post.

Thread counts are given to :meth:`Engine.load` (``threads=None``: the engine's
default) and applied by each engine its own way (a session option, a compile
property, ``cv2.setNumThreads`` around the call).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..backends import ResolvedBackend
    from ..registry import ModelEntry


@runtime_checkable
class TensorRunner(Protocol):
    """A loaded network, ready to run on tensors."""

    #: the backend it actually runs on
    backend: "ResolvedBackend"
    #: the input tensor name it feeds (None: the only input)
    input_name: str | None
    #: ``nchw`` or ``nhwc``: the layout ``run`` expects
    input_layout: str
    #: output tensor names, in the order ``run`` returns them
    output_names: tuple[str, ...]

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Run the network on one float32 tensor; one array per output."""
        ...


@runtime_checkable
class ImageRunner(Protocol):
    """A model that maps a whole image (any dtype/layout) to the upscaled image."""

    backend: "ResolvedBackend"

    def upscale_image(self, image: np.ndarray) -> np.ndarray:
        ...


Runner = Union[TensorRunner, ImageRunner]


class Engine(Protocol):
    """Loads files of the formats it knows into runners on its targets."""

    name: str
    #: manifest formats this engine loads as they are
    formats: frozenset[str]
    #: every target name it knows, fastest first (``cpu``, ``cuda``...)
    targets: tuple[str, ...]
    #: the ``srzoo[...]`` extra that installs it ("" when always there)
    extra: str

    def why_not(self, target: str) -> str:
        """Why ``target`` cannot run here, with what to install ("" when it can)."""
        ...

    def versions(self) -> dict[str, str]:
        """Versions that change speed or results (part of the autotune key)."""
        ...

    def device(self, target: str) -> str:
        """The device a target runs on, in words (part of the autotune key)."""
        ...

    def load(self, entry: "ModelEntry", path: Path | None, backend: "ResolvedBackend",
             threads: int | None = None) -> Any:
        """Load ``path`` (None for file-less formats) for ``entry`` on ``backend``.

        Raises :class:`srzoo.ModelLoadError` naming the file when it cannot be read.
        """
        ...


def input_spec(entry: "ModelEntry", fmt: str) -> tuple[str | None, str]:
    """(input name, layout) a runner of an ``fmt`` file of ``entry`` feeds,
    from the manifest's ``io.input`` / ``io.layout``. ONNX files (published or
    derived: converters keep the source's interface) take ``io.layout``;
    TensorFlow graphs in cv2.dnn always take NCHW blobs (OpenCV transposes)."""
    layout = "nchw" if fmt == "tf-graphdef" else (entry.io.layout or "nchw")
    return entry.io.input, layout


__all__ = ["Engine", "ImageRunner", "Runner", "TensorRunner", "input_spec"]


def run_failed(runner: Any, blob: np.ndarray, e: BaseException) -> Exception:
    """The error a tensor runner raises when its framework fails on ``blob``: the
    file, the model, the backend, the input shape and the framework's last line."""
    from ..errors import ModelLoadError

    lines = str(e).strip().splitlines()
    return ModelLoadError(f"{runner.path}: {runner.entry.name} x{runner.entry.scale} failed on "
                          f"{runner.backend} for a {blob.shape} input: "
                          f"{lines[-1] if lines else type(e).__name__}")
