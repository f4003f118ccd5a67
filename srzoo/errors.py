"""The exceptions srzoo raises. All derive from :class:`SrzooError`."""

from __future__ import annotations


class SrzooError(Exception):
    """Base class of every error srzoo raises on purpose."""


class ManifestError(SrzooError):
    """A manifest file is malformed: the message names the file and the key."""


class UnknownModel(SrzooError, KeyError):
    """No model of that name (or no such scale) in the registry."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DownloadError(SrzooError):
    """Every source of a file failed; the message lists what each one said."""


class ChecksumError(DownloadError):
    """Downloaded bytes do not match the manifest (size or hash)."""


class OfflineError(SrzooError):
    """SRZOO_OFFLINE is set and the file is not in the cache."""


class ModelLoadError(SrzooError):
    """A cached model file could not be loaded by its engine."""


class BackendUnavailable(SrzooError):
    """The requested backend/target cannot run with the installed OpenCV."""


class ImageError(SrzooError, ValueError):
    """An input image is unreadable, of an unsupported layout, or too large."""


class ConfigError(SrzooError, ValueError):
    """An SRZOO_* environment variable holds a value that is not allowed; the
    message names the variable, the value and the allowed values."""


class CacheError(SrzooError):
    """The cache folder cannot be used (read-only, full, a file where a folder
    should be...); the message names the path and what to do."""


class ArgumentError(SrzooError, TypeError):
    """A public function was called with an argument of the wrong type."""


class ConversionFailed(SrzooError):
    """A converter could not build or verify its ONNX output; the message names
    the source file and the step that failed."""


class PrecisionError(BackendUnavailable):
    """A precision (bf16, fp16, int8) that cannot run here, or whose measured
    quality loss against fp32 is over the budget; the message gives the numbers."""
