"""SRVGGNetCompact (Real-ESRGAN's realesr-general-x4v3, realesr-animevideov3).

Keys ``body.N.weight``: 4-D convolutions at even N, 1-D PReLU slopes at odd N;
the last convolution gives ``out * scale**2`` channels for the pixel shuffle;
the nearest-upscaled input is added to the result.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    idx = {}
    for k in sd:
        m = re.fullmatch(r"body\.(\d+)\.(weight|bias)", k)
        if m is None:
            return None
        idx.setdefault(int(m.group(1)), set()).add(m.group(2))
    if not idx or sorted(idx) != list(range(len(idx))):
        return None
    convs = [i for i in idx if sd[f"body.{i}.weight"].ndim == 4]
    prelus = [i for i in idx if sd[f"body.{i}.weight"].ndim == 1]
    if convs != list(range(0, len(idx), 2)) or prelus != list(range(1, len(idx) - 1, 2)):
        return None
    cin = sd["body.0.weight"].shape[1]
    last = sd[f"body.{convs[-1]}.weight"].shape[0]
    up = int(round(math.sqrt(last / cin)))
    if up * up * cin != last:
        return None
    return Arch("srvgg", up, in_channels=cin, out_channels=cin,
                params={"convs": len(convs), "features": sd["body.0.weight"].shape[0]})


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    n = 2 * arch.params["convs"] - 1
    out = x
    for i in range(n):
        w = weight(sd, f"body.{i}.weight")
        if w.ndim == 4:
            out = F.conv(out, w, weight(sd, f"body.{i}.bias"))
        else:
            out = F.prelu(out, w)
    out = F.pixel_shuffle(out, arch.scale, channels=arch.out_channels * arch.scale ** 2)
    return F.add(out, F.up_nearest(x, arch.scale))
