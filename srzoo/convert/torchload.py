"""Read PyTorch checkpoints without PyTorch and without running their pickles.

A ``.pth`` file is a pickle. Unpickling it with :mod:`pickle` (or
``torch.load(weights_only=False)``) imports and calls whatever the file
names: a crafted file runs ``os.system``. :func:`load` reads both torch
formats (zip, torch >= 1.6; and the legacy sequence of pickles) with a
restricted unpickler that resolves only an allow-list of names, each to OUR
code:

* tensors (``torch._utils._rebuild_tensor[_v2]``, ``_rebuild_parameter``,
  ``torch.nn.parameter.Parameter``) become numpy arrays built from the raw
  storage bytes;
* storages (``torch.FloatStorage`` and friends) are dtype markers;
* containers: ``collections.OrderedDict``, dict, list, tuple;
* a whole pickled ``nn.Module`` (VDSR's ``model_epoch_50.pth``): its classes
  (``torch.nn.modules.*`` and CamelCase classes of non-standard-library
  modules, e.g. ``vdsr.Net``) become inert :class:`ModuleRecord` objects
  that only keep the state the pickle gives them; nothing of theirs is
  imported or run. :func:`state_dict` flattens them into dotted keys.

Anything else (``os.system``, ``builtins.eval``, ``getattr``, ``__import__``,
``subprocess.Popen``...) refuses the whole file with one line naming it.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import reprlib
import sys
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srzoo.errors import ModelLoadError
from srzoo.hub.untrusted import MAX_DEPTH, Budget, read_bytes, reading, regular_file


class UnsafeCheckpoint(ModelLoadError):
    """The checkpoint's pickle asks for a callable or class outside the allow-list."""


class CheckpointError(ModelLoadError):
    """The file is not a PyTorch checkpoint this reader understands."""


class _Malformed(ValueError):
    """Raised inside the unpickler; :func:`load` names the file."""


_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    """Stands for ``torch.FloatStorage`` etc.: only carries the dtype."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _DTYPES[name]

    def itemsize(self) -> int:
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize

    def decode(self, raw: bytes) -> np.ndarray:
        if self.dtype == "bfloat16":  # upper half of a float32
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            return u.view(np.float32)
        return np.frombuffer(raw, dtype=np.dtype(self.dtype).newbyteorder("<"))


class _Storage:
    def __init__(self, stype: _StorageType, budget: Budget, data: np.ndarray | None = None) -> None:
        self.stype = stype
        self.budget = budget  # the file's: tensors copied out of the storage count too
        self.data = data  # filled later for legacy files


class ModuleRecord:
    """An inert stand-in for a pickled class (an ``nn.Module``): it only keeps its state."""

    _srzoo_qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_srzoo_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = state[0] or {}
        if isinstance(state, dict):
            self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<record of {self._srzoo_qualname}>"


_RECORDS: dict[tuple[str, str], type] = {}


def _record_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _RECORDS:
        _RECORDS[key] = type(name, (ModuleRecord,), {"_srzoo_qualname": f"{module}.{name}",
                                                      "__module__": "srzoo.convert.torchload.records"})
    return _RECORDS[key]


class _Repr(reprlib.Repr):
    """repr() with bounded work: a pickle can share one list 2**40 times in a few hundred bytes
    (memo references), and the full repr of that, even cut at 60 characters, is never done."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxtuple, self.maxlist, self.maxdict, self.maxset = 4, 40, 40, 40, 40
        self.maxstring = self.maxlong = self.maxother = 200

    def repr_OrderedDict(self, x: Any, level: int) -> str:  # noqa: N802 - reprlib's naming
        return f"OrderedDict({self.repr_dict(x, level)})"


def _short(x: Any, n: int) -> str:
    """``repr(x)[:n]`` for what a pickle gives (containers, numbers, strings), in bounded time."""
    return _Repr().repr(x)[:n]


def _ints(x: Any, what: str) -> tuple[int, ...]:
    if not isinstance(x, (tuple, list)) or len(x) > 32 or \
            not all(type(v) is int for v in x):  # noqa: E721 - bool, float, str: not a size
        raise _Malformed(f"tensor {what} {_short(x, 60)} is not a list of integers")
    return tuple(x)


def _rebuild_tensor(storage: Any = None, offset: Any = None, size: Any = None, stride: Any = None,
                    *rest: Any) -> "Tensor":
    if not isinstance(storage, _Storage):
        raise _Malformed(f"tensor built from {type(storage).__name__}, not from a storage")
    if type(offset) is not int:
        raise _Malformed(f"tensor storage offset {_short(offset, 40)} is not an integer")
    shape, strides = _ints(size, "shape"), _ints(stride, "strides")
    if len(shape) != len(strides):
        raise _Malformed(f"tensor of shape {shape} has {len(strides)} strides")
    if offset < 0 or min(shape, default=0) < 0 or min(strides, default=0) < 0:
        raise _Malformed(f"tensor with negative shape, strides or offset ({shape}, {strides}, {offset})")
    return Tensor(storage, offset, shape, strides)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


def _nothing(*args: Any) -> None:
    return None


class Tensor:
    """A tensor as the pickle describes it; :meth:`numpy` reads its values from the storage."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, size, stride

    def __setstate__(self, state: Any) -> None:
        """Old Parameters pickle extra state (requires_grad, hooks): not needed here."""

    def numpy(self) -> np.ndarray:
        """The values (a copy). The shape, strides and offset must fit the storage, and the
        copy counts against the file's byte budget (stride 0 cannot blow up a small storage)."""
        data = self.storage.data
        where = self.storage.budget.path
        if data is None:
            raise CheckpointError(f"{where}: tensor storage was never read (truncated file?)")
        n = len(data)
        numel = 1
        for s in self.shape:
            numel *= s
        if numel:  # an empty tensor reads nothing
            last = self.offset + sum((s - 1) * st for s, st in zip(self.shape, self.stride))
            if last >= n:
                raise CheckpointError(f"{where}: tensor of shape {self.shape}, strides {self.stride} and "
                                      f"offset {self.offset} reaches past its storage of {n} values")
        self.storage.budget.take(numel * data.itemsize, f"a tensor of shape {self.shape}")
        if not numel:
            return np.zeros(self.shape, dtype=data.dtype.newbyteorder("="))
        it = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.shape,
                                               strides=tuple(s * it for s in self.stride), writeable=False)
        return np.array(view, dtype=data.dtype.newbyteorder("="), copy=True)


def _allowed(module: str, name: str) -> Any:
    if module == "collections" and name == "OrderedDict":
        return OrderedDict
    if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
        return _rebuild_tensor
    if (module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state")) \
            or (module == "torch.nn.parameter" and name == "Parameter"):
        return _rebuild_parameter
    if module == "torch" and name in _DTYPES:
        return _StorageType(name)
    if module == "torch.nn.backends.thnn" and name == "_get_thnn_function_backend":
        return _nothing  # old (<= 0.4) modules pickle their backend; a no-op here
    if re.fullmatch(r"[A-Z][A-Za-z0-9_]*", name):
        root = module.split(".")[0]
        if module.startswith("torch.nn.modules.") or (
                root not in sys.stdlib_module_names and root not in ("torch", "numpy", "builtins")
                and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", module)):
            return _record_class(module, name)
    return None


def _prescan(f: io.BytesIO) -> None:
    """Walk the next pickle's opcodes (pure Python, nothing built) before unpickling it.
    Refused here, because the C unpickler would allocate first: a length field claiming more
    bytes than the stream holds (``BINUNICODE`` of 2 GiB in a 60-byte file), and a memo index
    (``LONG_BINPUT 170000000``: a 2.7 GB memo table) beyond the pickle's opcode count."""
    start = f.tell()
    ops, top = 0, -1
    try:
        with warnings.catch_warnings():  # STRING opcodes with odd escapes: DeprecationWarning
            warnings.simplefilter("ignore")
            for op, arg, _ in pickletools.genops(f):
                ops += 1
                if op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    top = max(top, int(arg))
    except ValueError as e:  # "expected N bytes in a bytes8, but only M remain", unknown opcode
        raise _Malformed(str(e)[:120]) from None
    if top >= ops:  # the C unpickler sizes its memo table by the largest index it is given
        raise _Malformed(f"memo index {top} in a pickle of {ops} opcodes")
    f.seek(start)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f: Any, where: str, storages: Callable[[tuple], _Storage]) -> None:
        _prescan(f)
        super().__init__(f, encoding="latin1")
        self._where = where
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        obj = _allowed(module, name)
        if obj is None:
            raise UnsafeCheckpoint(
                f"{self._where}: refused: its pickle asks for {module}.{name}, which a checkpoint of "
                f"weights never needs (srzoo loads only tensors and plain containers; nothing was run)")
        return obj

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 2 and pid[0] == "module" \
                and isinstance(pid[1], type) and issubclass(pid[1], ModuleRecord):
            return pid[1]  # old torch records a module class with its source text; never used
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            what = pid[0] if isinstance(pid, tuple) and pid and isinstance(pid[0], str) else type(pid).__name__
            raise UnsafeCheckpoint(f"{self._where}: refused: unknown persistent id {what[:60]!r}")
        if len(pid) < 5 or not isinstance(pid[2], (str, int)):
            raise _Malformed(f"storage reference with {len(pid)} fields or a key of type "
                             f"{type(pid[2]).__name__ if len(pid) > 2 else 'none'}")
        return self._storages(pid)


def _stype(x: Any, where: str) -> _StorageType:
    if not isinstance(x, _StorageType):
        raise CheckpointError(f"{where}: storage of unknown type {_short(x, 80)}")
    return x


def _load_zip(path: Path, zf: zipfile.ZipFile, budget: Budget) -> Any:
    names = zf.namelist()
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1] or \
           [n for n in names if n == "data.pkl"]
    if len(pkls) != 1:
        raise CheckpointError(f"{path}: zip file without exactly one data.pkl: not a torch checkpoint")
    prefix = pkls[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in names and zf.read(f"{prefix}byteorder").strip() not in (b"little", b""):
        raise CheckpointError(f"{path}: big-endian checkpoint, not supported")
    cache: dict[str, _Storage] = {}

    def storage(pid: tuple) -> _Storage:
        if len(pid) != 5:  # torch's zip format writes exactly ('storage', type, key, location, numel)
            raise _Malformed(f"storage reference with {len(pid)} fields (a zip checkpoint's have 5)")
        _, stype, key, _loc, numel = pid
        st = _stype(stype, str(path))
        key = str(key)
        if key not in cache:
            member = f"{prefix}data/{key}"
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise CheckpointError(f"{path}: storage {member} is missing") from None
            budget.take(info.file_size, f"storage {member}")  # zipfile never inflates past file_size
            raw = zf.read(member)
            cache[key] = _Storage(st, budget, st.decode(raw[: (len(raw) // st.itemsize()) * st.itemsize()]))
        return cache[key]

    budget.take(zf.getinfo(pkls[0]).file_size, pkls[0])
    with zf.open(pkls[0]) as f:
        return _Unpickler(io.BytesIO(f.read()), str(path), storage).load()


def _load_legacy(path: Path, f: Any, budget: Budget) -> Any:
    where = str(path)

    def plain(fh: Any) -> Any:
        return _Unpickler(fh, where, lambda pid: (_ for _ in ()).throw(
            UnsafeCheckpoint(f"{where}: refused: storage reference in a header pickle"))).load()

    try:
        magic = plain(f)
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({e})") from None
    if magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither zip nor legacy magic number)")
    plain(f)  # protocol version
    plain(f)  # sys info
    roots: dict[str, _Storage] = {}
    views: list[tuple[_Storage, str, int, int]] = []

    def storage(pid: tuple) -> _Storage:
        _, stype, key, _loc, _size, view = (tuple(pid) + (None,))[:6]
        st = _stype(stype, where)
        key = str(key)
        if key not in roots:
            roots[key] = _Storage(st, budget)
        if view is not None:
            if not (isinstance(view, tuple) and len(view) == 3 and type(view[1]) is int
                    and type(view[2]) is int and view[1] >= 0 and view[2] >= 0):
                raise _Malformed(f"storage view {_short(view, 60)} is not (key, offset, size)")
            vkey, offset, vsize = view
            s = _Storage(st, budget)
            views.append((s, key, offset, vsize))
            return s
        return roots[key]

    try:
        result = _Unpickler(f, where, storage).load()
        keys = plain(f)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: corrupt PyTorch checkpoint ({e})") from None
    if not isinstance(keys, (list, tuple)):
        raise CheckpointError(f"{path}: corrupt PyTorch checkpoint (storage keys are a {type(keys).__name__})")
    for key in keys:
        st = roots.get(str(key))
        if st is None:
            raise CheckpointError(f"{path}: storage {key} listed but never used")
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"{path}: truncated before storage {key}")
        count = int.from_bytes(head, "little")
        nbytes = count * st.stype.itemsize()
        budget.take(nbytes, f"storage {key}")
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise CheckpointError(f"{path}: truncated inside storage {key}")
        st.data = st.stype.decode(raw)
    for s, key, offset, size in views:
        s.data = roots[key].data[offset: offset + size] if roots[key].data is not None else None
    return result


def load(path: str | Path) -> Any:
    """The checkpoint's object tree, with tensors as :class:`Tensor` (call ``.numpy()``).

    Only a regular file within ``SRZOO_MAX_MODEL_BYTES`` is read; its storages and the
    tensors later copied out of them share that same byte budget.
    """
    path = Path(path)
    regular_file(path, "PyTorch checkpoint")
    budget = Budget(path, "the checkpoint's tensors")
    try:
        with reading(path, "PyTorch checkpoint"):
            try:
                # from memory (the file is within the bound): a pickle opcode claiming a 4 GiB
                # string, or a zip entry claiming 84 MB of compressed data in a 500-byte file,
                # then reads what is there instead of preallocating what it claims
                data = io.BytesIO(read_bytes(path, "PyTorch checkpoint"))
                if zipfile.is_zipfile(data):
                    with zipfile.ZipFile(data) as zf:
                        return _load_zip(path, zf, budget)
                data.seek(0)
                return _load_legacy(path, data, budget)
            except _Malformed as e:
                raise CheckpointError(f"{path}: corrupt PyTorch checkpoint ({e})") from None
    except ModelLoadError as e:
        if isinstance(e, (CheckpointError, UnsafeCheckpoint)):
            raise
        raise CheckpointError(str(e)) from None


MAX_VISITS = 1 << 20  # values _flatten looks at in one checkpoint (real ones: tens of thousands)


def _flatten(obj: Any, prefix: str, out: "OrderedDict[str, np.ndarray]", depth: int = 0,
             visits: list[int] | None = None) -> None:
    """Dotted keys of every tensor under ``obj``. Bounded in depth and in the values visited:
    a pickle can refer to one dict twice from each of 60 nested dicts (memo references, a few
    hundred bytes), 2**60 paths to walk."""
    visits = [0] if visits is None else visits
    visits[0] += 1
    if visits[0] > MAX_VISITS:
        raise CheckpointError(f"checkpoint has more than {MAX_VISITS} values to look at, one dict or module "
                              f"shared over and over? (at {prefix[:80]}...)")
    if depth > MAX_DEPTH:
        raise CheckpointError(f"checkpoint nests modules or dicts more than {MAX_DEPTH} deep "
                              f"(at {prefix[:80]}...)")
    if isinstance(obj, Tensor):
        out[prefix.rstrip(".")] = obj.numpy()
    elif isinstance(obj, ModuleRecord):
        d = obj.__dict__
        for k, v in _items(d.get("_parameters")):
            if v is not None:
                _flatten(v, f"{prefix}{k}.", out, depth + 1, visits)
        for k, v in _items(d.get("_buffers")):
            if v is not None and not str(k).startswith("num_batches"):
                _flatten(v, f"{prefix}{k}.", out, depth + 1, visits)
        for k, v in _items(d.get("_modules")):
            if v is not None:
                _flatten(v, f"{prefix}{k}.", out, depth + 1, visits)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}{_key(k)}.", out, depth + 1, visits)


def _key(k: Any) -> str:
    if not isinstance(k, (str, int, float)) or isinstance(k, bool):
        raise CheckpointError(f"checkpoint has a key of type {type(k).__name__}, not a name")
    return str(k)


def _items(d: Any) -> list[tuple[str, Any]]:
    if not d:
        return []
    if not isinstance(d, dict):
        raise CheckpointError(f"module state is a {type(d).__name__}, not a dict")
    return [(_key(k), v) for k, v in d.items()]


_WRAPPERS = ("params_ema", "params", "state_dict", "model", "net", "generator", "g")


def state_dict(obj: Any, _depth: int = 0) -> "OrderedDict[str, np.ndarray]":
    """The weights of a loaded checkpoint as ``{dotted key: array}``.

    Unwraps the usual containers (``params_ema``/``params`` of BasicSR,
    ``state_dict``, ``model`` — a whole pickled module included) and strips
    a ``module.`` prefix left by DataParallel.
    """
    if isinstance(obj, dict):
        for key in _WRAPPERS:
            if key in obj and isinstance(obj[key], (dict, ModuleRecord)) and _depth < MAX_DEPTH:
                return state_dict(obj[key], _depth + 1)
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    _flatten(obj, "", out)
    if out and all(k.startswith("module.") for k in out):
        out = OrderedDict((k[len("module."):], v) for k, v in out.items())
    return out


def load_state_dict(path: str | Path) -> "OrderedDict[str, np.ndarray]":
    """:func:`load` then :func:`state_dict`: the file's weights as numpy arrays."""
    obj = load(path)
    with reading(path, "PyTorch checkpoint"):
        try:
            sd = state_dict(obj)
        except CheckpointError as e:
            raise CheckpointError(e if str(e).startswith(str(path)) else f"{path}: {e}") from None
    if not sd:
        raise CheckpointError(f"{path}: no tensors found in the checkpoint")
    return sd


__all__ = ["CheckpointError", "ModuleRecord", "UnsafeCheckpoint", "load", "load_state_dict", "state_dict"]
