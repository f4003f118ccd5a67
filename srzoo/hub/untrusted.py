"""Rules every reader of an untrusted model file follows (community files, anyone's disk).

* :func:`regular_file`: only a regular file is read (no ``/dev/zero``, FIFO,
  socket or folder), and no bigger than ``SRZOO_MAX_MODEL_BYTES``.
* :class:`Budget`: the bytes a reader allocates for one file (decompressed
  storages, tensors) add up to at most that same bound.
* :func:`check_onnx_external`: an ONNX file whose tensors keep their data in
  other files may only name regular files inside its own folder (no absolute
  path, no ``..``, no symlink leading out), checked before any engine opens it.
* :func:`json_loads` / :func:`nesting_depth`: JSON nested deeper than
  :data:`MAX_DEPTH` is refused before it is parsed (no RecursionError).
* :func:`reading`: the backstop around a reader; any failure of a parser on
  crafted bytes becomes one :class:`ModelLoadError` line naming the file.

Layer: in :mod:`srzoo.hub` (below convert and runtime, which both use it).
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import re
import stat
import struct
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

from srzoo import config
from srzoo.errors import ModelLoadError, SrzooError

#: JSON/TOML documents nested deeper than this are refused (real ones: < 10)
MAX_DEPTH = 64

T = TypeVar("T")


def max_model_bytes() -> int:
    """``SRZOO_MAX_MODEL_BYTES``: the most bytes one model file may hold or expand to."""
    return int(config.get("SRZOO_MAX_MODEL_BYTES"))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


def too_big(path: Any, what: str, n: int) -> ModelLoadError:
    """The error for a file that holds or expands to ``n`` bytes, above the bound."""
    cap = max_model_bytes()
    return ModelLoadError(
        f"{path}: {what} needs {_mib(n)}, above SRZOO_MAX_MODEL_BYTES={cap} ({_mib(cap)}); "
        "a crafted or damaged file? If you trust it, raise SRZOO_MAX_MODEL_BYTES")


def regular_file(path: str | os.PathLike[str], what: str = "model file") -> int:
    """The size of ``path`` after checking it is a regular file within the bound."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, FIFO or socket"
        raise ModelLoadError(f"{path}: is {kind}, not a {what}; give a regular file")
    if st.st_size > max_model_bytes():
        raise too_big(path, f"the {what} ({st.st_size} bytes)", st.st_size)
    return int(st.st_size)


def read_bytes(path: str | os.PathLike[str], what: str = "model file") -> bytes:
    """The whole of a regular file, within the bound (re-checked on the open file)."""
    regular_file(path, what)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ModelLoadError(f"{path}: is not a regular file; give a regular {what}")
            # read() preallocates what it is asked for: ask for the file's size, not the bound
            data = f.read(min(st.st_size, max_model_bytes()) + 1)
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if len(data) > max_model_bytes():
        raise too_big(path, f"the {what}", len(data))
    return data


class Budget:
    """Bytes a reader allocates for one file, refused past ``SRZOO_MAX_MODEL_BYTES`` in all."""

    def __init__(self, path: Any, what: str = "the file") -> None:
        self.path, self.what, self.used, self.cap = path, what, 0, max_model_bytes()

    def take(self, n: int, part: str = "") -> None:
        if n < 0:
            raise ModelLoadError(f"{self.path}: {part or self.what} has a negative size ({n})")
        self.used += int(n)
        if self.used > self.cap:
            raise too_big(self.path, f"{self.what}{' (at ' + part + ')' if part else ''}", self.used)


def checked_numel(shape: Any, where: str, what: str = "tensor") -> int:
    """The element count of ``shape`` (a sequence of non-negative plain ints), in Python ints
    (no int64 overflow), refused when it is not a shape or its count is beyond any bound."""
    if not isinstance(shape, (list, tuple)) or len(shape) > 32:
        raise ModelLoadError(f"{where}: {what} has shape {str(shape)[:60]}, not a list of sizes")
    n = 1
    for d in shape:
        if type(d) is not int or d < 0:  # bool, float, str, None, negative: not a size
            raise ModelLoadError(f"{where}: {what} has shape {str(list(shape))[:80]}: "
                                 "sizes must be integers >= 0")
        n *= d
    if n > (1 << 62):
        raise ModelLoadError(f"{where}: {what} of shape {str(list(shape))[:80]} has more elements "
                             "than any file can hold")
    return n


# ------------------------------------------------------------------ nesting
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def nesting_depth(text: str | bytes) -> int:
    """How deep ``[``/``{`` nest in a JSON document (strings skipped); linear, no recursion."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    raw = _JSON_STRING.sub(b'""', raw)
    a = np.frombuffer(raw, np.uint8)
    steps = (np.isin(a, (0x5B, 0x7B)).astype(np.int64) - np.isin(a, (0x5D, 0x7D)).astype(np.int64))
    return int(np.cumsum(steps).max()) if steps.size else 0


def json_loads(text: str | bytes, where: Any, what: str = "JSON", error: type = ModelLoadError) -> Any:
    """``json.loads`` after refusing documents nested deeper than :data:`MAX_DEPTH`."""
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise error(f"{where}: {what} is nested {depth} levels deep (at most {MAX_DEPTH}); "
                    "a crafted or damaged file")
    try:
        return json.loads(text)
    except (ValueError, UnicodeError, RecursionError) as e:
        raise error(f"{where}: {what} is not valid JSON ({str(e)[:100]})") from None


# ------------------------------------------------------------------ ONNX external data
def _tensors(graph: Any, depth: int = 0) -> Iterator[Any]:
    if depth > MAX_DEPTH:
        raise ModelLoadError("graph nests subgraphs more than 64 deep")
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("sparse_tensor"):
                yield a.sparse_tensor.values
                yield a.sparse_tensor.indices
            for sp in a.sparse_tensors:
                yield sp.values
                yield sp.indices
            if a.HasField("g"):
                yield from _tensors(a.g, depth + 1)
            for g in a.graphs:
                yield from _tensors(g, depth + 1)


def _all_tensors(model: Any) -> Iterator[Any]:
    yield from _tensors(model.graph)
    for ti in model.training_info:  # training graphs carry initializers too
        yield from _tensors(ti.initialization, 1)
        yield from _tensors(ti.algorithm, 1)
    for fn in model.functions:
        for node in fn.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                if a.HasField("g"):
                    yield from _tensors(a.g, 1)
                for g in a.graphs:
                    yield from _tensors(g, 1)


def external_target(model_path: Path, location: str) -> Path:
    """The file an external-data ``location`` of ``model_path`` names, if it stays inside the
    model's own folder and is a regular file; ModelLoadError (naming both) otherwise."""
    base = Path(os.path.abspath(model_path)).parent

    def refuse(why: str) -> ModelLoadError:
        return ModelLoadError(f"{model_path}: refused: its external data location {location[:200]!r} "
                              f"{why}; srzoo reads external data only from files inside the model's "
                              f"own folder ({base}). Nothing was read from it")
    if not isinstance(location, str):  # protobuf hands back bytes that are not UTF-8
        location = repr(location)
        raise refuse("is not UTF-8 text")
    if not location or "\x00" in location:
        raise refuse("is empty or holds a NUL byte")
    parts = re.split(r"[\\/]", location)
    if os.path.isabs(location) or location.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", location):
        raise refuse("is an absolute path")
    if ".." in parts:
        raise refuse("climbs out with '..'")
    target = base.joinpath(*[p for p in parts if p not in ("", ".")])
    real, real_base = os.path.realpath(target), os.path.realpath(base)
    if os.path.commonpath([real, real_base]) != real_base or real == real_base:
        raise refuse(f"leads out of the folder (it resolves to {real})")
    try:
        st = os.stat(real)
    except OSError as e:
        raise refuse(f"cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise refuse("is not a regular file")
    return Path(real)


def check_onnx_external(path: str | os.PathLike[str], model: Any = None) -> int:
    """Check every external-data reference of an ONNX file (see :func:`external_target`);
    returns the bytes they name. ``model``: the already parsed ModelProto, if any.

    Files that cannot hold a reference (no ``location`` key anywhere in their bytes) are
    not parsed at all.
    """
    path = Path(path)
    if model is None:
        size = regular_file(path, "ONNX model file")
        with open(path, "rb") as f:
            data = f.read(size + 1)
        if b"location" not in data:
            return 0
        try:
            import onnx
        except ImportError:
            raise ModelLoadError(f"{path}: this ONNX file may keep weights in other files; checking "
                                 "where needs the onnx package: pip install 'srzoo[onnx]'") from None
        try:
            model = onnx.load_model_from_string(data)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError kinds
            raise ModelLoadError(f"{path}: not an ONNX model onnx can read "
                                 f"({(str(e).splitlines() or [type(e).__name__])[0][:100]})") from None
    total = 0
    try:
        tensors = list(_all_tensors(model))
    except ModelLoadError as e:
        raise ModelLoadError(f"{path}: {e}") from None
    for t in tensors:
        if t.data_location != 1:  # TensorProto.EXTERNAL
            continue
        info = {e.key: e.value for e in t.external_data}
        target = external_target(path, info.get("location", ""))
        try:
            offset, length = int(info.get("offset") or 0), info.get("length")
            avail = target.stat().st_size - offset
            length = avail if length in (None, "") else int(length)
        except ValueError:
            raise ModelLoadError(f"{path}: tensor {t.name!r}: external data offset/length "
                                 f"{info.get('offset')!r}/{info.get('length')!r} are not integers") from None
        if offset < 0 or length < 0 or length > avail:
            raise ModelLoadError(f"{path}: tensor {t.name!r}: external data bytes {offset}+{length} lie "
                                 f"outside {target.name} ({target.stat().st_size} bytes)")
        total += length
        if total > max_model_bytes():
            raise too_big(path, "its external data", total)
    return total


# ------------------------------------------------------------------ the backstop
_PARSER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError, LookupError,
    struct.error, zipfile.BadZipFile, zlib.error, EOFError, UnicodeError, pickle.UnpicklingError,
    OSError, NotImplementedError, AssertionError, StopIteration,
    RuntimeError,  # zipfile: "File ... is encrypted, password required"
)


def _why(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:  # cv2.error: the '> ...' line or the '(-NNN:...)' line
        if ln.startswith(">"):
            return ln.lstrip("> ").strip()[:160]
    return f"{type(e).__name__}: {lines[-1][:160]}" if lines else type(e).__name__


@contextmanager
def reading(path: Any, what: str) -> Iterator[None]:
    """Turn any failure of a parser on crafted bytes into one ModelLoadError naming ``path``.

    The readers validate structure first; this catches what a library under them
    (zipfile, h5py, cv2, numpy) raises on bytes nobody validated.
    """
    try:
        yield
    except SrzooError as e:
        if len(e.args) != 1 or not isinstance(e.args[0], str):
            raise
        msg = e.args[0]
        fixed = (msg if str(path) in msg else f"{path}: {msg}").replace("\r", "\\r").replace("\n", "\\n")
        if fixed == msg:
            raise
        try:  # the same error, naming the file, on one line (crafted names may hold newlines)
            named = type(e)(fixed)
        except Exception:  # noqa: BLE001 - an error class with another signature
            raise e from None
        raise named from None
    except MemoryError:
        raise ModelLoadError(f"{path}: reading this {what} ran out of memory; it declares more data "
                             "than it holds (a crafted or damaged file?)") from None
    except RecursionError:
        raise ModelLoadError(f"{path}: malformed {what}: nested too deeply (a crafted file?)") from None
    except _PARSER_ERRORS as e:
        raise ModelLoadError(f"{path}: malformed {what} ({_why(e)})".replace("\n", "\\n")) from None
    except Exception as e:  # cv2.error, h5py's and protobuf's own kinds
        if type(e).__module__.split(".")[0] in ("cv2", "h5py", "google", "onnx", "ncnn"):
            raise ModelLoadError(f"{path}: malformed {what} ({_why(e)})") from None
        raise


def guarded(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator for a method ``(self, source, ...)`` that reads ``source``: :func:`reading`."""
    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def inner(self: Any, source: Any, *args: Any, **kwargs: Any) -> T:
            with reading(source, what):
                return fn(self, source, *args, **kwargs)
        return inner
    return wrap


__all__ = ["Budget", "MAX_DEPTH", "check_onnx_external", "checked_numel", "external_target",
           "guarded", "json_loads", "max_model_bytes", "nesting_depth", "read_bytes", "reading",
           "regular_file", "too_big"]
