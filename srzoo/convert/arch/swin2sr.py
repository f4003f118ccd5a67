"""Swin2SR (SwinV2 Transformer for Compressed Image Super-Resolution and Restoration,
Conde et al. 2022): the OpenModelDB ``swin2sr`` architecture (classical, lightweight,
real-world and compressed-input SR, and x1 JPEG restoration).

SwinIR's layout (:mod:`srzoo.convert.arch.swinir`) with Swin V2 blocks
(:func:`srzoo.convert.arch._swin.block_v2`: cosine attention with a per-head temperature
``exp(min(logit_scale, log 100))``, the position bias ``16 * sigmoid(cpb_mlp(coords))``
evaluated at conversion time into a constant, LayerNorm after attention and MLP, ``q_bias``
and ``v_bias``) and a 1x1 ``proj`` conv in every patch embedding (``patch_embed.proj``, and
``layers.i.patch_embed.proj`` after each group's conv). Upsamplers, read from the keys as
spandrel does:

- ``pixelshuffle`` (``conv_before_upsample.0`` + LeakyReLU 0.01, ``upsample.0/2/4``, ``conv_last``);
- ``pixelshuffle_aux`` (the compressed-input models: the same body, plus ``conv_aux`` to an
  image and ``conv_after_aux`` back to features before the upsampler, and a bicubic resize
  of the normalised input to the output size through ``conv_bicubic`` added after it);
- ``pixelshuffledirect`` (``upsample.0``: one conv to out*s*s and a pixel shuffle);
- ``nearest+conv`` (x4: ``conv_up1``, ``conv_up2`` with x2 nearest, ``conv_hr``, ``conv_last``);
- none (x1): ``x + conv_last(body)``.

Windows shift by half a window in odd blocks when the file holds their ``attn_mask``
(spandrel builds the network for an image of the window's size otherwise, where nothing is
shifted). img_range is 255 for window 7 (the JPEG models), else 1; the mean is 0.4488,
0.4371, 0.4040 for three channels, else 0. The graph pads bottom/right by reflection to a
multiple of the window and crops the result (upstream's ``check_image_size``). Refused:
``pixelshuffle_hf`` (three outputs), a patch size other than 1 and ``absolute_pos_embed``
(tied to the training size).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, _swin, weight
from srzoo.convert.arch.swinir import MEAN, _conv, _conv_keys, _resi, pixelshuffle_shapes, reconstruct

_BLOCK = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.norm1\.weight$")


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(sd[key])) if key in sd else ()


def _conv_shapes(prefix: str, cout: int, cin: int, k: int = 3) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (cout, cin, k, k), f"{prefix}.bias": (cout,)}


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    p0 = "layers.0.residual_group.blocks.0"
    if f"{p0}.attn.logit_scale" not in sd or f"{p0}.attn.cpb_mlp.0.weight" not in sd:
        return None
    need = ("conv_first.weight", "conv_first.bias", "norm.weight", "patch_embed.proj.weight", f"{p0}.mlp.fc1.weight")
    if any(k not in sd for k in need) or "absolute_pos_embed" in sd or "conv_after_body_hf.weight" in sd:
        return None
    w0 = _shape(sd, "conv_first.weight")
    if len(w0) != 4 or w0[2:] != (3, 3):
        return None
    dim, cin = w0[0], w0[1]
    blocks: dict[int, set[int]] = {}
    for k in sd:
        if m := _BLOCK.match(k):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        return None
    depths = [len(blocks[i]) for i in range(len(blocks))]
    if any(sorted(blocks[i]) != list(range(d)) for i, d in enumerate(depths)):
        return None
    # the window: from the side (ws*ws) of the relative position index buffer (every file saved
    # from upstream's module holds it; without it the window is unknown: refused); its values are never read
    idx = _shape(sd, f"{p0}.attn.relative_position_index")
    if len(idx) != 2 or idx[0] != idx[1] or math.isqrt(idx[0]) ** 2 != idx[0]:
        return None
    ws = math.isqrt(idx[0])
    if ws < 2:
        return None
    _swin.check_window("swin2sr", ws)
    hidden = _shape(sd, f"{p0}.mlp.fc1.weight")[0]
    cpb = _shape(sd, f"{p0}.attn.cpb_mlp.0.weight")[:1]
    heads = [_shape(sd, f"layers.{i}.residual_group.blocks.0.attn.logit_scale")[:1] for i in range(len(depths))]
    if not cpb or any(len(h) != 1 or h[0] < 1 or dim % h[0] for h in heads):
        return None
    heads_ = [h[0] for h in heads]
    qkv_bias = f"{p0}.attn.q_bias" in sd
    shifted = "layers.0.residual_group.blocks.1.attn_mask" in sd
    want: dict[str, tuple[int, ...]] = {"norm.weight": (dim,), "norm.bias": (dim,), "conv_first.bias": (dim,),
                                        **_conv_shapes("patch_embed.proj", dim, dim, 1)}
    if "patch_embed.norm.weight" in sd:
        want.update({"patch_embed.norm.weight": (dim,), "patch_embed.norm.bias": (dim,)})
    for i, d in enumerate(depths):
        for j in range(d):
            want.update(_swin.block_v2_shapes(f"layers.{i}.residual_group.blocks.{j}", dim, heads_[i], hidden,
                                              cpb[0], qkv_bias))
        conv = _conv_keys(sd, f"layers.{i}.conv", dim)
        if conv is None:
            return None
        want.update(conv)
        want.update(_conv_shapes(f"layers.{i}.patch_embed.proj", dim, dim, 1))
    after = _conv_keys(sd, "conv_after_body", dim)
    if after is None:
        return None
    want.update(after)
    cout = cin
    if "conv_bicubic.weight" in sd:
        upsampler = "pixelshuffle_aux"
        up = pixelshuffle_shapes(sd, dim, cout)
        if up is None:
            return None
        s, nf, shapes = up
        want.update(shapes)
        want.update({**_conv_shapes("conv_bicubic", nf, cin), **_conv_shapes("conv_aux", cout, nf),
                     **_conv_shapes("conv_after_aux.0", nf, cout)})
    elif "conv_hr.weight" in sd:
        upsampler, s = "nearest+conv", 4
        hr = _shape(sd, "conv_hr.weight")
        if len(hr) != 4:
            return None
        nf = hr[0]
        for k in ("conv_up1", "conv_up2", "conv_hr"):
            want.update(_conv_shapes(k, nf, nf))
        want.update({**_conv_shapes("conv_before_upsample.0", nf, dim), **_conv_shapes("conv_last", cout, nf)})
    elif "conv_before_upsample.0.weight" in sd:
        upsampler = "pixelshuffle"
        up = pixelshuffle_shapes(sd, dim, cout)
        if up is None:
            return None
        s, nf, shapes = up
        want.update(shapes)
    elif "upsample.0.weight" in sd:
        upsampler, nf = "pixelshuffledirect", dim
        n = (_shape(sd, "upsample.0.weight") or (0,))[0]
        s = math.isqrt(n // cout)
        if s < 1 or s * s * cout != n:
            return None
        want.update(_conv_shapes("upsample.0", n, dim))
    else:
        upsampler, nf, s = "none", dim, 1
        want.update(_conv_shapes("conv_last", cout, dim))
    if (scale is not None and scale != s) or not _swin.shapes_match(sd, want):
        return None
    params: dict[str, Any] = {"embed_dim": dim, "depths": depths, "heads": heads_, "window": ws,
                              "shift": ws // 2 if shifted else 0, "mlp_hidden": hidden, "upsampler": upsampler,
                              "resi_connection": "1conv" if "conv_after_body.weight" in sd else "3conv",
                              "img_range": 255.0 if ws == 7 else 1.0, "num_feat": nf,
                              "patch_norm": "patch_embed.norm.weight" in sd, "size": _size(depths)}
    # reflection padding of up to ws-1 rows needs at least ws of them
    return Arch("swin2sr", s, in_channels=cin, out_channels=cout, min_size=max(ws, 8), params=params)


def _size(depths: list[int]) -> str:
    """spandrel's size tag: small up to 4 groups, medium below 9, large from 9."""
    return "small" if len(depths) <= 4 else ("medium" if len(depths) < 9 else "large")


def _features(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, xp: Any, xn: Any) -> tuple[Any, Any]:
    """``conv_first`` of the normalised input ``xn`` and ``conv_after_body(body) + it``."""
    pr = arch.params
    dim, ws, shift = pr["embed_dim"], pr["window"], pr["shift"]
    feat = _conv(F, sd, "conv_first", xn)
    t = F.to_tokens(_conv(F, sd, "patch_embed.proj", feat))
    if pr["patch_norm"]:
        t = F.layer_norm(t, weight(sd, "patch_embed.norm.weight"), weight(sd, "patch_embed.norm.bias"), 1e-5)
    mask = _swin.shift_mask(F, xp, ws, shift) if shift else None
    for i, depth in enumerate(pr["depths"]):
        t0 = t
        for j in range(depth):
            t = _swin.block_v2(F, sd, f"layers.{i}.residual_group.blocks.{j}", t, feat, dim, pr["heads"][i], ws,
                               shift if j % 2 else 0, mask)
        img = _resi(F, sd, f"layers.{i}.conv", F.from_tokens(t, feat))
        t = F.add(F.to_tokens(_conv(F, sd, f"layers.{i}.patch_embed.proj", img)), t0)
    t = F.layer_norm(t, weight(sd, "norm.weight"), weight(sd, "norm.bias"), 1e-5)
    return feat, F.add(_resi(F, sd, "conv_after_body", F.from_tokens(t, feat)), feat)


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr, s = arch.params, arch.scale
    ws, rng = pr["window"], pr["img_range"]
    mean = MEAN if arch.in_channels == 3 else np.zeros(arch.in_channels, np.float32)
    xp = F.pad_to_multiple(x, ws, ws, "reflect")
    xn = F.affine(xp, rng, -mean * rng)
    feat, res = _features(F, sd, arch, xp, xn)
    up = pr["upsampler"]
    if up == "pixelshuffle_aux":
        h = F.lrelu(_conv(F, sd, "conv_before_upsample.0", res), 0.01)
        h = F.lrelu(_conv(F, sd, "conv_after_aux.0", _conv(F, sd, "conv_aux", h)), 0.01)
        i = 0
        while f"upsample.{i}.weight" in sd:
            c = int(np.shape(sd[f"upsample.{i}.weight"])[0])
            h = F.pixel_shuffle(_conv(F, sd, f"upsample.{i}", h), math.isqrt(c // pr["num_feat"]), channels=c)
            i += 2
        # upstream: bicubic of the padded, normalised input to (H*s, W*s) of the unpadded one, then
        # both cropped there: the upsampled features are cropped to the bicubic's size before adding
        bic = _conv(F, sd, "conv_bicubic", F.resize_cubic_to(xn, x, s))
        y = _conv(F, sd, "conv_last", F.add(F.crop_to(h, x, s), bic))
    else:
        y = reconstruct(F, sd, up, res, xn, s, pr.get("num_feat"))
    y = F.affine(y, 1.0 / rng, mean)
    return F.crop_to(y, x, s)
