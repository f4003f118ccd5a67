"""RCAN (Residual Channel Attention Network, Zhang et al., ECCV 2018): the OpenModelDB
``rcan`` architecture, as spandrel 0.4.2 loads it (its keys and its forward pass).

Keys: ``head.0`` (a convolution; ``head.1`` behind a parameter-free pixel unshuffle in
the "PixelUnshuffle" variant), ``body.G.body.B`` residual channel attention blocks
(``body.0`` conv, ReLU, ``body.2`` conv, ``body.3`` channel attention: global mean ->
``conv_du.0`` 1x1 -> ReLU -> ``conv_du.2`` 1x1 -> sigmoid, multiplied in), each group
closed by a convolution ``body.G.body.<n_blocks>`` and a skip, the trunk closed by
``body.<n_groups>`` and a skip; ``tail.0.{0,2,...}`` the pixel-shuffle upsampler
(x2 steps for powers of two, one x3), ``tail.1`` the last convolution. ``sub_mean`` /
``add_mean`` (1x1 MeanShift convolutions) are present when the network normalises:
then the input is multiplied by rgb_range 255 (spandrel's fixed value; the file does
not store it) before ``sub_mean`` and the output divided by it after ``add_mean``.

The unshuffle variant (scales 1 and 2) unshuffles by ``4 // scale`` and upsamples by 4;
its input is reflect-padded to a multiple of the unshuffle factor and the output cropped
to ``scale`` times the input, in the graph, as spandrel's ``check_img_size`` does.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight

#: spandrel's rgb_range (not stored in the file)
RGB_RANGE = 255.0
_MAX_INDEX = 1000  # more groups / blocks than this is not a network anybody trained


def _seq(sd: Mapping[str, np.ndarray], prefix: str) -> list[int]:
    """The indices N of ``prefix.N.*`` keys, sorted."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for k in sd if (m := pat.match(k)) and int(m.group(1)) < _MAX_INDEX})


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...] | None:
    v = sd.get(key)
    return tuple(int(d) for d in v.shape) if v is not None else None


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if "tail.1.weight" not in sd or "body.0.body.0.body.3.conv_du.0.weight" not in sd:
        return None
    unshuffle_mod = "head.1.weight" in sd
    head = "head.1.weight" if unshuffle_mod else "head.0.weight"
    hw, tw = _shape(sd, head), _shape(sd, "tail.1.weight")
    if hw is None or tw is None or len(hw) != 4 or len(tw) != 4 or hw[2] != hw[3] or hw[2] % 2 == 0:
        return None
    feats, k, colors = hw[0], hw[2], tw[0]
    groups = _seq(sd, "body")
    if len(groups) < 2 or groups != list(range(len(groups))):
        return None
    n_groups = len(groups) - 1  # the last is the trunk's closing convolution
    blocks = _seq(sd, "body.0.body")
    if len(blocks) < 2 or blocks != list(range(len(blocks))):
        return None
    n_blocks = len(blocks) - 1
    for g in range(n_groups):
        for b in range(n_blocks):
            p = f"body.{g}.body.{b}.body"
            conv = (feats, feats, k, k)
            if _shape(sd, f"{p}.0.weight") != conv or _shape(sd, f"{p}.2.weight") != conv:
                return None
            du = _shape(sd, f"{p}.3.conv_du.0.weight")
            if du is None or du[1:] != (feats, 1, 1) or _shape(sd, f"{p}.3.conv_du.2.weight") != (feats, du[0], 1, 1):
                return None
        if _shape(sd, f"body.{g}.body.{n_blocks}.weight") != (feats, feats, k, k):
            return None
    if _shape(sd, f"body.{n_groups}.weight") != (feats, feats, k, k):
        return None
    # the upsampler: convolutions at tail.0.0, tail.0.2, ... each feeding a pixel shuffle
    ups: list[int] = []
    for i in range(0, 20, 2):
        s = _shape(sd, f"tail.0.{i}.weight")
        if s is None:
            break
        r = math.isqrt(s[0] // feats) if s[0] % feats == 0 else 0
        if s[1:] != (feats, 3, 3) or r not in (2, 3) or r * r * feats != s[0]:
            return None
        ups.append(r)
    if not ups or (3 in ups and len(ups) > 1) or tw[1:] != (feats, k, k):
        return None
    up = math.prod(ups)
    down = 1
    if unshuffle_mod:
        down = math.isqrt(hw[1] // colors) if hw[1] % colors == 0 else 0
        if down not in (2, 4) or down * down * colors != hw[1] or up != 4:
            return None
    elif hw[1] != colors:
        return None
    s = up // down
    norm = "sub_mean.weight" in sd
    if norm and (colors != 3 or _shape(sd, "sub_mean.weight") != (3, 3, 1, 1)
                 or _shape(sd, "add_mean.weight") != (3, 3, 1, 1)
                 or _shape(sd, "sub_mean.bias") != (3,) or _shape(sd, "add_mean.bias") != (3,)):
        return None
    if scale is not None and scale != s:
        return None
    return Arch("rcan", s, in_channels=colors, out_channels=colors, min_size=max(4, down),
                params={"features": feats, "groups": n_groups, "blocks": n_blocks, "kernel": k,
                        "reduction": feats // du[0], "unshuffle": down, "ups": tuple(ups), "norm": norm})


def _conv(F: Any, sd: Mapping[str, np.ndarray], key: str, x: Any) -> Any:
    return F.conv(x, weight(sd, f"{key}.weight"), weight(sd, f"{key}.bias"))


def _rcab(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any) -> Any:
    r = _conv(F, sd, f"{p}.body.2", F.relu(_conv(F, sd, f"{p}.body.0", x)))
    a = F.relu(_conv(F, sd, f"{p}.body.3.conv_du.0", F.global_mean(r)))
    a = F.sigmoid(_conv(F, sd, f"{p}.body.3.conv_du.2", a))
    return F.add(F.mul(r, a), x)


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    p = arch.params
    src = x
    down, norm = p["unshuffle"], p["norm"]
    if down > 1:
        x = F.pad_to_multiple(x, down, down, "reflect")
    if norm:
        x = F.affine(x, RGB_RANGE)
        x = _conv(F, sd, "sub_mean", x)
    if down > 1:
        x = F.pixel_unshuffle(x, down, channels=arch.in_channels)
        h = _conv(F, sd, "head.1", x)
    else:
        h = _conv(F, sd, "head.0", x)
    res = h
    for g in range(p["groups"]):
        gi = res
        for b in range(p["blocks"]):
            gi = _rcab(F, sd, f"body.{g}.body.{b}", gi)
        res = F.add(_conv(F, sd, f"body.{g}.body.{p['blocks']}", gi), res)
    res = F.add(_conv(F, sd, f"body.{p['groups']}", res), h)
    y = res
    for i, r in enumerate(p["ups"]):
        y = F.pixel_shuffle(_conv(F, sd, f"tail.0.{2 * i}", y), r, channels=p["features"] * r * r)
    y = _conv(F, sd, "tail.1", y)
    if norm:
        y = F.affine(_conv(F, sd, "add_mean", y), 1.0 / RGB_RANGE)
    return F.crop_to(y, src, arch.scale) if down > 1 else y
