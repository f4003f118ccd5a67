"""Architectures recognised from a state dict's key names and tensor shapes.

Each module here has ``detect(sd, scale)``, which returns an :class:`Arch`
when the keys and shapes are its own (never looking at a file name), and a
``forward(ops, sd, arch, x)`` written once against the operations of
:class:`srzoo.convert.onnxbuild.Graph`; the same function, run eagerly by
:mod:`srzoo.convert.reference`, is the check of the graph.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from srzoo.convert.onnxbuild import OPSET
from srzoo.errors import ModelLoadError, SrzooError

#: modules tried in order; the first whose detect() answers wins
MODULES = ["rrdbnet", "srvgg", "carn", "rfdn", "vdsr", "span", "plksr", "omnisr", "hat", "atd", "swin2sr", "swinir",
           "srformer", "drct", "dat", "rgt", "rcan", "safmn", "spsr", "realcugan", "mosr", "swiftsrgan"]


@dataclass
class Arch:
    name: str                     # e.g. "rrdbnet"
    scale: int
    in_channels: int = 3
    out_channels: int = 3
    color: str = "rgb"            # what the graph's input channels are (IOSpec.color)
    pre_upsample: str | None = None
    min_size: int = 8             # smallest input side the network accepts
    params: dict[str, Any] = field(default_factory=dict)
    forward: Callable[..., Any] | None = None
    scales: tuple[int, ...] = ()  # every scale the checkpoint offers (CARN-M: 2, 3, 4)
    opset: int = OPSET            # of the emitted graph (onnxbuild.OPSET_RESIZE_LIKE where it needs that)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name} x{self.scale}" + (f" ({extra})" if extra else "")


def detect(sd: Mapping[str, np.ndarray], scale: int | None = None, arch: str | None = None) -> Arch:
    """The architecture of a state dict; SrzooError naming what was seen if none fits."""
    names = MODULES if arch in (None, "auto") else [arch]
    for name in names:
        if name not in MODULES:
            raise SrzooError(f"unknown architecture {arch!r} (known: auto, {', '.join(MODULES)})")
        mod = importlib.import_module(f"{__name__}.{name}")
        found = mod.detect(sd, scale)
        if found is not None:
            _check_bounds(found)
            found.forward = mod.forward
            return found
    keys = list(sd)
    sample = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
    what = "a known architecture" if arch in (None, "auto") else f"architecture {arch!r}"
    raise SrzooError(f"the state dict ({len(keys)} tensors: {sample}) is not {what} "
                     f"(srzoo recognises {', '.join(MODULES)})")


#: largest scale, input side and channel count a checkpoint may declare: they size the
#: verification probe (32 px and up, times the scale), so a crafted state dict with twenty
#: x2 upsampling blocks cannot ask for a 2**20-times probe
MAX_SCALE, MAX_MIN_SIZE, MAX_CHANNELS = 16, 128, 4


def _check_bounds(a: Arch) -> None:
    scales = (a.scale, *a.scales)
    if not all(isinstance(s, int) and 1 <= s <= MAX_SCALE for s in scales):
        raise ModelLoadError(f"the state dict describes a {a.name} of scale {a.scale} (scales {list(scales)}); "
                             f"srzoo converts scales 1 to {MAX_SCALE}")
    if not (1 <= a.min_size <= MAX_MIN_SIZE and 1 <= a.in_channels <= MAX_CHANNELS
            and 1 <= a.out_channels <= MAX_CHANNELS):
        raise ModelLoadError(f"the state dict describes a {a.name} with {a.in_channels} input and "
                             f"{a.out_channels} output channels and a smallest input of {a.min_size} px; "
                             "not an image super-resolution network srzoo converts")


def weight(sd: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    return np.asarray(sd[key], np.float32)


__all__ = ["Arch", "MODULES", "detect"]
