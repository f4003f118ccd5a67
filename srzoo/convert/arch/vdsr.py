"""VDSR (Kim et al. 2016): conv+ReLU stack on the bicubic-upscaled Y, global residual.

Keys (twtygqyy/pytorch-vdsr): ``input.weight`` (64,1,3,3),
``residual_layer.N.conv.weight`` (64,64,3,3), ``output.weight`` (1,64,3,3); no biases.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if "input.weight" not in sd or "output.weight" not in sd:
        return None
    layers = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"residual_layer\.(\d+)\.conv\.weight", k)))
    if not layers or layers != list(range(len(layers))):
        return None
    cin = sd["input.weight"].shape[1]
    return Arch("vdsr", scale or 2, in_channels=cin, out_channels=sd["output.weight"].shape[0],
                color="y" if cin == 1 else "rgb", pre_upsample="bicubic-matlab",
                params={"layers": len(layers) + 2}, scales=(2, 3, 4))


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    b = lambda k: weight(sd, k) if k in sd else None  # noqa: E731
    out = F.relu(F.conv(x, weight(sd, "input.weight"), b("input.bias")))
    for i in range(arch.params["layers"] - 2):
        out = F.relu(F.conv(out, weight(sd, f"residual_layer.{i}.conv.weight"), b(f"residual_layer.{i}.conv.bias")))
    out = F.conv(out, weight(sd, "output.weight"), b("output.bias"))
    return F.add(out, x)
