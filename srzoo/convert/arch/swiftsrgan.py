"""Swift-SRGAN (Krishnan and Koushik 2021): the OpenModelDB ``swift-srgan`` architecture's
generator, as spandrel's ``SwiftSRGAN`` reads it.

Every convolution is depthwise-separable (``<p>.depthwise``, groups = channels, then
``<p>.pointwise``, 1x1). Keys: ``initial.cnn`` (9x9, in -> nf, biases) and PReLU
``initial.act``; ``residual.<i>`` blocks of ``block1`` (3x3 separable, BatchNorm ``bn``,
PReLU ``act``) and ``block2`` (the same without the activation; its unused ``act`` is
stored anyway) plus the skip; ``convblock`` (3x3, BatchNorm, no activation) plus
``initial``'s output; ``upsampler.<j>`` (3x3 separable nf -> 4 nf, pixel shuffle 2, PReLU):
one per factor of 2; ``final_conv`` (9x9, nf -> in); output ``(tanh(y) + 1) / 2``.

BatchNorm (inference: running mean and variance, eps 1e-5) is folded into the pointwise
convolution before it at conversion time. Scale = 2 ** (number of upsampler blocks);
no padding (every conv is "same"), no input normalisation.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight

EPS_BN = 1e-5
_RES = re.compile(r"^residual\.(\d+)\.block1\.cnn\.depthwise\.weight$")
_UP = re.compile(r"^upsampler\.(\d+)\.conv\.depthwise\.weight$")


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...] | None:
    v = sd.get(key)
    return None if v is None else tuple(int(d) for d in np.shape(v))


def _separable(p: str, cin: int, cout: int, k: int, bias: bool) -> dict[str, tuple[int, ...]]:
    d = {f"{p}.depthwise.weight": (cin, 1, k, k), f"{p}.pointwise.weight": (cout, cin, 1, 1)}
    if bias:
        d.update({f"{p}.depthwise.bias": (cin,), f"{p}.pointwise.bias": (cout,)})
    return d


def _bn(p: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{p}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")}


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    dw = _shape(sd, "initial.cnn.depthwise.weight")
    pw = _shape(sd, "initial.cnn.pointwise.weight")
    if dw is None or pw is None or len(dw) != 4 or len(pw) != 4 or "final_conv.pointwise.weight" not in sd:
        return None
    cin, nf = dw[0], pw[0]
    blocks = sorted(int(m.group(1)) for k in sd if (m := _RES.match(k)))
    ups = sorted(int(m.group(1)) for k in sd if (m := _UP.match(k)))
    if blocks != list(range(len(blocks))) or ups != list(range(len(ups))) or not blocks:
        return None
    s = 2 ** len(ups)
    if scale is not None and scale != s:
        return None
    want = {**_separable("initial.cnn", cin, nf, 9, True), "initial.act.weight": (nf,),
            **_separable("convblock.cnn", nf, nf, 3, False), **_bn("convblock.bn", nf),
            **_separable("final_conv", nf, cin, 9, True)}
    for i in blocks:
        p = f"residual.{i}"
        want.update({**_separable(f"{p}.block1.cnn", nf, nf, 3, False), **_bn(f"{p}.block1.bn", nf),
                     f"{p}.block1.act.weight": (nf,),
                     **_separable(f"{p}.block2.cnn", nf, nf, 3, False), **_bn(f"{p}.block2.bn", nf)})
    for j in ups:
        want.update({**_separable(f"upsampler.{j}.conv", nf, 4 * nf, 3, True), f"upsampler.{j}.act.weight": (nf,)})
    if any(_shape(sd, k) != v for k, v in want.items()):
        return None
    return Arch("swiftsrgan", s, in_channels=cin, out_channels=cin, min_size=4,
                params={"features": nf, "blocks": len(blocks)})


def _sep(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, bn: str | None = None) -> Any:
    """``pointwise(depthwise(x))``, with the BatchNorm ``bn`` (if given) folded into the pointwise conv."""
    dwb = f"{p}.depthwise.bias"
    c = int(sd[f"{p}.depthwise.weight"].shape[0])
    h = F.conv(x, weight(sd, f"{p}.depthwise.weight"), weight(sd, dwb) if dwb in sd else None, groups=c)
    w = weight(sd, f"{p}.pointwise.weight").astype(np.float64)
    pb = f"{p}.pointwise.bias"
    b = weight(sd, pb).astype(np.float64) if pb in sd else np.zeros(w.shape[0])
    if bn is not None:
        k = weight(sd, f"{bn}.weight").astype(np.float64) / np.sqrt(weight(sd, f"{bn}.running_var") + EPS_BN)
        w = w * k[:, None, None, None]
        b = (b - weight(sd, f"{bn}.running_mean")) * k + weight(sd, f"{bn}.bias")
    return F.conv(h, w.astype(np.float32), b.astype(np.float32))


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    initial = F.prelu(_sep(F, sd, "initial.cnn", x), weight(sd, "initial.act.weight"))
    h = initial
    for i in range(arch.params["blocks"]):
        p = f"residual.{i}"
        r = F.prelu(_sep(F, sd, f"{p}.block1.cnn", h, f"{p}.block1.bn"), weight(sd, f"{p}.block1.act.weight"))
        h = F.add(_sep(F, sd, f"{p}.block2.cnn", r, f"{p}.block2.bn"), h)
    h = F.add(_sep(F, sd, "convblock.cnn", h, "convblock.bn"), initial)
    nf = arch.params["features"]
    j = 0
    while f"upsampler.{j}.conv.depthwise.weight" in sd:
        h = F.pixel_shuffle(_sep(F, sd, f"upsampler.{j}.conv", h), 2, channels=4 * nf)
        h = F.prelu(h, weight(sd, f"upsampler.{j}.act.weight"))
        j += 1
    return F.affine(F.tanh(_sep(F, sd, "final_conv", x=h)), 0.5, 0.5)
