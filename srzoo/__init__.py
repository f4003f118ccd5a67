"""srzoo: deep-learning super-resolution with OpenCV, made practical.

>>> import srzoo
>>> srzoo.list_models()[:1]                       # doctest: +SKIP
>>> out = srzoo.upscale("photo.png", "espcn", 4)  # doctest: +SKIP

The public API is listed in ``__all__``. Heavy modules (OpenCV engines, the
benchmark) are imported on first use, so ``import srzoo`` stays quick.

The package is layered; each layer imports only the ones below it (the
README's "Architecture" section, checked by ``tests/test_layers.py``)::

    cli : serve                the command line; the web app and HTTP API
    jobs | evaluate | train    work built on Upscaler: any size, batches, big images, video;
                               metrics, benchmarks, galleries; training
    runtime                    engines, backends, autotune, pipeline, image I/O, Upscaler
    convert                    source formats -> verified ONNX, derived files, export
    hub                        manifests, registry, cache, download, archives, OpenModelDB
    config resample fsutil     settings, the bicubic kernel, the one atomic writer
    errors                     exceptions

Modules that moved in 0.3 keep their old import path as an alias of the new
module (``import srzoo.batch`` is :mod:`srzoo.jobs.batch`): see :data:`MOVED`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from typing import TYPE_CHECKING, Any

from srzoo._version import __version__
from srzoo.errors import (ArgumentError, BackendUnavailable, CacheError, ChecksumError, ConfigError,
                          ConversionFailed, DownloadError, ImageError, ManifestError, ModelLoadError,
                          OfflineError, SrzooError, UnknownModel)

# public name -> module that defines it (imported lazily); the modules themselves
# (srzoo.backends, srzoo.metrics, srzoo.catalog) are in _LAZY_MODULES
_LAZY_MODULES = {
    "backends": "srzoo.runtime.backends",
    "metrics": "srzoo.evaluate.metrics",
    "catalog": "srzoo.hub.catalog",
}
#: the layers (subpackages): srzoo.runtime... after a bare `import srzoo`
_LAYERS = ("hub", "convert", "runtime", "jobs", "evaluate", "train", "cli", "config", "errors", "resample")
_LAZY = {
    "list_models": "srzoo.hub.api",
    "get_model": "srzoo.hub.api",
    "fetch": "srzoo.hub.api",
    "fetch_dataset": "srzoo.hub.api",
    "model_file": "srzoo.runtime.engines",
    "convert_file": "srzoo.convert.files",
    "export": "srzoo.convert.export",
    "inspect_file": "srzoo.convert.files",
    "add_manifest": "srzoo.hub.registry",
    "Registry": "srzoo.hub.registry",
    "ModelEntry": "srzoo.hub.manifest",
    "cache_dir": "srzoo.hub.cache",
    "Upscaler": "srzoo.runtime.upscaler",
    "upscale": "srzoo.jobs.upscaling",
    "upscale_files": "srzoo.jobs.upscaling",
    "run_batch": "srzoo.jobs.batch",
    "upscale_big": "srzoo.jobs.bigimage",
    "bench": "srzoo.evaluate.benchmark",
    "upscale_video": "srzoo.jobs.video",
    "VideoError": "srzoo.jobs.video",
}

#: Old module path (0.2) -> where it lives now. ``import srzoo.batch`` and
#: ``from srzoo.upscaler import Upscaler`` keep working: the old name is an alias
#: of the same module object (monkeypatching either patches both).
MOVED: dict[str, str] = {
    "srzoo.api": "srzoo.hub.api",
    "srzoo.registry": "srzoo.hub.registry",
    "srzoo.cache": "srzoo.hub.cache",
    "srzoo.download": "srzoo.hub.download",
    "srzoo.archive": "srzoo.hub.archive",
    "srzoo.catalog": "srzoo.hub.catalog",
    "srzoo.derived": "srzoo.convert.derive",
    "srzoo.exports": "srzoo.convert.export",
    "srzoo.engines": "srzoo.runtime.engines",
    "srzoo.backends": "srzoo.runtime.backends",
    "srzoo.autotune": "srzoo.runtime.autotune",
    "srzoo.pipeline": "srzoo.runtime.pipeline",
    "srzoo.imageio": "srzoo.runtime.imageio",
    "srzoo.upscaler": "srzoo.runtime.upscaler",
    "srzoo.resize": "srzoo.jobs.resize",
    "srzoo.batch": "srzoo.jobs.batch",
    "srzoo.executors": "srzoo.jobs.executors",
    "srzoo.bigimage": "srzoo.jobs.bigimage",
    "srzoo.video": "srzoo.jobs.video",
    "srzoo.metrics": "srzoo.evaluate.metrics",
    "srzoo.benchmark": "srzoo.evaluate.benchmark",
    "srzoo.compare": "srzoo.evaluate.compare",
}


def _moved_target(fullname: str) -> str | None:
    """The new name of an old module path or of a module below it (srzoo.engines.opencv)."""
    for old, new in MOVED.items():
        if fullname == old or fullname.startswith(old + "."):
            return new + fullname[len(old):]
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = self._spec  # the import system stamped the alias's spec on it


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Answers old module paths with the module now at the new path."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        new = _moved_target(fullname) if fullname.startswith("srzoo.") else None
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedFinder())  # first: else a moved package's __path__ loads files twice

__all__ = [
    "SrzooError", "ManifestError", "UnknownModel", "DownloadError", "ChecksumError",
    "OfflineError", "ModelLoadError", "BackendUnavailable", "ImageError", "ConfigError",
    "CacheError", "ArgumentError", "ConversionFailed", "__version__",
    *_LAZY, *_LAZY_MODULES,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
    elif name in _LAYERS:
        value = importlib.import_module(f"srzoo.{name}")
    elif f"srzoo.{name}" in MOVED:  # srzoo.batch after a bare `import srzoo`
        value = importlib.import_module(MOVED[f"srzoo.{name}"])
    else:
        raise AttributeError(f"module 'srzoo' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from srzoo.convert.export import export
    from srzoo.convert.files import convert_file, inspect_file
    from srzoo.evaluate import metrics
    from srzoo.evaluate.benchmark import bench
    from srzoo.hub import catalog
    from srzoo.hub.api import fetch, fetch_dataset, get_model, list_models
    from srzoo.hub.cache import cache_dir
    from srzoo.hub.manifest import ModelEntry
    from srzoo.hub.registry import Registry, add_manifest
    from srzoo.jobs.batch import run_batch
    from srzoo.jobs.bigimage import upscale_big
    from srzoo.jobs.upscaling import upscale, upscale_files
    from srzoo.jobs.video import VideoError, upscale_video
    from srzoo.runtime import backends
    from srzoo.runtime.engines import model_file
    from srzoo.runtime.upscaler import Upscaler
