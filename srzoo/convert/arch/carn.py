"""CARN-M (Ahn et al. 2018): cascading blocks with a shared grouped residual block.

Keys (nmhkahn/CARN-pytorch ``carn_m``): ``sub_mean/add_mean.shifter`` (1x1 mean
shift), ``entry``, ``bK.b1.body.{0,2,4}`` (grouped 3x3, grouped 3x3, 1x1, used
three times per block), ``bK.cJ.body.0``, ``cJ.body.0``, ``upsample.up{2,3,4}``
(multi-scale: one checkpoint, three scales), ``exit``. Groups come from the
weight shapes. Input RGB in [0,1].
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    need = ("sub_mean.shifter.weight", "entry.weight", "exit.weight", "b1.b1.body.0.weight")
    if not all(k in sd for k in need):
        return None
    scales = tuple(sorted(int(m.group(1)) for k in sd
                          if (m := re.fullmatch(r"upsample\.up(\d)\.body\.0\.weight", k))))
    single = "upsample.body.0.weight" in sd
    if not scales and not single:
        return None
    if scale is None:
        scale = scales[-1] if scales else 0
    if scales and scale not in scales:
        return None
    blocks = len({k.split(".")[0] for k in sd if re.fullmatch(r"b\d+\.b1\.body\.0\.weight", k)})
    feats = sd["entry.weight"].shape[0]
    groups = feats // sd["b1.b1.body.0.weight"].shape[1]
    return Arch("carn-m", scale, params={"blocks": blocks, "groups": groups, "multi_scale": bool(scales)},
                scales=scales)


def _up(F: Any, sd: Mapping[str, np.ndarray], prefix: str, scale: int, groups: int, x: Any) -> Any:
    steps = [3] if scale == 3 else [2] * {2: 1, 4: 2, 8: 3}[scale]
    for i, r in enumerate(steps):
        k = f"{prefix}.body.{3 * i}"
        w = weight(sd, k + ".weight")
        x = F.pixel_shuffle(F.relu(F.conv(x, w, weight(sd, k + ".bias"), groups=groups)), r, channels=w.shape[0])
    return x


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    g = arch.params["groups"]
    c = lambda k, t, **kw: F.conv(t, weight(sd, k + ".weight"), weight(sd, k + ".bias"), **kw)  # noqa: E731

    def eres(p: str, t: Any) -> Any:
        o = F.relu(c(p + ".body.0", t, groups=g))
        o = F.relu(c(p + ".body.2", o, groups=g))
        o = c(p + ".body.4", o, pad=0)
        return F.relu(F.add(o, t))

    def cascade(prefix: str, t: Any, unit: Any) -> Any:
        cat, o = t, t
        for j in (1, 2, 3):
            cat = F.cat([cat, unit(o)])
            o = F.relu(c(f"{prefix}c{j}.body.0", cat, pad=0))
        return o

    x = c("sub_mean.shifter", x, pad=0)
    x = c("entry", x)
    n = arch.params["blocks"]
    cat, o = x, x
    for j in range(1, n + 1):
        blk = cascade(f"b{j}.", o, lambda t, j=j: eres(f"b{j}.b1", t))
        cat = F.cat([cat, blk])
        o = F.relu(c(f"c{j}.body.0", cat, pad=0))
    prefix = f"upsample.up{arch.scale}" if arch.params["multi_scale"] else "upsample"
    out = _up(F, sd, prefix, arch.scale, g, o)
    out = c("exit", out)
    return c("add_mean.shifter", out, pad=0)
