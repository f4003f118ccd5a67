"""SAFMN (Spatially-Adaptive Feature Modulation Network, Sun et al., ICCV 2023) and
SAFMN-BCIE (its NTIRE 2024 compressed-image variant), as spandrel 0.4.2 loads them.

SAFMN keys: ``to_feat`` (3x3 conv from RGB), ``feats.N`` attention blocks, ``to_img.0``
(3x3 conv to ``3 * s^2`` channels, then a pixel shuffle by the scale ``s``).
SAFMN-BCIE keys: ``to_feat.1`` (a pixel unshuffle by ``u`` then a 3x3 conv), ``feats.N``
groups of ``feats.N.layers.M`` attention blocks closed by ``feats.N.conv`` and a skip,
``to_img.0`` (conv to ``dim * u^2``, pixel shuffle by ``u``) and ``to_img.2`` (conv to
RGB): a x1 network working at ``1/u`` resolution.

An attention block: ``x + SAFM(LN1(x))`` then ``x + CCM(LN2(x))`` with channels-first
LayerNorms (eps 1e-6). SAFM splits its input into four channel chunks: the first goes
through a depthwise 3x3 conv, chunk ``i`` through an adaptive max pool to ``1/2^i`` of the
size, a depthwise 3x3 conv and nearest upsampling back; a 1x1 ``aggr`` conv of the four,
GELU, times the SAFM input. CCM: 3x3 conv, GELU, 1x1 conv. Both networks end with the
trunk's skip from ``to_feat``.

Sizes: spandrel runs these networks (its ``ImageModelDescriptor``, what chaiNNer and
ComfyUI call) on inputs reflect-padded at the bottom and right to a multiple of 8
(SAFMN) or 16 (SAFMN-BCIE), and crops the output back. The graph does the same padding
and crop itself, so the adaptive pools are exact 2^i x 2^i max pools, the model runs at
any size (tiles included) and gives spandrel's result. (For a BCIE network with
unshuffle factor above 2 the multiple is ``lcm(16, 8u)`` so the pools stay exact; spandrel
pads to 16 there.)
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight

LEVELS = 4
EPS = 1e-6
_MAX_INDEX = 1000


def _seq(sd: Mapping[str, np.ndarray], prefix: str) -> list[int]:
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for k in sd if (m := pat.match(k)) and int(m.group(1)) < _MAX_INDEX})


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...] | None:
    v = sd.get(key)
    return tuple(int(d) for d in v.shape) if v is not None else None


def _block_ok(sd: Mapping[str, np.ndarray], p: str, dim: int, hidden: int) -> bool:
    c = dim // LEVELS
    want = {f"{p}.norm1.weight": (dim,), f"{p}.norm1.bias": (dim,), f"{p}.norm2.weight": (dim,),
            f"{p}.norm2.bias": (dim,), f"{p}.safm.aggr.weight": (dim, dim, 1, 1),
            f"{p}.ccm.ccm.0.weight": (hidden, dim, 3, 3), f"{p}.ccm.ccm.2.weight": (dim, hidden, 1, 1),
            **{f"{p}.safm.mfr.{i}.weight": (c, 1, 3, 3) for i in range(LEVELS)}}
    return all(_shape(sd, k) == s for k, s in want.items())


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if "to_feat.weight" in sd and "feats.0.safm.aggr.weight" in sd:
        variant = "safmn"
        fw = _shape(sd, "to_feat.weight")
        if fw is None or len(fw) != 4 or fw[1:] != (3, 3, 3):
            return None
        dim = fw[0]
        blocks = _seq(sd, "feats")
        prefixes = [f"feats.{b}" for b in blocks]
        groups, layers = len(blocks), 0
    elif "to_feat.1.weight" in sd and "feats.0.layers.0.safm.aggr.weight" in sd:
        variant = "safmn-bcie"
        fw = _shape(sd, "to_feat.1.weight")
        if fw is None or len(fw) != 4 or fw[2:] != (3, 3):
            return None
        dim = fw[0]
        blocks = _seq(sd, "feats")
        layer_ids = _seq(sd, "feats.0.layers")
        groups, layers = len(blocks), len(layer_ids)
        if not layer_ids or layer_ids != list(range(layers)):
            return None
        prefixes = [f"feats.{b}.layers.{m}" for b in blocks for m in layer_ids]
        if any(_shape(sd, f"feats.{b}.conv.weight") != (dim, dim, 3, 3) for b in blocks):
            return None
    else:
        return None
    if not blocks or blocks != list(range(len(blocks))) or dim % LEVELS:
        return None
    hw = _shape(sd, prefixes[0] + ".ccm.ccm.0.weight")
    if hw is None:
        return None
    hidden = hw[0]
    if not all(_block_ok(sd, p, dim, hidden) for p in prefixes):
        return None
    tw = _shape(sd, "to_img.0.weight")
    if tw is None or len(tw) != 4 or tw[1:] != (dim, 3, 3):
        return None
    if variant == "safmn":
        s = math.isqrt(tw[0] // 3)
        if s < 1 or 3 * s * s != tw[0]:
            return None
        u, multiple = 1, 2 ** (LEVELS - 1)
    else:
        u = math.isqrt(fw[1] // 3)
        if u < 1 or 3 * u * u != fw[1] or tw[0] != dim * u * u or _shape(sd, "to_img.2.weight") != (3, dim, 3, 3):
            return None
        s, multiple = 1, math.lcm(16, 2 ** (LEVELS - 1) * u)
    if scale is not None and scale != s:
        return None
    return Arch(variant, s, in_channels=3, out_channels=3, min_size=multiple,
                params={"dim": dim, "blocks": groups, "layers": layers, "hidden": hidden, "unshuffle": u,
                        "multiple": multiple})


def _conv(F: Any, sd: Mapping[str, np.ndarray], key: str, x: Any, groups: int = 1) -> Any:
    return F.conv(x, weight(sd, f"{key}.weight"), weight(sd, f"{key}.bias"), groups=groups)


def _safm(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, dim: int) -> Any:
    c = dim // LEVELS
    out = []
    for i in range(LEVELS):
        s = F.channels(x, i * c, (i + 1) * c)
        if i == 0:
            out.append(_conv(F, sd, f"{p}.mfr.0", s, groups=c))
        else:
            d = 2 ** i  # the input is a multiple of 2^(LEVELS-1): the adaptive pool is this max pool
            s = _conv(F, sd, f"{p}.mfr.{i}", F.maxpool(s, d, d), groups=c)
            out.append(F.up_nearest(s, d))
    return F.mul(F.gelu(_conv(F, sd, f"{p}.aggr", F.cat(out))), x)


def _block(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, dim: int) -> Any:
    n1 = F.layer_norm_channels(x, weight(sd, f"{p}.norm1.weight"), weight(sd, f"{p}.norm1.bias"), EPS)
    x = F.add(_safm(F, sd, f"{p}.safm", n1, dim), x)
    n2 = F.layer_norm_channels(x, weight(sd, f"{p}.norm2.weight"), weight(sd, f"{p}.norm2.bias"), EPS)
    h = F.gelu(_conv(F, sd, f"{p}.ccm.ccm.0", n2))
    return F.add(_conv(F, sd, f"{p}.ccm.ccm.2", h), x)


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    p = arch.params
    dim, u = p["dim"], p["unshuffle"]
    src = x
    x = F.pad_to_multiple(x, p["multiple"], p["multiple"], "reflect")
    if arch.name == "safmn":
        f = _conv(F, sd, "to_feat", x)
        h = f
        for b in range(p["blocks"]):
            h = _block(F, sd, f"feats.{b}", h, dim)
        y = _conv(F, sd, "to_img.0", F.add(h, f))
        y = F.pixel_shuffle(y, arch.scale, channels=3 * arch.scale ** 2)
    else:
        if u > 1:
            x = F.pixel_unshuffle(x, u, channels=3)
        f = _conv(F, sd, "to_feat.1", x)
        h = f
        for b in range(p["blocks"]):
            g = h
            for m in range(p["layers"]):
                g = _block(F, sd, f"feats.{b}.layers.{m}", g, dim)
            h = F.add(_conv(F, sd, f"feats.{b}.conv", g), h)
        y = _conv(F, sd, "to_img.0", F.add(h, f))
        if u > 1:
            y = F.pixel_shuffle(y, u, channels=dim * u * u)
        y = _conv(F, sd, "to_img.2", y)
    return F.crop_to(y, src, arch.scale)
