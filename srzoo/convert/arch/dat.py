"""DAT (Dual Aggregation Transformer, Chen et al., ICCV 2023): the OpenModelDB ``dat``
architecture (DAT, DAT-S, DAT-2 and DAT-light).

Keys: ``conv_first`` (3x3, in -> C), ``before_RG.1`` (LayerNorm), residual groups
``layers.i`` of blocks ``layers.i.blocks.j`` and a conv ``layers.i.conv`` (``1conv``)
or ``conv.0/2/4`` (``3conv``: 3x3 C -> C/4, LeakyReLU 0.2, 1x1, LeakyReLU 0.2, 3x3
C/4 -> C), ``norm``, ``conv_after_body`` (1conv or 3conv), then the upsampler:
``pixelshuffle`` (``conv_before_upsample.0`` + LeakyReLU 0.01, ``upsample.0/2/..``
3x3 conv + pixel shuffle by 2 per step, or one by 3, ``conv_last``) or
``pixelshuffledirect`` (``upsample.0``: one 3x3 conv and a pixel shuffle by the scale).

Block ``j`` (``x + attn(norm1(x))`` then ``x + SGFN(norm2(x))``, LayerNorms over the
channels, eps 1e-5): even ``j`` is the adaptive *spatial* attention, odd ``j`` the
adaptive *channel* attention. Both compute ``qkv`` (a Linear, here a 1x1 conv), a
depthwise 3x3 conv + BatchNorm + GELU of ``v`` (``dwconv``) and mix the two branches
with a ``channel_interaction`` (global mean, 1x1 conv, BN, GELU, 1x1) and a
``spatial_interaction`` (1x1, BN, GELU, 1x1 to one channel) through sigmoids, then
``proj``. BatchNorms are folded into the convs before them (inference statistics).

Spatial attention: half of the channels attend inside ``split_size`` (h x w) windows,
the other half inside the transposed (w x h) windows, each with ``heads/2`` heads and a
relative position bias that a small MLP (``attns.k.pos``) computes from the window
offsets: computed here once, at conversion time, as a constant. ``q``, ``k``, ``v`` are
zero-padded (bottom/right, inside the graph, amounts computed at run time) to a multiple
of the larger split side, as upstream does, so any input size runs. Blocks where upstream
shifts (``rg % 2 == 0 and (j - 2) % 4 == 0``, ``rg % 2 == 1 and j % 4 == 0``) roll the
windows by half a window and add upstream's -100 mask, rebuilt in the graph from the
padded height and width.

Channel attention: per head, L2-normalised ``q`` and ``k`` over the pixels, ``softmax(q
k^T * temperature) v``. SGFN: ``fc1``, GELU, the second half of the channels through a
LayerNorm and a depthwise 3x3 conv times the first half, ``fc2``.

The input is ``x - mean`` (DIV2K mean for 3 channels; img_range 1, as every published
DAT and spandrel), the output adds the mean back.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight
from srzoo.convert.arch import _dat

MEAN = np.array([0.4488, 0.4371, 0.4040], np.float32)
EPS_LN = 1e-5
EPS_BN = 1e-5
_NEED = ("conv_first.weight", "before_RG.1.weight", "layers.0.blocks.0.attn.qkv.weight",
         "layers.0.blocks.0.attn.attns.0.rpe_biases", "layers.0.blocks.0.ffn.sg.conv.weight", "norm.weight")
_LAYER = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.")


def _seq(sd: Mapping[str, np.ndarray], pattern: re.Pattern) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for k in sd:
        if m := pattern.match(k):
            out.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return out


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...] | None:
    return tuple(int(d) for d in sd[key].shape) if key in sd else None


def trunk(sd: Mapping[str, np.ndarray]) -> tuple[int, int, list[int], tuple[int, int]] | None:
    """What DAT and RGT (:mod:`srzoo.convert.arch.rgt`) share, read from the weights:
    (embed dim, input channels, blocks per group, split window) or None when the
    first conv, the group/block numbering or the position-bias grid do not fit."""
    w0 = _shape(sd, "conv_first.weight")
    if w0 is None or len(w0) != 4 or w0[2:] != (3, 3):
        return None
    layers = _seq(sd, _LAYER)
    if not layers or sorted(layers) != list(range(len(layers))):
        return None
    depths = []
    for i in range(len(layers)):
        if sorted(layers[i]) != list(range(len(layers[i]))):
            return None
        depths.append(len(layers[i]))
    rpe = np.asarray(sd["layers.0.blocks.0.attn.attns.0.rpe_biases"], np.float64)
    if rpe.ndim != 2 or rpe.shape[1] != 2 or rpe.shape[0] < 1:
        return None
    split = (int(rpe[-1, 0]) + 1, int(rpe[-1, 1]) + 1)
    if not all(1 <= s <= 64 for s in split) or rpe.shape[0] != (2 * split[0] - 1) * (2 * split[1] - 1):
        return None
    return w0[0], w0[1], depths, split


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if not all(k in sd for k in _NEED):
        return None
    found = trunk(sd)
    if found is None:
        return None
    dim, cin, depths, split = found
    resi = "1conv" if "conv_after_body.weight" in sd else "3conv"
    if "conv_last.weight" in sd:
        upsampler = "pixelshuffle"
        nf_shape = _shape(sd, "conv_before_upsample.0.weight")
        if nf_shape is None or len(nf_shape) != 4:
            return None
        nf = nf_shape[0]
        steps, s = [], 1
        while f"upsample.{2 * len(steps)}.weight" in sd:
            sh = _shape(sd, f"upsample.{2 * len(steps)}.weight")
            if sh not in ((4 * nf, nf, 3, 3), (9 * nf, nf, 3, 3)) or len(steps) > 4:
                return None
            r = 2 if sh[0] == 4 * nf else 3
            steps.append(r)
            s *= r
        if 3 in steps and len(steps) > 1:
            return None
        if _shape(sd, "conv_last.weight") != (cin, nf, 3, 3):
            return None
    elif "upsample.0.weight" in sd:
        upsampler = "pixelshuffledirect"
        sh = _shape(sd, "upsample.0.weight")
        if sh is None or len(sh) != 4 or sh[1] != dim or sh[0] % cin:
            return None
        s = math.isqrt(sh[0] // cin)
        if s < 1 or s * s * cin != sh[0]:
            return None
        nf = dim
    else:
        return None
    if scale is not None and scale != s:
        return None
    hid = _shape(sd, "layers.0.blocks.0.ffn.fc1.weight")
    if hid is None or hid[1] != dim or hid[0] % 2:
        return None
    heads = []  # per group: the channel blocks' count (spandrel's num_heads), else twice the spatial one
    for i, d in enumerate(depths):
        p = f"layers.{i}.blocks"
        h_ch = _shape(sd, f"{p}.1.attn.temperature") if d > 1 else None
        h_sp = _shape(sd, f"{p}.0.attn.attns.0.pos.pos3.2.weight")
        if h_sp is None or len(h_sp) != 2:
            return None
        heads.append(h_ch[0] if h_ch else 2 * h_sp[0])
    params: dict[str, Any] = {
        "dim": dim, "depths": depths, "heads": heads, "split": list(split), "ffn": hid[0],
        "resi": resi, "upsampler": upsampler, "num_feat": nf, "qkv_bias": "layers.0.blocks.0.attn.qkv.bias" in sd}
    if not _dat.shapes_ok(sd, cin, params):
        return None
    return Arch("dat", s, in_channels=cin, out_channels=cin, min_size=8, params=params)


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr = arch.params
    mean = MEAN if arch.in_channels == 3 else np.zeros(arch.in_channels, np.float32)
    x = F.affine(x, 1.0, -mean)
    feat = _dat.conv(F, sd, "conv_first", x)
    h = F.layer_norm_channels(feat, weight(sd, "before_RG.1.weight"), weight(sd, "before_RG.1.bias"), EPS_LN)
    for i, depth in enumerate(pr["depths"]):
        res = h
        for j in range(depth):
            h = _dat.block(F, sd, pr, i, j, h)
        h = F.add(res, _dat.resi(F, sd, f"layers.{i}.conv", pr["resi"], h))
    h = F.layer_norm_channels(h, weight(sd, "norm.weight"), weight(sd, "norm.bias"), EPS_LN)
    h = F.add(_dat.resi(F, sd, "conv_after_body", pr["resi"], h), feat)
    if pr["upsampler"] == "pixelshuffle":
        h = F.lrelu(_dat.conv(F, sd, "conv_before_upsample.0", h), 0.01)
        k = 0
        while f"upsample.{k}.weight" in sd:
            w = weight(sd, f"upsample.{k}.weight")
            r = 2 if w.shape[0] == 4 * w.shape[1] else 3
            h = F.pixel_shuffle(_dat.conv(F, sd, f"upsample.{k}", h), r, channels=int(w.shape[0]))
            k += 2
        h = _dat.conv(F, sd, "conv_last", h)
    else:
        w = weight(sd, "upsample.0.weight")
        h = F.pixel_shuffle(_dat.conv(F, sd, "upsample.0", h), arch.scale, channels=int(w.shape[0]))
    return F.affine(h, 1.0, mean)
