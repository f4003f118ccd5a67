"""RFDN (Liu et al. 2020, residual feature distillation; AIM 2020 efficient SR).

Keys (njulj/RFDN): ``fea_conv``, ``B1..Bn`` (``cK_d``, ``cK_r``, ``c4``, ``c5``,
``esa.*``), ``c.0`` (1x1 + LeakyReLU 0.05), ``LR_conv``, ``upsampler.0``
(3x3 to ``out * scale**2``, then pixel shuffle). Input RGB in [0,1].
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight
from srzoo.convert.onnxbuild import OPSET_RESIZE_LIKE

SLOPE = 0.05


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    need = ("fea_conv.weight", "c.0.weight", "LR_conv.weight", "upsampler.0.weight", "B1.esa.conv1.weight")
    if not all(k in sd for k in need):
        return None
    blocks = len({k.split(".")[0] for k in sd if re.fullmatch(r"B\d+\.c5\.weight", k)})
    cin = sd["fea_conv.weight"].shape[1]
    up = int(round(math.sqrt(sd["upsampler.0.weight"].shape[0] / cin)))
    if up * up * cin != sd["upsampler.0.weight"].shape[0]:
        return None
    # ESA resizes to its input's size (resize_bilinear_like): opset 12, see there
    return Arch("rfdn", up, in_channels=cin, out_channels=cin, min_size=16, opset=OPSET_RESIZE_LIKE,
                params={"blocks": blocks, "features": sd["fea_conv.weight"].shape[0]})


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    c = lambda k, t, **kw: F.conv(t, weight(sd, k + ".weight"), weight(sd, k + ".bias"), **kw)  # noqa: E731
    act = lambda t: F.lrelu(t, SLOPE)  # noqa: E731

    def esa(p: str, t: Any) -> Any:
        c1_ = c(p + ".conv1", t)
        c1 = c(p + ".conv2", c1_, stride=2, pad=0)
        v = F.relu(c(p + ".conv_max", F.maxpool(c1, 7, 3)))
        c3 = c(p + ".conv3_", F.relu(c(p + ".conv3", v)))
        c3 = F.resize_bilinear_like(c3, t)
        m = F.sigmoid(c(p + ".conv4", F.add(c3, c(p + ".conv_f", c1_))))
        return F.mul(t, m)

    def rfdb(p: str, t: Any) -> Any:
        d1 = act(c(p + ".c1_d", t))
        r1 = act(F.add(c(p + ".c1_r", t), t))
        d2 = act(c(p + ".c2_d", r1))
        r2 = act(F.add(c(p + ".c2_r", r1), r1))
        d3 = act(c(p + ".c3_d", r2))
        r3 = act(F.add(c(p + ".c3_r", r2), r2))
        r4 = act(c(p + ".c4", r3))
        return esa(p + ".esa", c(p + ".c5", F.cat([d1, d2, d3, r4])))

    fea = c("fea_conv", x)
    outs, t = [], fea
    for i in range(1, arch.params["blocks"] + 1):
        t = rfdb(f"B{i}", t)
        outs.append(t)
    b = act(c("c.0", F.cat(outs)))
    lr = F.add(c("LR_conv", b), fea)
    return F.pixel_shuffle(c("upsampler.0", lr), arch.scale, channels=sd["upsampler.0.weight"].shape[0])
