"""SwinIR (Image Restoration Using Swin Transformer, Liang et al. 2021): the OpenModelDB
``swinir`` architecture (classical, lightweight and real-world SR, and x1 restoration).

Keys: ``conv_first`` (3x3, in -> embed_dim), ``patch_embed.norm`` (LayerNorm on the
tokens), residual groups ``layers.i`` of Swin blocks ``layers.i.residual_group.blocks.j``
(:mod:`srzoo.convert.arch._swin`; odd blocks shift their windows by half a window) each
closed by a conv (``layers.i.conv``: one 3x3, or ``3conv``: 3x3 to dim/4, 1x1, 3x3 to dim,
LeakyReLU 0.2 between) and a skip; ``norm``, ``conv_after_body`` (1conv or 3conv), then the
upsampler, read from the keys as spandrel does:

- ``pixelshuffle`` (``conv_before_upsample.0`` + LeakyReLU 0.01, ``upsample.0/2/4``: a
  3x3 conv to 4*nf and a x2 pixel shuffle each, or one to 9*nf and x3, then ``conv_last``);
- ``pixelshuffledirect`` (``upsample.0``: one 3x3 conv to out*s*s and a pixel shuffle);
- ``nearest+conv`` (``conv_up1`` [``conv_up2``, ``conv_up3``]: x2 nearest and a 3x3 conv
  with LeakyReLU 0.2 each, ``conv_hr``, ``conv_last``);
- none (x1): ``x + conv_last(body)``.

The window size is the bias table's ``(2*ws - 1)**2`` rows; the heads its columns. The
input is normalised as ``(x - mean) * img_range`` (mean 0.4488, 0.4371, 0.4040 for three
channels, else 0; img_range 255 for window 7, the JPEG models, else 1, as spandrel) and the
output de-normalised. Inputs of any size run: the graph pads bottom/right by reflection to
a multiple of the window and crops the result (upstream's ``check_image_size``).
``conv_first.1`` (a pixel-unshuffled input, ``start_unshuffle``) is refused: upstream pads
to the window before unshuffling, which leaves windows that do not divide the features.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, _swin, weight

MEAN = np.array([0.4488, 0.4371, 0.4040], np.float32)
_LAYER = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.norm1\.weight$")


def _conv_keys(sd: Mapping[str, np.ndarray], prefix: str, dim: int) -> dict[str, tuple[int, ...]] | None:
    """The shapes of a 1conv (``prefix``) or 3conv (``prefix.0/2/4``) block."""
    if f"{prefix}.weight" in sd:
        return {f"{prefix}.weight": (dim, dim, 3, 3), f"{prefix}.bias": (dim,)}
    if f"{prefix}.0.weight" in sd:
        q = dim // 4
        return {f"{prefix}.0.weight": (q, dim, 3, 3), f"{prefix}.0.bias": (q,), f"{prefix}.2.weight": (q, q, 1, 1),
                f"{prefix}.2.bias": (q,), f"{prefix}.4.weight": (dim, q, 3, 3), f"{prefix}.4.bias": (dim,)}
    return None


def pixelshuffle_shapes(sd: Mapping[str, np.ndarray], dim: int,
                        cout: int) -> tuple[int, int, dict[str, tuple[int, ...]]] | None:
    """The scale, ``num_feat`` and shapes of the ``pixelshuffle`` upsampler (also DRCT's,
    HAT's): ``conv_before_upsample.0`` (dim -> nf), ``upsample.0/2/4`` (nf -> 4*nf, x2
    each, or one nf -> 9*nf, x3), ``conv_last`` (nf -> out); None when absent or other."""
    if "conv_before_upsample.0.weight" not in sd:
        return None
    nf = int(np.shape(sd["conv_before_upsample.0.weight"])[0])
    want = {"conv_before_upsample.0.weight": (nf, dim, 3, 3), "conv_before_upsample.0.bias": (nf,),
            "conv_last.weight": (cout, nf, 3, 3), "conv_last.bias": (cout,)}
    s, steps = 1, []
    for i in range(0, 10, 2):
        if f"upsample.{i}.weight" not in sd:
            break
        r = math.isqrt(int(np.shape(sd[f"upsample.{i}.weight"])[0]) // max(nf, 1))
        if r not in (2, 3):
            return None
        want.update({f"upsample.{i}.weight": (r * r * nf, nf, 3, 3), f"upsample.{i}.bias": (r * r * nf,)})
        steps.append(r)
        s *= r
    if not steps or (3 in steps and len(steps) > 1):
        return None
    return s, nf, want


def pixelshuffle_up(F: Any, sd: Mapping[str, np.ndarray], x: Any, nf: int) -> Any:
    h = F.lrelu(_conv(F, sd, "conv_before_upsample.0", x), 0.01)
    i = 0
    while f"upsample.{i}.weight" in sd:
        c = int(np.shape(sd[f"upsample.{i}.weight"])[0])
        h = F.pixel_shuffle(_conv(F, sd, f"upsample.{i}", h), math.isqrt(c // nf), channels=c)
        i += 2
    return _conv(F, sd, "conv_last", h)


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if "layers.0.residual_group.blocks.0.attn.relative_position_bias_table" not in sd:
        return None
    if "conv_first.weight" not in sd or "layers.0.residual_group.blocks.0.mlp.fc1.weight" not in sd:
        return None  # conv_first.1 (start_unshuffle): see the module docstring
    if "layers.0.residual_group.overlap_attn.relative_position_bias_table" in sd:
        return None  # HAT (srzoo.convert.arch.hat): SwinIR's keys and more
    if "patch_embed.norm.weight" not in sd or "norm.weight" not in sd:
        return None
    w0 = np.shape(sd["conv_first.weight"])
    if len(w0) != 4 or w0[2:] != (3, 3):
        return None
    dim, cin = int(w0[0]), int(w0[1])
    blocks: dict[int, set[int]] = {}
    for k in sd:
        if m := _LAYER.match(k):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if sorted(blocks) != list(range(len(blocks))):
        return None
    depths = [len(blocks[i]) for i in range(len(blocks))]
    if any(sorted(blocks[i]) != list(range(d)) for i, d in enumerate(depths)):
        return None
    p0 = "layers.0.residual_group.blocks.0"
    rows = int(np.shape(sd[f"{p0}.attn.relative_position_bias_table"])[0])
    ws = (math.isqrt(rows) + 1) // 2
    hidden = int(np.shape(sd[f"{p0}.mlp.fc1.weight"])[0])
    heads = [int(np.shape(sd[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"])[1])
             for i in range(len(depths))]
    if ws < 1 or (2 * ws - 1) ** 2 != rows or any(h < 1 or dim % h for h in heads):
        return None
    _swin.check_window("swinir", ws)
    want: dict[str, tuple[int, ...]] = {"patch_embed.norm.weight": (dim,), "patch_embed.norm.bias": (dim,),
                                        "norm.weight": (dim,), "norm.bias": (dim,), "conv_first.bias": (dim,)}
    for i, d in enumerate(depths):
        for j in range(d):
            want.update(_swin.block_shapes(sd, f"layers.{i}.residual_group.blocks.{j}", dim, heads[i], ws, hidden))
        conv = _conv_keys(sd, f"layers.{i}.conv", dim)
        if conv is None:
            return None
        want.update(conv)
    after = _conv_keys(sd, "conv_after_body", dim)
    if after is None:
        return None
    want.update(after)
    resi = "1conv" if "conv_after_body.weight" in sd else "3conv"
    cout = cin
    if "conv_before_upsample.0.weight" in sd:
        nf = int(np.shape(sd["conv_before_upsample.0.weight"])[0])
        want.update({"conv_before_upsample.0.weight": (nf, dim, 3, 3), "conv_before_upsample.0.bias": (nf,),
                     "conv_last.weight": (cout, nf, 3, 3), "conv_last.bias": (cout,)})
        if "conv_up1.weight" in sd:
            upsampler = "nearest+conv"
            n_up = sum(f"conv_up{k}.weight" in sd for k in (1, 2, 3))
            if any(f"conv_up{k}.weight" not in sd for k in range(1, n_up + 1)):
                return None
            s = 2 ** n_up
            for k in range(1, n_up + 1):
                want.update({f"conv_up{k}.weight": (nf, nf, 3, 3), f"conv_up{k}.bias": (nf,)})
            want.update({"conv_hr.weight": (nf, nf, 3, 3), "conv_hr.bias": (nf,)})
        else:
            upsampler = "pixelshuffle"
            up = pixelshuffle_shapes(sd, dim, cout)
            if up is None:
                return None
            s, nf, shapes = up
            want.update(shapes)
    elif "upsample.0.weight" in sd:
        upsampler, nf = "pixelshuffledirect", dim
        n = int(np.shape(sd["upsample.0.weight"])[0])
        s = math.isqrt(n // cout)
        if s < 1 or s * s * cout != n:
            return None
        want.update({"upsample.0.weight": (n, dim, 3, 3), "upsample.0.bias": (n,)})
    else:
        upsampler, nf, s = "", dim, 1
        want.update({"conv_last.weight": (cout, dim, 3, 3), "conv_last.bias": (cout,)})
    if (scale is not None and scale != s) or not _swin.shapes_match(sd, want):
        return None
    params: dict[str, Any] = {"embed_dim": dim, "depths": depths, "heads": heads, "window": ws,
                              "mlp_hidden": hidden, "upsampler": upsampler or "none", "resi_connection": resi,
                              "img_range": 255.0 if ws == 7 else 1.0}
    if upsampler == "pixelshuffle":
        params["num_feat"] = nf
    # reflection padding of up to ws-1 rows needs at least ws of them
    return Arch("swinir", s, in_channels=cin, out_channels=cout, min_size=max(ws, 8), params=params)


def _conv(F: Any, sd: Mapping[str, np.ndarray], prefix: str, x: Any) -> Any:
    return F.conv(x, weight(sd, f"{prefix}.weight"), weight(sd, f"{prefix}.bias"))


def _resi(F: Any, sd: Mapping[str, np.ndarray], prefix: str, x: Any) -> Any:
    if f"{prefix}.weight" in sd:
        return _conv(F, sd, prefix, x)
    h = F.lrelu(_conv(F, sd, f"{prefix}.0", x), 0.2)
    h = F.lrelu(_conv(F, sd, f"{prefix}.2", h), 0.2)
    return _conv(F, sd, f"{prefix}.4", h)


def reconstruct(F: Any, sd: Mapping[str, np.ndarray], up: str, res: Any, xn: Any, s: int,
                num_feat: int | None = None, n_up: int = 2) -> Any:
    """The SwinIR family's reconstruction of the deep features ``res`` (shared by SwinIR,
    Swin2SR, SRFormer and ATD): ``pixelshuffle``, ``pixelshuffledirect``, ``nearest+conv``
    (``n_up`` x2 steps, ``conv_up1`` ... ``conv_up{n_up}``) or, for any other ``up``, the
    x1 residual ``xn + conv_last(res)``."""
    if up == "pixelshuffle":
        return pixelshuffle_up(F, sd, res, int(num_feat or 0))
    if up == "pixelshuffledirect":
        c = int(np.shape(sd["upsample.0.weight"])[0])
        return F.pixel_shuffle(_conv(F, sd, "upsample.0", res), s, channels=c)
    if up == "nearest+conv":
        h = F.lrelu(_conv(F, sd, "conv_before_upsample.0", res), 0.01)
        for k in range(1, n_up + 1):
            h = F.lrelu(_conv(F, sd, f"conv_up{k}", F.up_nearest(h, 2)), 0.2)
        return _conv(F, sd, "conv_last", F.lrelu(_conv(F, sd, "conv_hr", h), 0.2))
    return F.add(xn, _conv(F, sd, "conv_last", res))


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr, s = arch.params, arch.scale
    dim, ws, rng = pr["embed_dim"], pr["window"], pr["img_range"]
    mean = MEAN if arch.in_channels == 3 else np.zeros(arch.in_channels, np.float32)
    xp = F.pad_to_multiple(x, ws, ws, "reflect")
    xn = F.affine(xp, rng, -mean * rng)
    feat = _conv(F, sd, "conv_first", xn)
    t = F.layer_norm(F.to_tokens(feat), weight(sd, "patch_embed.norm.weight"), weight(sd, "patch_embed.norm.bias"),
                     1e-5)
    shift = ws // 2
    mask = _swin.shift_mask(F, xp, ws, shift) if shift and any(d > 1 for d in pr["depths"]) else None
    for i, depth in enumerate(pr["depths"]):
        t0 = t
        for j in range(depth):
            t = _swin.block(F, sd, f"layers.{i}.residual_group.blocks.{j}", t, feat, dim, pr["heads"][i], ws,
                            shift if j % 2 else 0, mask)
        t = F.add(F.to_tokens(_resi(F, sd, f"layers.{i}.conv", F.from_tokens(t, feat))), t0)
    t = F.layer_norm(t, weight(sd, "norm.weight"), weight(sd, "norm.bias"), 1e-5)
    res = F.add(_resi(F, sd, "conv_after_body", F.from_tokens(t, feat)), feat)
    n_up = 0  # nearest+conv: as many x2 steps as consecutive conv_up<k> (1 to 3)
    while f"conv_up{n_up + 1}.weight" in sd:
        n_up += 1
    y = reconstruct(F, sd, pr["upsampler"], res, xn, s, pr.get("num_feat"), n_up)
    y = F.affine(y, 1.0 / rng, mean)
    return F.crop_to(y, x, s)
