"""SPAN (Swift Parameter-free Attention Network, Wan et al., CVPRW 2024): the
OpenModelDB ``span`` architecture.

Keys: ``conv_1`` and ``conv_2`` and, in ``block_1`` .. ``block_6``, ``c1_r``,
``c2_r``, ``c3_r`` are re-parameterisable 3x3 convolutions, each stored as a 1x1
skip ``sk``, a 1x1 -> 3x3 (unpadded) -> 1x1 sequence ``conv.0/1/2`` and the
merged ``eval_conv``; ``conv_cat`` (1x1 over four concatenated feature maps)
and ``upsampler.0`` (3x3 conv then pixel shuffle). The merged 3x3 kernel is
computed here from ``sk`` and ``conv.*`` (what the network itself does on every
forward pass), never taken from a possibly stale ``eval_conv``.

Each block: ``out1 = silu(c1(x))``, ``out2 = c2(out1)``, ``out3 = c3(silu(out2))``,
``att = sigmoid(out3) - 0.5``, ``y = (out3 + x) * att``; it also hands ``out1`` on
(the reference's in-place SiLU makes that the activated map). The input is normalised
as ``(x - mean) * 255`` with mean (0.4488, 0.4371, 0.4040) unless the state dict
holds ``no_norm``; the output is not de-normalised.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight

MEAN = np.array([0.4488, 0.4371, 0.4040], np.float32)
IMG_RANGE = 255.0
_NEED = ("conv_1.sk.weight", "block_1.c1_r.sk.weight", "block_1.c3_r.conv.1.weight", "block_6.c3_r.sk.weight",
         "conv_cat.weight", "conv_2.sk.weight", "upsampler.0.weight")


def merged(sd: Mapping[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """The single 3x3 kernel and bias equal to ``sk + conv.2(conv.1(conv.0(x)))`` (padding 1)."""
    w1 = weight(sd, f"{prefix}.conv.0.weight")[:, :, 0, 0]       # (m, cin)
    b1 = weight(sd, f"{prefix}.conv.0.bias")
    w2 = weight(sd, f"{prefix}.conv.1.weight")                   # (n, m, 3, 3)
    b2 = weight(sd, f"{prefix}.conv.1.bias")
    w3 = weight(sd, f"{prefix}.conv.2.weight")[:, :, 0, 0]       # (cout, n)
    b3 = weight(sd, f"{prefix}.conv.2.bias")
    w12 = np.einsum("nmyx,mi->niyx", w2.astype(np.float64), w1.astype(np.float64))
    b12 = np.einsum("nmyx,m->n", w2.astype(np.float64), b1.astype(np.float64)) + b2
    w = np.einsum("on,niyx->oiyx", w3.astype(np.float64), w12)
    b = w3.astype(np.float64) @ b12 + b3
    w[:, :, 1, 1] += weight(sd, f"{prefix}.sk.weight")[:, :, 0, 0]
    b = b + weight(sd, f"{prefix}.sk.bias")
    return w.astype(np.float32), b.astype(np.float32)


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if not all(k in sd for k in _NEED):
        return None
    cin = int(sd["conv_1.sk.weight"].shape[1])
    feat = int(sd["conv_1.sk.weight"].shape[0])
    up_ch = int(sd["upsampler.0.weight"].shape[0])
    # the pixel shuffle gives out_ch * s^2 channels; out_ch is the input's channel count here
    s = int(round(math.sqrt(up_ch / cin)))
    if s < 1 or s * s * cin != up_ch:
        return None
    if scale is not None and scale != s:
        return None
    norm = "no_norm" not in sd
    return Arch("span", s, in_channels=cin, out_channels=cin, min_size=4,
                params={"features": feat, "norm": norm})


def _conv3xc(F: Any, sd: Mapping[str, np.ndarray], prefix: str, x: Any) -> Any:
    w, b = merged(sd, prefix)
    return F.conv(x, w, b)


def _silu(F: Any, x: Any) -> Any:
    return F.mul(x, F.sigmoid(x))


def _block(F: Any, sd: Mapping[str, np.ndarray], prefix: str, x: Any) -> tuple[Any, Any]:
    out1 = _silu(F, _conv3xc(F, sd, f"{prefix}.c1_r", x))
    out2 = _conv3xc(F, sd, f"{prefix}.c2_r", out1)
    out3 = _conv3xc(F, sd, f"{prefix}.c3_r", _silu(F, out2))
    att = F.affine(F.sigmoid(out3), 1.0, -0.5)
    # the reference applies SiLU in place, so the second output (used by the last block's
    # concatenation) is silu(c1_r(x)), not c1_r(x)
    return F.mul(F.add(out3, x), att), out1


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    if arch.params.get("norm", True):
        x = F.affine(x, IMG_RANGE, -MEAN[: arch.in_channels] * IMG_RANGE)
    feat = _conv3xc(F, sd, "conv_1", x)
    b1, _ = _block(F, sd, "block_1", feat)
    h = b1
    for i in (2, 3, 4, 5):
        h, _ = _block(F, sd, f"block_{i}", h)
    b6, b5_2 = _block(F, sd, "block_6", h)
    b6 = _conv3xc(F, sd, "conv_2", b6)
    out = F.conv(F.cat([feat, b6, b1, b5_2]), weight(sd, "conv_cat.weight"), weight(sd, "conv_cat.bias"))
    out = F.conv(out, weight(sd, "upsampler.0.weight"), weight(sd, "upsampler.0.bias"))
    return F.pixel_shuffle(out, arch.scale, channels=sd["upsampler.0.weight"].shape[0])
