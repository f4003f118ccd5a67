"""Every ``SRZOO_*`` environment variable, declared and validated in one place.

Each setting is one row of :data:`SETTINGS`. Values are read from the
environment on every call (so a changed variable takes effect at once, and
tests can set them) and validated: a bad value raises :class:`ConfigError`
with one line naming the variable, the value and what is allowed.

>>> from srzoo import config
>>> config.get("SRZOO_TIMEOUT")          # doctest: +SKIP
30.0

Adding a setting is one line in :data:`SETTINGS`, e.g.::

    Setting("SRZOO_AUTOTUNE", "bool", False, "1: pick the fastest backend by measuring"),

Kinds: ``bool`` (``1/true/yes/on`` or ``0/false/no/off/`` empty), ``int`` and
``float`` (range-checked; nan and inf refused), ``str``, ``path`` (``~``
expanded; empty means the default), ``list`` (comma-separated, blanks dropped),
``choice`` (one of ``choices``, case-insensitive) and ``size`` (bytes, with an
optional K/M/G/T suffix, powers of 1024: ``1.5G``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from srzoo.errors import ConfigError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, kind, default and meaning.

    ``low``/``high`` bound numbers (``low_open``: the bound itself is refused,
    e.g. a time-out must be > 0); ``choices`` lists the values of a ``choice``.
    """

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: Sequence[str] = ()

    def allowed(self) -> str:
        """The allowed values, in words (used by error lines and the README)."""
        if self.kind == "bool":
            return "1/true/yes/on or 0/false/no/off (or empty)"
        if self.kind == "choice":
            return " / ".join(self.choices)
        if self.kind == "size":
            return "a size in bytes such as 1.5G, 800M or 2000000 (0: no limit)"
        if self.kind in ("int", "float"):
            what = "an integer" if self.kind == "int" else "a number"
            if self.low is not None and self.high is not None:
                if self.low_open:
                    return f"{what} > {_num(self.low)} and <= {_num(self.high)}"
                return f"{what} from {_num(self.low)} to {_num(self.high)}"
            if self.low is not None:
                return f"{what} {'>' if self.low_open else '>='} {_num(self.low)}"
            return what
        return "any text"

    def parse(self, raw: str | None) -> Any:
        """The typed value of ``raw`` (None: unset -> default); raises ConfigError."""
        if raw is None:
            return self.default
        text = raw.strip()
        if self.kind == "bool":
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            return self._bad(raw)
        if self.kind in ("str", "path", "list", "choice", "int", "float", "size") and not text:
            return self.default
        if self.kind == "size":
            m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?", text.lower())
            if not m:
                return self._bad(raw)
            return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2) or "_"))
        if self.kind == "str":
            return text
        if self.kind == "path":
            return Path(text).expanduser()
        if self.kind == "list":
            return [t.strip() for t in text.split(",") if t.strip()]
        if self.kind == "choice":
            low = text.lower()
            if low not in [c.lower() for c in self.choices]:
                return self._bad(raw)
            return low
        try:
            value = float(text)
        except ValueError:
            return self._bad(raw)
        if math.isnan(value) or math.isinf(value):
            return self._bad(raw)
        if self.kind == "int":
            if not value.is_integer():
                return self._bad(raw)
            value = int(value)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return self._bad(raw)
        if self.high is not None and value > self.high:
            return self._bad(raw)
        return value

    def _bad(self, raw: str) -> Any:
        raise ConfigError(f"{self.name}={raw!r} is not valid: expected {self.allowed()} "
                          f"({self.help}); fix or unset it")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


#: every SRZOO_* variable srzoo reads; add yours here, one line each
SETTINGS: tuple[Setting, ...] = (
    Setting("SRZOO_CACHE_DIR", "path", None,
            "cache folder (default: the platform's user cache folder for srzoo)"),
    Setting("SRZOO_MIRROR", "list", [],
            "comma-separated base URLs or local folders (searched recursively by file name) "
            "tried before the manifest URLs"),
    Setting("SRZOO_MIRROR_ONLY", "bool", False,
            "use only the mirrors, never the manifest URLs; no redirect to another host"),
    Setting("SRZOO_OFFLINE", "bool", False, "never touch the network"),
    Setting("SRZOO_REGISTRY", "str", "",
            "extra manifest files or folders, separated by the path separator or commas"),
    Setting("SRZOO_TIMEOUT", "float", 30.0, "seconds to wait for a connection or for data",
            low=0, high=86400, low_open=True),
    Setting("SRZOO_RETRIES", "int", 3, "extra tries per URL after a transient failure",
            low=0, high=100),
    Setting("SRZOO_BACKOFF", "float", 1.0, "first back-off delay in seconds, doubled each try",
            low=0, high=3600),
    Setting("SRZOO_MIN_RATE", "float", 10240.0,
            "slowest accepted average download rate in bytes/s: a source gets SRZOO_TIMEOUT + "
            "size / SRZOO_MIN_RATE seconds in all", low=0, low_open=True),
    Setting("SRZOO_MAX_REDIRECTS", "int", 10, "HTTP redirects followed per request",
            low=0, high=100),
    Setting("SRZOO_MAX_PIXELS", "int", 1 << 30,
            "largest image accepted, in output pixels (inputs are checked before decoding)",
            low=1),
    Setting("SRZOO_AUTO_TILE_PIXELS", "int", 1 << 20,
            "inputs above this many pixels are tiled automatically", low=1),
    Setting("SRZOO_AUTOTUNE", "bool", True,
            "0: `auto` takes the static order instead of measuring a short trial"),
    Setting("SRZOO_MEMORY", "size", None,
            "memory a network run may use; larger inputs are tiled to fit (default: a quarter "
            "of the available memory, at most 1.5G and what keeps the process under 2G; "
            "0: no limit)"),
    Setting("SRZOO_BACKEND", "str", "", "backend used wherever `auto` is asked for, e.g. openvino:cpu"),
    Setting("SRZOO_PRECISION", "choice", "fp32",
            "precision used where none is given: fp32 (default: results identical on every engine), "
            "bf16, fp16, int8, or auto (the fastest within the quality budget)",
            choices=("fp32", "bf16", "fp16", "int8", "auto")),
    Setting("SRZOO_PRECISION_MAX_DROP", "float", 0.05,
            "quality budget of a reduced precision on PSNR-oriented models: PSNR drop in dB on "
            "srzoo's probe image", low=0.0),
    Setting("SRZOO_PRECISION_MIN_PSNR", "float", 40.0,
            "quality budget of a reduced precision on GAN models (tag 'gan'): lowest PSNR in dB "
            "of the output against fp32's on srzoo's probe image", low=0.0),
    Setting("SRZOO_LOG", "choice", "silent",
            "OpenCV's own log level during srzoo's calls (`srzoo upscale -v`: warning)",
            choices=("silent", "fatal", "error", "warning", "info", "debug", "verbose")),
    Setting("SRZOO_SCHEDULER", "str", "",
            "Dask scheduler address for batches (tcp://HOST:8786, or local)"),
    Setting("SRZOO_MAX_MODEL_BYTES", "int", 512 << 20,
            "largest model file accepted, and most bytes its tensors may expand to when read "
            "(the biggest shipped model is 33 MB)", low=1),
    Setting("SRZOO_CATALOG_UPSTREAM", "str", "",
            "http(s)://host standing in for api.github.com and codeload.github.com when the "
            "OpenModelDB catalogue is built (a local copy)"),
    Setting("SRZOO_SERVE_TOKEN", "str", "",
            "`srzoo serve`: the token clients must send (Authorization: Bearer TOKEN); "
            "required to bind anything but loopback"),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def setting(name: str) -> Setting:
    """The declaration of ``name`` (KeyError for an undeclared variable: declare it first)."""
    return _BY_NAME[name]


def get(name: str) -> Any:
    """The validated value of ``name`` from the environment (its default when unset)."""
    return _BY_NAME[name].parse(os.environ.get(name))


def flag(name: str) -> bool:
    """A ``bool`` setting."""
    return bool(get(name))


@contextlib.contextmanager
def scoped_default(name: str, value: str) -> Iterator[None]:
    """:func:`scoped` unless the user set ``name`` (a CLI flag that means "this setting, unless
    you chose otherwise", e.g. ``-v``)."""
    if os.environ.get(name):
        yield
        return
    with scoped(name, value):
        yield


@contextlib.contextmanager
def scoped(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` in this process's environment for the duration
    (a CLI flag that child processes must inherit), restored afterwards."""
    setting(name).parse(value)  # a bad value is refused before anything runs
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def validate() -> None:
    """Check every declared variable that is set; raise ConfigError on the first bad one.
    The CLI calls this first, so a bad value is one line before any work starts."""
    for s in SETTINGS:
        s.parse(os.environ.get(s.name))


def register(*settings: Setting) -> None:
    """Declare settings at run time (plugins); the table above is the normal place."""
    global SETTINGS
    for s in settings:
        _BY_NAME[s.name] = s
    SETTINGS = tuple(_BY_NAME.values())


def table() -> list[tuple[str, str, str]]:
    """(name, default, meaning) of every setting, for documentation."""
    return [(s.name, "" if s.default in (None, [], "") else str(s.default), s.help) for s in SETTINGS]


__all__ = ["SETTINGS", "Setting", "flag", "get", "register", "setting", "table", "validate"]
