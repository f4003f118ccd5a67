"""RRDBNet (ESRGAN, Real-ESRGAN x4plus / x2plus / x4plus_anime_6B).

New key layout (BasicSR): ``conv_first``, ``body.N.rdbK.convJ``, ``conv_body``,
``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``. Old layout (the ESRGAN
paper's files): ``model.0``, ``model.1.sub.N.RDBK.convJ.0``, ``model.1.sub.<nb>``,
then the upsampling, HR and last convolutions at increasing ``model.M``.
ESRGAN+ (nESRGAN+, OpenModelDB ``esrgan+``) adds a bias-free 1x1 convolution to each
dense block (``...RDBK.conv1x1``): its second activation gets ``conv1x1(x)`` added and
its fourth the second's; the Gaussian noise it trains with is off at inference.
The input channels of the first convolution give the pixel-unshuffle
(3: none, x4; 12: by 2, x2; 48: by 4, x1); the number of upsampling
convolutions gives the scale of old-layout files.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight


def _from_old(sd: Mapping[str, np.ndarray]) -> "OrderedDict[str, np.ndarray] | None":
    if "model.0.weight" not in sd:
        return None
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    tail = sorted({int(m.group(1)) for k in sd if (m := re.fullmatch(r"model\.(\d+)\.(weight|bias)", k))} - {0})
    if len(tail) < 3:
        return None
    names = [f"conv_up{i + 1}" for i in range(len(tail) - 2)] + ["conv_hr", "conv_last"]
    for k, v in sd.items():
        if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", k):
            out[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = v
        elif m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv1x1\.weight", k):
            out[f"body.{m.group(1)}.rdb{m.group(2)}.conv1x1.weight"] = v
        elif m := re.fullmatch(r"model\.1\.sub\.(\d+)\.(weight|bias)", k):
            out[f"conv_body.{m.group(2)}"] = v
        elif m := re.fullmatch(r"model\.(\d+)\.(weight|bias)", k):
            i = int(m.group(1))
            out[f"{'conv_first' if i == 0 else names[tail.index(i)]}.{m.group(2)}"] = v
        else:
            return None
    nb = len({k.split(".")[1] for k in out if k.startswith("body.")})
    body = [k for k in out if k.startswith("conv_body")]
    if not body or nb == 0:
        return None
    return out


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    layout = "new"
    if "conv_first.weight" not in sd:
        conv = _from_old(sd)
        if conv is None:
            return None
        sd, layout = conv, "old"
    need = ("conv_first.weight", "conv_body.weight", "conv_hr.weight", "conv_last.weight", "conv_up1.weight")
    if not all(k in sd for k in need):
        return None
    blocks = sorted({int(k.split(".")[1]) for k in sd if k.startswith("body.")})
    if not blocks or blocks != list(range(len(blocks))):
        return None
    ups = len([k for k in sd if re.fullmatch(r"conv_up\d+\.weight", k)])
    out_ch = sd["conv_last.weight"].shape[0]
    in_first = sd["conv_first.weight"].shape[1]
    unshuffle = {1: 1, 4: 2, 16: 4}.get(in_first // out_ch)
    if unshuffle is None or in_first % out_ch:
        return None
    s = 2 ** ups // unshuffle
    nf, gc = sd["conv_first.weight"].shape[0], sd["body.0.rdb1.conv1.weight"].shape[0]
    plus = [f"body.{i}.rdb{k}.conv1x1.weight" for i in blocks for k in (1, 2, 3)]
    have = [k in sd for k in plus]
    if any(have) and not (all(have) and all(tuple(sd[k].shape) == (gc, nf, 1, 1) for k in plus)):
        return None  # ESRGAN+ needs a (grow, features, 1, 1) conv1x1 in every dense block
    return Arch("rrdbnet", s, in_channels=out_ch, out_channels=out_ch, min_size=unshuffle,
                params={"blocks": len(blocks), "features": nf, "grow": gc, "unshuffle": unshuffle,
                        "ups": ups, "layout": layout, "plus": all(have), "_sd": sd})


def _rdb(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, plus: bool = False) -> Any:
    feats = [x]
    for j in range(1, 5):
        inp = feats[0] if len(feats) == 1 else F.cat(feats)
        y = F.lrelu(F.conv(inp, weight(sd, f"{p}.conv{j}.weight"), weight(sd, f"{p}.conv{j}.bias")), 0.2)
        if plus and j == 2:    # ESRGAN+: x2 += conv1x1(x)
            y = F.add(y, F.conv(x, weight(sd, f"{p}.conv1x1.weight"), None, pad=0))
        elif plus and j == 4:  # and x4 += x2
            y = F.add(y, feats[2])
        feats.append(y)
    x5 = F.conv(F.cat(feats), weight(sd, f"{p}.conv5.weight"), weight(sd, f"{p}.conv5.bias"))
    return F.add(F.affine(x5, 0.2), x)


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    sd = arch.params["_sd"]
    c = lambda name, t: F.conv(t, weight(sd, f"{name}.weight"), weight(sd, f"{name}.bias"))  # noqa: E731
    r = arch.params["unshuffle"]
    feat = F.pixel_unshuffle(x, r, arch.in_channels) if r > 1 else x
    feat = c("conv_first", feat)
    body = feat
    for i in range(arch.params["blocks"]):
        t = body
        for k in (1, 2, 3):
            t = _rdb(F, sd, f"body.{i}.rdb{k}", t, arch.params.get("plus", False))
        body = F.add(F.affine(t, 0.2), body)
    feat = F.add(feat, c("conv_body", body))
    for u in range(arch.params["ups"]):
        feat = F.lrelu(c(f"conv_up{u + 1}", F.up_nearest(feat, 2)), 0.2)
    return c("conv_last", F.lrelu(c("conv_hr", feat), 0.2))
