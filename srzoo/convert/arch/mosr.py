"""MoSR (Mamba Out Super-Resolution, by the traiNNer-redux community): the OpenModelDB
``mosr`` architecture, as spandrel's ``MoSR`` reads it.

Keys: ``gblocks.0`` (3x3 conv, in -> dim), then ``gblocks.1`` .. ``gblocks.n`` gated CNN
blocks (MambaOut's unit: channels-first LayerNorm ``norm`` (eps 1e-6), ``fc1`` a 3x3 conv
dim -> 2 * hidden split into ``g`` (hidden), ``i`` (hidden - conv) and ``c`` (conv
channels), ``conv`` a depthwise k x k conv on ``c``, ``fc2`` a 3x3 conv hidden -> dim;
``y = mish(fc2(mish(g) * cat(i, conv(c)))) + x - 0.5``), then ``gblocks.n+1`` (3x3, dim
-> 2 dim), Mish, ``gblocks.n+3`` (3x3, 2 dim -> dim), Mish, ``gblocks.n+5`` (1x1).
``shortcut``: ``block.0`` / ``block.2`` (3x3 convs with Mish) plus ``conv11`` (1x1).
Body: ``gblocks(x) + shortcut(x) - 0.5``.

Upsamplers, read from the keys:

- ``ps``: ``upsampler.0`` (3x3 conv, dim -> in * s^2) and a pixel shuffle;
- ``gps`` (geo-ensemble pixel shuffle): ``upsampler.in_to_k`` (k x k, dim -> 8 * s^2 * in),
  whose 8 channel groups are averaged before the shuffle. The mean of 8 convolutions is
  one convolution with the mean kernel and bias, folded here at conversion time;
- ``dys``: DySample (``upsampler.offset``, ``scope``, ``init_pos``, ``end_conv``; 4
  groups, spandrel's and MoSR's only setting), the ``dysample`` operation RealPLKSR uses.

Expansion ratio, conv ratio and kernel size come from the shapes. No input
normalisation, no padding (every conv is "same"): any input size runs.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight

EPS = 1e-6           # MoSR's LayerNorm
GROUPS = 4           # its DySample's groups (not stored apart from the scale)
_BLOCK = re.compile(r"^gblocks\.(\d+)\.norm\.weight$")


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...] | None:
    v = sd.get(key)
    return None if v is None else tuple(int(d) for d in np.shape(v))


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    first = _shape(sd, "gblocks.0.weight")
    fc1 = _shape(sd, "gblocks.1.fc1.weight")
    conv = _shape(sd, "gblocks.1.conv.weight")
    if first is None or fc1 is None or conv is None or len(first) != 4 or len(fc1) != 4 or len(conv) != 4:
        return None
    dim, cin = first[0], first[1]
    blocks = sorted(int(m.group(1)) for k in sd if (m := _BLOCK.match(k)))
    n = len(blocks)
    if n < 1 or blocks != list(range(1, n + 1)) or fc1[0] % 2:
        return None
    hidden, cc, k = fc1[0] // 2, conv[0], conv[2]
    if not (0 < cc <= hidden and k % 2 == 1):
        return None
    want: dict[str, tuple[int, ...]] = {"gblocks.0.bias": (dim,)}
    for i in range(1, n + 1):
        p = f"gblocks.{i}"
        want.update({f"{p}.norm.weight": (dim,), f"{p}.norm.bias": (dim,), f"{p}.fc1.weight": (2 * hidden, dim, 3, 3),
                     f"{p}.fc1.bias": (2 * hidden,), f"{p}.conv.weight": (cc, 1, k, k), f"{p}.conv.bias": (cc,),
                     f"{p}.fc2.weight": (dim, hidden, 3, 3), f"{p}.fc2.bias": (dim,)})
    want.update({f"gblocks.{n + 1}.weight": (2 * dim, dim, 3, 3), f"gblocks.{n + 1}.bias": (2 * dim,),
                 f"gblocks.{n + 3}.weight": (dim, 2 * dim, 3, 3), f"gblocks.{n + 3}.bias": (dim,),
                 f"gblocks.{n + 5}.weight": (dim, dim, 1, 1), f"gblocks.{n + 5}.bias": (dim,),
                 "shortcut.block.0.weight": (dim, cin, 3, 3), "shortcut.block.0.bias": (dim,),
                 "shortcut.block.2.weight": (dim, dim, 3, 3), "shortcut.block.2.bias": (dim,),
                 "shortcut.conv11.weight": (dim, cin, 1, 1), "shortcut.conv11.bias": (dim,)})
    cout = cin
    if "upsampler.init_pos" in sd:
        upsampler = "dys"
        off = _shape(sd, "upsampler.offset.weight")
        end = _shape(sd, "upsampler.end_conv.weight")
        if off is None or end is None or off[0] % (2 * GROUPS) or dim % GROUPS:
            return None
        s, cout = math.isqrt(off[0] // (2 * GROUPS)), end[0]
        want.update({"upsampler.offset.weight": (2 * GROUPS * s * s, dim, 1, 1),
                     "upsampler.offset.bias": (2 * GROUPS * s * s,),
                     "upsampler.scope.weight": (2 * GROUPS * s * s, dim, 1, 1),
                     "upsampler.init_pos": (1, 2 * GROUPS * s * s, 1, 1),
                     "upsampler.end_conv.weight": (cout, dim, 1, 1), "upsampler.end_conv.bias": (cout,)})
    elif "upsampler.in_to_k.weight" in sd:
        upsampler = "gps"
        w = _shape(sd, "upsampler.in_to_k.weight")
        if w is None or len(w) != 4 or w[0] % (8 * cin):
            return None
        s = math.isqrt(w[0] // (8 * cin))
        want.update({"upsampler.in_to_k.weight": (8 * s * s * cin, dim, w[2], w[2]),
                     "upsampler.in_to_k.bias": (8 * s * s * cin,)})
    else:
        upsampler = "ps"
        w = _shape(sd, "upsampler.0.weight")
        if w is None or len(w) != 4 or w[0] % cin:
            return None
        s = math.isqrt(w[0] // cin)
        want.update({"upsampler.0.weight": (cin * s * s, dim, 3, 3), "upsampler.0.bias": (cin * s * s,)})
    if s < 1 or (scale is not None and scale != s):
        return None
    if any(_shape(sd, key) != shape for key, shape in want.items()):
        return None
    return Arch("mosr", s, in_channels=cin, out_channels=cout, min_size=4,
                params={"dim": dim, "blocks": n, "hidden": hidden, "conv_channels": cc, "kernel": k,
                        "upsampler": upsampler})


def _conv(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, **kw: Any) -> Any:
    b = f"{p}.bias"
    return F.conv(x, weight(sd, f"{p}.weight"), weight(sd, b) if b in sd else None, **kw)


def _block(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, i: int, x: Any) -> Any:
    p, pr = f"gblocks.{i}", arch.params
    hidden, cc = pr["hidden"], pr["conv_channels"]
    h = F.layer_norm_channels(x, weight(sd, f"{p}.norm.weight"), weight(sd, f"{p}.norm.bias"), EPS)
    h = _conv(F, sd, f"{p}.fc1", h)
    g, c = F.channels(h, 0, hidden), F.channels(h, 2 * hidden - cc, 2 * hidden)
    c = _conv(F, sd, f"{p}.conv", c, groups=cc)
    ic = F.cat([F.channels(h, hidden, 2 * hidden - cc), c]) if cc < hidden else c
    y = F.mish(_conv(F, sd, f"{p}.fc2", F.mul(F.mish(g), ic)))
    return F.add(y, F.affine(x, 1.0, -0.5))


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr, s, n = arch.params, arch.scale, arch.params["blocks"]
    h = _conv(F, sd, "gblocks.0", x)
    for i in range(1, n + 1):
        h = _block(F, sd, arch, i, h)
    h = F.mish(_conv(F, sd, f"gblocks.{n + 1}", h))
    h = F.mish(_conv(F, sd, f"gblocks.{n + 3}", h))
    h = _conv(F, sd, f"gblocks.{n + 5}", h)
    sc = F.mish(_conv(F, sd, "shortcut.block.2", F.mish(_conv(F, sd, "shortcut.block.0", x))))
    sc = F.add(sc, _conv(F, sd, "shortcut.conv11", x))
    h = F.add(h, F.affine(sc, 1.0, -0.5))
    if pr["upsampler"] == "ps":
        return F.pixel_shuffle(_conv(F, sd, "upsampler.0", h), s, channels=arch.in_channels * s * s)
    if pr["upsampler"] == "gps":
        # mean over 8 groups of s*s*C channels of one conv = one conv with the mean kernel
        w = weight(sd, "upsampler.in_to_k.weight").astype(np.float64)
        b = weight(sd, "upsampler.in_to_k.bias").astype(np.float64)
        w = w.reshape(8, -1, *w.shape[1:]).mean(0).astype(np.float32)
        b = b.reshape(8, -1).mean(0).astype(np.float32)
        return F.pixel_shuffle(F.conv(h, w, b), s, channels=arch.in_channels * s * s)
    init = np.asarray(sd["upsampler.init_pos"], np.float32).reshape(-1)
    off = F.mul(_conv(F, sd, "upsampler.offset", h), F.sigmoid(_conv(F, sd, "upsampler.scope", h)))
    off = F.affine(off, 0.5, init)
    y = F.dysample(h, off, s, GROUPS, pr["dim"])
    return _conv(F, sd, "upsampler.end_conv", y)
