"""srzoo: deep-learning super-resolution with OpenCV, made practical.

>>> import srzoo
>>> srzoo.list_models()[:1]                       # doctest: +SKIP
>>> out = srzoo.upscale("photo.png", "espcn", 4)  # doctest: +SKIP

The public API is listed in ``__all__``. Heavy modules (OpenCV engines, the
benchmark) are imported on first use, so ``import srzoo`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (ArgumentError, BackendUnavailable, CacheError, ChecksumError, ConfigError,
                     DownloadError, ImageError, ManifestError, ModelLoadError, OfflineError,
                     SrzooError, UnknownModel)

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily)
_LAZY = {
    "list_models": "srzoo.api",
    "get_model": "srzoo.api",
    "fetch": "srzoo.api",
    "fetch_dataset": "srzoo.api",
    "model_file": "srzoo.api",
    "convert_file": "srzoo.convert.files",
    "export": "srzoo.exports",
    "inspect_file": "srzoo.convert.files",
    "add_manifest": "srzoo.registry",
    "Registry": "srzoo.registry",
    "ModelEntry": "srzoo.registry",
    "cache_dir": "srzoo.cache",
    "Upscaler": "srzoo.upscaler",
    "upscale": "srzoo.upscaler",
    "run_batch": "srzoo.batch",
    "upscale_big": "srzoo.bigimage",
    "backends": "srzoo.backends",
    "bench": "srzoo.benchmark",
    "metrics": "srzoo.metrics",
    "upscale_video": "srzoo.video",
    "VideoError": "srzoo.video",
    "catalog": "srzoo.catalog",
}

__all__ = [
    "SrzooError", "ManifestError", "UnknownModel", "DownloadError", "ChecksumError",
    "OfflineError", "ModelLoadError", "BackendUnavailable", "ImageError", "ConfigError",
    "CacheError", "ArgumentError", "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'srzoo' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.rsplit(".", 1)[1] == name else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from . import backends, catalog, metrics
    from .api import fetch, fetch_dataset, get_model, list_models, model_file
    from .convert.files import convert_file, inspect_file
    from .exports import export
    from .benchmark import bench
    from .cache import cache_dir
    from .registry import ModelEntry, Registry, add_manifest
    from .batch import run_batch
    from .bigimage import upscale_big
    from .upscaler import Upscaler, upscale
    from .video import VideoError, upscale_video
