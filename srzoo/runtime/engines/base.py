"""The small contracts every inference engine fulfils.

An :class:`Engine` declares what it is (``name``, the manifest ``formats`` it
loads, its ``targets``, the pip ``extra`` that installs it), says why each
target can or cannot run here (:meth:`Engine.why_not`), and turns a manifest
entry plus its file into a runner with :meth:`Engine.load`. Runners come in
two small kinds:

* :class:`TensorRunner`: runs a network on a preprocessed float32 tensor in its
  ``input_layout`` (``nchw`` or ``nhwc``), fed to ``input_name``; the pipeline
  (:mod:`srzoo.runtime.pipeline`) does every pre- and post-processing step from the
  manifest's ``io`` table, the same for every engine;
* :class:`ImageRunner`: maps a whole image to the upscaled image (classical
  interpolation); no pre/post.

Thread counts are given to :meth:`Engine.load` (``threads=None``: the engine's
default) and applied by each engine its own way (a session option, a compile
property, ``cv2.setNumThreads`` around the call).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from srzoo.errors import BackendUnavailable, ModelLoadError
from srzoo.hub.untrusted import check_onnx_external
from srzoo.hub.manifest import ModelEntry


@dataclass(frozen=True)
class ResolvedBackend:
    """An engine and one of its targets, checked to run here
    (what :func:`srzoo.runtime.backends.resolve` returns and engines load on).

    ``requested``: what the caller asked for (``auto``, ``cpu``...);
    ``reason``: why this one was chosen (for ``auto`` and plain targets);
    ``precision``: the arithmetic the engine is asked to run in (``bf16``,
    ``fp16``, ``int8``; "" for the target's own, fp32 except for targets named
    ``*_fp16``), see :mod:`srzoo.runtime.precision`.
    """

    engine: str
    target: str
    requested: str = ""
    reason: str = ""
    precision: str = ""

    @property
    def name(self) -> str:
        """``ENGINE:TARGET``, without the precision."""
        return f"{self.engine}:{self.target}"

    def __str__(self) -> str:
        """``ENGINE:TARGET``, plus ``@PRECISION`` when one was asked for (the key
        loaded runners and measured trials are kept under)."""
        return f"{self.name}@{self.precision}" if self.precision else self.name


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

    # Optional (asked with getattr; an engine without them is still an engine):
    #   capabilities() -> dict   what this engine detected here, for `srzoo info`
    #   refresh() -> None        forget what it detected (drivers installed in-process)
    #   auto_ok(target) -> bool  whether `auto` may choose this target
    #   precisions(target) -> tuple[str, ...]
    #                            the precisions ("fp32", "bf16", "fp16", "int8") this engine
    #                            can run ``target`` in here, the target's own first; the
    #                            engine reads ``backend.precision`` in load() and maps it to
    #                            its own switch (a compile hint, an FP16 model, a
    #                            provider option). Without it: the target's own only.


def input_spec(entry: "ModelEntry", fmt: str) -> tuple[str | None, str]:
    """(input name, layout) a runner of an ``fmt`` file of ``entry`` feeds,
    from the manifest's ``io.input`` / ``io.layout``. ONNX files (published or
    derived: converters keep the source's interface) take ``io.layout``;
    TensorFlow graphs in cv2.dnn always take NCHW blobs (OpenCV transposes)."""
    layout = "nchw" if fmt == "tf-graphdef" else (entry.io.layout or "nchw")
    return entry.io.input, layout


def check_loadable(engine: Any, entry: "ModelEntry", path: Path | None,
                   backend: "ResolvedBackend") -> Path:
    """The model file as a Path, after checking it exists and ``engine`` can run
    ``backend`` here (:class:`srzoo.ModelLoadError` / :class:`srzoo.BackendUnavailable`)."""
    if path is None or not Path(path).is_file():
        raise ModelLoadError(f"{path}: model file of {entry.name} x{entry.scale} is missing")
    reason = engine.why_not(backend.target)
    if reason:
        raise BackendUnavailable(f"backend {backend} is unavailable: {reason}")
    check_model_file(entry, Path(path))
    return Path(path)


def check_model_file(entry: "ModelEntry", path: Path) -> None:
    """What every engine checks before its framework opens an untrusted ONNX file: its
    external-data references stay inside its own folder (:func:`check_onnx_external`)."""
    if entry.format == "onnx" or path.suffix.lower() == ".onnx":
        check_onnx_external(path)


def pick_input(entry: "ModelEntry", path: Path, inputs: Sequence[str], default: str) -> str:
    """The input a runner feeds: ``io.input`` when the manifest names one (it must
    be among the network's ``inputs``), else ``default``."""
    name = entry.io.input
    if name is None:
        return default
    if name not in inputs:
        raise ModelLoadError(f"{path}: {entry.name} x{entry.scale} has no input {name!r} "
                             f"(its inputs: {', '.join(inputs)}); fix io.input in "
                             f"{entry.manifest or 'the manifest'}")
    return name


def pick_outputs(entry: "ModelEntry", path: Path, have: Sequence[str], default: Sequence[str],
                 known: Collection[str] | None = None) -> tuple[str, ...]:
    """The outputs a runner returns: ``io.outputs`` when the manifest names them
    (each must be in ``known``, by default the network's outputs ``have``), else
    ``default``."""
    names = tuple(entry.io.outputs) or tuple(default)
    missing = [n for n in names if n not in (have if known is None else known)]
    if missing:
        raise ModelLoadError(f"{path}: {entry.name} x{entry.scale} has no output "
                             f"{', '.join(missing)} (its outputs: {', '.join(have)}); "
                             f"fix io.outputs in {entry.manifest or 'the manifest'}")
    return names


__all__ = ["Engine", "ImageRunner", "Runner", "TensorRunner", "check_loadable", "check_model_file", "input_spec",
           "pick_input", "pick_outputs", "run_failed"]


def run_failed(runner: Any, blob: np.ndarray, e: BaseException) -> Exception:
    """The error a tensor runner raises when its framework fails on ``blob``: the
    file, the model, the backend, the input shape and the framework's last line."""
    lines = str(e).strip().splitlines()
    return ModelLoadError(f"{runner.path}: {runner.entry.name} x{runner.entry.scale} failed on "
                          f"{runner.backend} for a {blob.shape} input: "
                          f"{lines[-1] if lines else type(e).__name__}")
