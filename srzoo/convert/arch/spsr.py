"""SPSR (Structure-Preserving Super Resolution with Gradient Guidance, Ma et al., CVPR
2020): the OpenModelDB ``spsr`` architecture, as spandrel 0.2.2 (the last release with
it; chaiNNer's loader) builds and runs it. Its output is the fused SR image (``x_out``);
the gradient branch's own image (``conv_w``) is not computed, as upstream's inference.

Keys (old ESRGAN-style sequential names): the SR branch ``model.0`` (first conv),
``model.1.sub.N.RDB{1,2,3}.conv{1..5}.0`` (RRDBs, ESRGAN's blocks), ``model.1.sub.<nb>``
(LR conv), then per x2 step an upsampler (``upconv``: nearest x2 then the conv at
``model.3``, ``model.6``, ...; ``pixelshuffle``: the conv at ``model.2``, ``model.5``, ...
then a pixel shuffle), each followed by LeakyReLU(0.2), and ``HR_conv0_new`` (the last
``model.M``, LeakyReLU) and ``HR_conv1_new.0``. The gradient branch: the input's gradient
magnitude per channel (``get_g_nopadding``: ``sqrt(v^2 + h^2 + 1e-6)`` of two fixed 3x3
difference kernels, read from the file when stored), ``b_fea_conv.0``, four stages
``b_block_k`` (an RRDB over the concatenation with the SR branch's features after RRDB
5k-1) then ``b_concat_k.0``, ``b_LR_conv.0`` plus a skip, and ``b_module`` (upsamplers as
above, two convs). The fusion: ``f_block`` (RRDB over both branches), ``f_concat.0``,
``f_HR_conv0.0`` (LeakyReLU), ``f_HR_conv1.0``. Upstream takes the branch features after
RRDBs 5, 10, 15 and 20, so a network has at least 20 RRDBs; scales are powers of two.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight
from srzoo.convert.arch.rrdbnet import _rdb

#: get_g_nopadding's kernels (upstream's; used where the file does not store them)
KERNEL_V = np.array([[0, -1, 0], [0, 0, 0], [0, 1, 0]], np.float32)
KERNEL_H = np.array([[0, 0, 0], [-1, 0, 1], [0, 0, 0]], np.float32)
_NEED = ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight", "b_fea_conv.0.weight", "b_block_1.RDB1.conv1.0.weight",
         "b_concat_4.0.weight", "b_LR_conv.0.weight", "f_block.RDB1.conv1.0.weight", "f_concat.0.weight",
         "f_HR_conv0.0.weight", "f_HR_conv1.0.weight", "HR_conv0_new.0.weight", "HR_conv1_new.0.weight")
_MAX_INDEX = 1000


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...] | None:
    v = sd.get(key)
    return tuple(int(d) for d in v.shape) if v is not None else None


def _rrdb_ok(sd: Mapping[str, np.ndarray], p: str, nf: int, gc: int) -> bool:
    for k in (1, 2, 3):
        for j in range(1, 6):
            cin, cout = nf + (j - 1) * gc, (gc if j < 5 else nf)
            if _shape(sd, f"{p}.RDB{k}.conv{j}.0.weight") != (cout, cin, 3, 3):
                return False
    return True


def _ups(sd: Mapping[str, np.ndarray], prefix: str, first: int, nf: int, count: int, mode: str) -> bool:
    """``count`` x2 upsampler convs at ``prefix.first``, ``prefix.first+3``, ... of ``mode``."""
    out = 4 * nf if mode == "pixelshuffle" else nf
    return all(_shape(sd, f"{prefix}.{first + 3 * i}.weight") == (out, nf, 3, 3) for i in range(count))


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if not all(k in sd for k in _NEED):
        return None
    first = _shape(sd, "model.0.weight")
    last = _shape(sd, "f_HR_conv1.0.weight")
    if first is None or last is None or len(first) != 4 or len(last) != 4:
        return None
    nf, cin, cout = first[0], first[1], last[0]
    gc = _shape(sd, "model.1.sub.0.RDB1.conv1.0.weight")[0]  # type: ignore[index]
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))
                     and int(m.group(1)) < _MAX_INDEX})
    nb = len(blocks)
    if nb < 20 or blocks != list(range(nb)) or _shape(sd, f"model.1.sub.{nb}.weight") != (nf, nf, 3, 3):
        return None
    if not all(_rrdb_ok(sd, f"model.1.sub.{i}", nf, gc) for i in range(nb)):
        return None
    if not all(_rrdb_ok(sd, p, 2 * nf, gc) for p in ("b_block_1", "b_block_2", "b_block_3", "b_block_4", "f_block")):
        return None
    # the SR branch's convolutions after the trunk: upsamplers, then HR_conv0_new
    tail = sorted({int(m.group(1)) for k in sd if (m := re.fullmatch(r"model\.(\d+)\.weight", k))} - {0})
    if not tail:
        return None
    n_up = len(tail) - 1
    mode = "pixelshuffle" if tail[0] == 2 and n_up else "upconv"
    start = 2 if mode == "pixelshuffle" else 3
    if tail != [start + 3 * i for i in range(n_up)] + [2 + 3 * n_up] or not _ups(sd, "model", start, nf, n_up, mode):
        return None
    if not _ups(sd, "b_module", 0 if mode == "pixelshuffle" else 1, nf, n_up, mode):
        return None
    shapes = {"model.0.weight": (nf, cin, 3, 3), f"model.{2 + 3 * n_up}.weight": (nf, nf, 3, 3),
              "HR_conv0_new.0.weight": (nf, nf, 3, 3), "HR_conv1_new.0.weight": (nf, nf, 3, 3),
              "b_fea_conv.0.weight": (nf, cin, 3, 3),
              **{f"b_concat_{k}.0.weight": (nf, 2 * nf, 3, 3) for k in (1, 2, 3, 4)},
              "b_LR_conv.0.weight": (nf, nf, 3, 3), f"b_module.{3 * n_up}.weight": (nf, nf, 3, 3),
              f"b_module.{3 * n_up + 2}.weight": (nf, nf, 3, 3), "f_concat.0.weight": (nf, 2 * nf, 3, 3),
              "f_HR_conv0.0.weight": (nf, nf, 3, 3), "f_HR_conv1.0.weight": (cout, nf, 3, 3)}
    if any(_shape(sd, k) != s for k, s in shapes.items()):
        return None
    for k in ("get_g_nopadding.weight_v", "get_g_nopadding.weight_h"):
        if k in sd and _shape(sd, k) != (1, 1, 3, 3):
            return None
    s = 2 ** n_up
    if scale is not None and scale != s:
        return None
    return Arch("spsr", s, in_channels=cin, out_channels=cout, min_size=4,
                params={"features": nf, "blocks": nb, "grow": gc, "upsampler": mode, "ups": n_up})


def _gradient(F: Any, sd: Mapping[str, np.ndarray], x: Any, channels: int) -> Any:
    """Per channel: sqrt(conv(x, v)^2 + conv(x, h)^2 + 1e-6), zero padding 1."""
    def k(key: str, default: np.ndarray) -> np.ndarray:
        w = weight(sd, key) if key in sd else default.reshape(1, 1, 3, 3)
        return np.tile(w.reshape(1, 1, 3, 3), (channels, 1, 1, 1))
    v = F.conv(x, k("get_g_nopadding.weight_v", KERNEL_V), None, groups=channels)
    h = F.conv(x, k("get_g_nopadding.weight_h", KERNEL_H), None, groups=channels)
    return F.sqrt(F.affine(F.add(F.mul(v, v), F.mul(h, h)), 1.0, 1e-6))


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    p = arch.params
    nf, nb, n_up, mode = p["features"], p["blocks"], p["ups"], p["upsampler"]
    # the RRDBs' convs under rrdbnet's names (conv{j} for conv{j}.0): the same arrays
    rd = {re.sub(r"\.conv([1-5])\.0\.", r".conv\1.", k): v for k, v in sd.items() if ".RDB" in k}

    def c(key: str, t: Any) -> Any:
        return F.conv(t, weight(sd, f"{key}.weight"), weight(sd, f"{key}.bias"))

    def rrdb(prefix: str, t: Any) -> Any:
        y = t
        for k in (1, 2, 3):
            y = _rdb(F, rd, f"{prefix}.RDB{k}", y)
        return F.add(F.affine(y, 0.2), t)

    def up(prefix: str, first: int, t: Any) -> Any:
        for i in range(n_up):
            key = f"{prefix}.{first + 3 * i}"
            if mode == "pixelshuffle":
                t = F.pixel_shuffle(c(key, t), 2, channels=4 * nf)
            else:
                t = c(key, F.up_nearest(t, 2))
            t = F.lrelu(t, 0.2)
        return t

    h0 = c("model.0", x)
    t, feats = h0, []
    for i in range(nb):
        t = rrdb(f"model.1.sub.{i}", t)
        if i in (4, 9, 14, 19):
            feats.append(t)
    t = F.add(h0, c(f"model.1.sub.{nb}", t))
    t = up("model", 2 if mode == "pixelshuffle" else 3, t)
    t = F.lrelu(c("HR_conv0_new.0", t), 0.2)  # (the same weight as model.<2 + 3 ups>)
    sr = c("HR_conv1_new.0", t)

    b0 = c("b_fea_conv.0", _gradient(F, sd, x, arch.in_channels))
    b = b0
    for k in (1, 2, 3, 4):
        b = c(f"b_concat_{k}.0", rrdb(f"b_block_{k}", F.cat([b, feats[k - 1]])))
    b = F.add(c("b_LR_conv.0", b), b0)
    b = up("b_module", 0 if mode == "pixelshuffle" else 1, b)
    b = F.lrelu(c(f"b_module.{3 * n_up}", b), 0.2)
    b = c(f"b_module.{3 * n_up + 2}", b)

    out = c("f_concat.0", rrdb("f_block", F.cat([b, sr])))
    out = F.lrelu(c("f_HR_conv0.0", out), 0.2)
    return c("f_HR_conv1.0", out)
