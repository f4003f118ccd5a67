"""The small contract every inference engine fulfils.

An :class:`Engine` turns a manifest entry plus its cached file into a
:class:`Runner`. The pipeline (:mod:`srzoo.pipeline`) does every pre- and
post-processing step from the manifest's ``io`` table; a runner only runs the
network: NCHW float32 blob in, one array per requested output out.

Runners with ``direct = True`` (interpolation) take the image itself and the
scale and return the upscaled image; the pipeline then skips pre/post.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..backends import ResolvedBackend
    from ..registry import ModelEntry


@runtime_checkable
class Runner(Protocol):
    """A loaded model, ready to run."""

    #: True when ``run`` maps an image to the upscaled image (no pre/post)
    direct: bool
    #: output tensor names, in the order ``run`` returns them
    output_names: tuple[str, ...]
    #: the backend it actually runs on
    backend: "ResolvedBackend"

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Run the network on a preprocessed NCHW float32 blob; one array per output."""
        ...


class Engine(Protocol):
    """Loads files of the formats it knows into runners."""

    name: str
    #: manifest formats this engine loads
    formats: frozenset[str]

    def load(self, entry: "ModelEntry", path: Path | None, backend: "ResolvedBackend") -> Runner:
        """Load ``path`` (None for file-less formats) for ``entry`` on ``backend``.

        Raises :class:`srzoo.ModelLoadError` naming the file when it cannot be read.
        """
        ...
