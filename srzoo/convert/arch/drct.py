"""DRCT (Dense-residual-connected Transformer, Hsu et al., CVPRW 2024): the OpenModelDB
``drct`` architecture (DRCT and DRCT-L).

Keys: ``conv_first`` (3x3, in -> dim), ``patch_embed.norm``, residual dense groups
``layers.i``: five Swin blocks ``swin1`` .. ``swin5`` (:mod:`srzoo.convert.arch._swin`)
on the growing concatenation of the group's input and the earlier blocks' outputs
(``dim + k*gc`` channels), each followed by a 1x1 ``adjustK`` conv (to ``gc``, LeakyReLU
0.2; ``adjust5`` back to ``dim``, no activation); the group gives ``0.2 * x5 + x``. Blocks
2 and 4 shift their windows by half a window when the file holds their ``attn_mask``
(spandrel builds the network for an image of the window's size otherwise, where nothing
is shifted). Heads per block: ``heads - (channels % heads)``, read from the bias tables.
Then ``norm``, ``conv_after_body`` (3x3; absent: identity) and the pixel-shuffle upsampler
of SwinIR (``conv_before_upsample.0`` + LeakyReLU 0.01, ``upsample.0/2/4``, ``conv_last``).
Input ``x - mean`` (0.4488, 0.4371, 0.4040 for three channels), output ``+ mean``.

Upstream's forward has no ``check_image_size`` (spandrel: sizes must be multiples of 16,
the caller pads); the graph pads bottom/right by reflection to a multiple of the window
and crops the result, so it runs at any size and equals upstream on the padded image.
A network without an upsampler (upstream returns its input) and one with
``absolute_pos_embed`` (tied to the training size) are refused.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, _swin, weight
from srzoo.convert.arch.swinir import MEAN, _conv, pixelshuffle_shapes, pixelshuffle_up

_LAYER = re.compile(r"^layers\.(\d+)\.swin1\.norm1\.weight$")


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if "layers.0.swin1.attn.relative_position_bias_table" not in sd or "layers.0.adjust1.weight" not in sd:
        return None
    need = ("conv_first.weight", "conv_first.bias", "patch_embed.norm.weight", "norm.weight",
            "conv_before_upsample.0.weight", "conv_last.weight")
    if any(k not in sd for k in need) or "absolute_pos_embed" in sd:
        return None
    w0 = np.shape(sd["conv_first.weight"])
    if len(w0) != 4 or w0[2:] != (3, 3):
        return None
    dim, cin = int(w0[0]), int(w0[1])
    n = len({int(m.group(1)) for k in sd if (m := _LAYER.match(k))})
    if n < 1 or any(f"layers.{i}.swin1.norm1.weight" not in sd for i in range(n)):
        return None
    rows = int(np.shape(sd["layers.0.swin1.attn.relative_position_bias_table"])[0])
    ws = (int(np.sqrt(rows)) + 1) // 2
    if ws < 2 or (2 * ws - 1) ** 2 != rows:
        return None
    _swin.check_window("drct", ws)
    gc = int(np.shape(sd["layers.0.adjust1.weight"])[0])
    want: dict[str, tuple[int, ...]] = {"patch_embed.norm.weight": (dim,), "patch_embed.norm.bias": (dim,),
                                        "norm.weight": (dim,), "norm.bias": (dim,), "conv_first.bias": (dim,)}
    heads: list[list[int]] = []
    hidden: list[list[int]] = []
    for i in range(n):
        hs, hid = [], []
        for k in range(1, 6):
            c = dim + (k - 1) * gc
            p = f"layers.{i}.swin{k}"
            table, fc1 = sd.get(f"{p}.attn.relative_position_bias_table"), sd.get(f"{p}.mlp.fc1.weight")
            if table is None or fc1 is None or len(np.shape(table)) != 2 or len(np.shape(fc1)) != 2:
                return None
            h, m = int(np.shape(table)[1]), int(np.shape(fc1)[0])
            if h < 1 or c % h:
                return None
            want.update(_swin.block_shapes(sd, p, c, h, ws, m))
            want.update({f"layers.{i}.adjust{k}.weight": (gc if k < 5 else dim, c, 1, 1),
                         f"layers.{i}.adjust{k}.bias": (gc if k < 5 else dim,)})
            hs.append(h)
            hid.append(m)
        heads.append(hs)
        hidden.append(hid)
    if "conv_after_body.weight" in sd:
        want.update({"conv_after_body.weight": (dim, dim, 3, 3), "conv_after_body.bias": (dim,)})
    up = pixelshuffle_shapes(sd, dim, cin)
    if up is None:
        return None
    s, nf, shapes = up
    want.update(shapes)
    if (scale is not None and scale != s) or not _swin.shapes_match(sd, want):
        return None
    shifted = "layers.0.swin2.attn_mask" in sd
    params: dict[str, Any] = {"embed_dim": dim, "groups": n, "gc": gc, "heads": heads, "mlp_hidden": hidden,
                              "window": ws, "shift": ws // 2 if shifted else 0, "num_feat": nf,
                              "resi_connection": "1conv" if "conv_after_body.weight" in sd else "identity"}
    return Arch("drct", s, in_channels=cin, out_channels=cin, min_size=max(ws, 8), params=params)


def _group(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, i: int, t: Any, like: Any, mask: Any) -> Any:
    pr = arch.params
    dim, gc, ws, shift = pr["embed_dim"], pr["gc"], pr["window"], pr["shift"]
    feats = [F.from_tokens(t, like)]
    for k in range(1, 6):
        p = f"layers.{i}.swin{k}"
        inp = F.to_tokens(F.cat(feats)) if k > 1 else t
        y = _swin.block(F, sd, p, inp, like, dim + (k - 1) * gc, pr["heads"][i][k - 1], ws,
                        shift if k in (2, 4) else 0, mask)
        y = _conv(F, sd, f"layers.{i}.adjust{k}", F.from_tokens(y, like))
        if k < 5:
            feats.append(F.lrelu(y, 0.2))
        else:
            return F.add(F.affine(F.to_tokens(y), 0.2), t)
    raise AssertionError("unreachable")


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr, s, ws = arch.params, arch.scale, arch.params["window"]
    mean = MEAN if arch.in_channels == 3 else np.zeros(arch.in_channels, np.float32)
    xp = F.pad_to_multiple(x, ws, ws, "reflect")
    feat = _conv(F, sd, "conv_first", F.affine(xp, 1.0, -mean))
    t = F.layer_norm(F.to_tokens(feat), weight(sd, "patch_embed.norm.weight"), weight(sd, "patch_embed.norm.bias"),
                     1e-5)
    mask = _swin.shift_mask(F, xp, ws, pr["shift"]) if pr["shift"] else None
    for i in range(pr["groups"]):
        t = _group(F, sd, arch, i, t, feat, mask)
    t = F.layer_norm(t, weight(sd, "norm.weight"), weight(sd, "norm.bias"), 1e-5)
    res = F.from_tokens(t, feat)
    if "conv_after_body.weight" in sd:
        res = _conv(F, sd, "conv_after_body", res)
    y = pixelshuffle_up(F, sd, F.add(res, feat), pr["num_feat"])
    return F.crop_to(F.affine(y, 1.0, mean), x, s)
