"""HAT (Hybrid Attention Transformer, Chen et al., CVPR 2023): the OpenModelDB ``hat``
architecture (HAT-S, HAT, HAT-L, and x1 restoration networks).

Keys: ``conv_first`` (3x3, in -> dim), ``patch_embed.norm`` (optional), residual hybrid
attention groups ``layers.i``: hybrid attention blocks ``residual_group.blocks.j`` and one
overlapping cross-attention block ``residual_group.overlap_attn``, then ``layers.i.conv``
(3x3; absent: identity) and a skip; ``norm``, ``conv_after_body`` (3x3; absent: identity)
and the pixel-shuffle upsampler of SwinIR (``conv_before_upsample.0`` + LeakyReLU 0.01,
``upsample.0/2/4`` x2 each or one x3, none at x1, ``conv_last``).

- A hybrid attention block (HAB) is a Swin block (:mod:`srzoo.convert.arch._swin`; odd
  blocks shift by half a window) with a channel-attention conv block beside the attention:
  ``t + W-MSA(LN(t)) + 0.01 * CAB(LN(t))`` then ``+ MLP(LN(.))``; the CAB is a 3x3 conv to
  ``dim/compress``, GELU, a 3x3 conv back, and RCAN's channel attention (global mean,
  1x1 conv to ``dim/squeeze``, ReLU, 1x1 conv, sigmoid, times the features).
- The overlapping cross-attention block (OCAB): queries from the ``ws x ws`` windows,
  keys and values from ``ows x ows`` windows centred on them (``ows = ws + ws*overlap``,
  zeros outside the image: torch's ``Unfold`` with padding ``(ows - ws) / 2``), a
  ``(ws + ows - 1)**2``-row bias table gathered by upstream's index (which counts some
  offsets from the table's end; copied as it is computed, not read from the file), then
  ``proj``, a skip and an MLP.

The window is read from the blocks' tables (``(2*ws - 1)**2`` rows), the overlapping
window from the OCAB's, heads from their columns, ``compress``/``squeeze`` from the CAB's
convolutions. Input ``x - mean`` (0.4488, 0.4371, 0.4040 for three channels, else 0;
img_range 1, as spandrel), output ``+ mean``; the graph pads bottom/right by reflection to
a multiple of the window and crops the result (upstream's ``check_image_size``). Refused:
``absolute_pos_embed`` (tied to the training size) and an odd ``ows - ws`` or an overlap
wider than the window (upstream's unfold then gives another number of windows than the
queries have).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, _swin, weight
from srzoo.convert.arch.swinir import MEAN, _conv, pixelshuffle_shapes, pixelshuffle_up
from srzoo.errors import ModelLoadError

_BLOCK = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.norm1\.weight$")
#: what upstream multiplies the CAB's output by (``conv_scale``; not in the state dict)
CONV_SCALE = 0.01
#: the most values an overlapping cross-attention's bias (heads x ws^2 x ows^2) may expand to:
#: a crafted table of many heads would otherwise ask for gigabytes (HAT-L: 6 x 256 x 576)
MAX_BIAS = 1 << 24


def oca_index(ws: int, ows: int) -> np.ndarray:
    """(ws*ws, ows*ows): the row of the OCAB's bias table for each (query, key) pair, as
    upstream's ``calculate_rpi_oca`` computes it (offsets below zero index from the end
    of the table, as torch's indexing does with negative numbers)."""
    yo, xo = (a.reshape(-1) for a in np.meshgrid(np.arange(ws), np.arange(ws), indexing="ij"))
    ye, xe = (a.reshape(-1) for a in np.meshgrid(np.arange(ows), np.arange(ows), indexing="ij"))
    dy = ye[None, :] - yo[:, None] + ws - ows + 1
    dx = xe[None, :] - xo[:, None] + ws - ows + 1
    return np.mod(dy * (ws + ows - 1) + dx, (ws + ows - 1) ** 2)


def oca_bias(table: np.ndarray, ws: int, ows: int) -> np.ndarray:
    """The (heads, ws*ws, ows*ows) bias of the OCAB from its table."""
    idx = oca_index(ws, ows).reshape(-1)
    return np.ascontiguousarray(np.asarray(table, np.float32)[idx].reshape(ws * ws, ows * ows, -1)
                                .transpose(2, 0, 1))


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(sd[key])) if key in sd else ()


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    p0 = "layers.0.residual_group"
    if f"{p0}.overlap_attn.relative_position_bias_table" not in sd or \
            f"{p0}.blocks.0.conv_block.cab.0.weight" not in sd:
        return None
    need = ("conv_first.weight", "conv_first.bias", "norm.weight", "norm.bias", "conv_last.weight",
            f"{p0}.blocks.0.attn.relative_position_bias_table", f"{p0}.blocks.0.mlp.fc1.weight",
            f"{p0}.overlap_attn.mlp.fc1.weight", f"{p0}.blocks.0.conv_block.cab.3.attention.1.weight")
    if any(k not in sd for k in need) or "absolute_pos_embed" in sd:
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
    t_sa = _shape(sd, f"{p0}.blocks.0.attn.relative_position_bias_table")
    t_oca = _shape(sd, f"{p0}.overlap_attn.relative_position_bias_table")
    if len(t_sa) != 2 or len(t_oca) != 2:
        return None
    ws = (math.isqrt(t_sa[0]) + 1) // 2
    if ws < 2 or (2 * ws - 1) ** 2 != t_sa[0]:
        return None
    _swin.check_window("hat", ws)
    ows = math.isqrt(t_oca[0]) - ws + 1
    if (ws + ows - 1) ** 2 != t_oca[0] or not ws <= ows <= 2 * ws or (ows - ws) % 2:
        return None
    hidden = _shape(sd, f"{p0}.blocks.0.mlp.fc1.weight")[0]
    oca_hidden = _shape(sd, f"{p0}.overlap_attn.mlp.fc1.weight")[0]
    cr = _shape(sd, f"{p0}.blocks.0.conv_block.cab.0.weight")[0]
    sq = _shape(sd, f"{p0}.blocks.0.conv_block.cab.3.attention.1.weight")[0]
    heads = [_shape(sd, f"layers.{i}.residual_group.overlap_attn.relative_position_bias_table")[1:2]
             for i in range(len(depths))]
    if any(len(h) != 1 or h[0] < 1 or dim % h[0] for h in heads) or min(cr, sq, hidden, oca_hidden) < 1:
        return None
    heads_ = [h[0] for h in heads]
    if max(heads_) * ws * ws * ows * ows > MAX_BIAS:
        raise ModelLoadError(f"the state dict describes a hat with {max(heads_)} heads on {ws}x{ws} windows "
                             f"overlapping to {ows}x{ows}; srzoo converts position biases up to {MAX_BIAS} "
                             "values per group (published models: under a million)")
    qkv_bias = f"{p0}.blocks.0.attn.qkv.bias" in sd
    patch_norm = "patch_embed.norm.weight" in sd
    want: dict[str, tuple[int, ...]] = {"norm.weight": (dim,), "norm.bias": (dim,), "conv_first.bias": (dim,)}
    if patch_norm:
        want.update({"patch_embed.norm.weight": (dim,), "patch_embed.norm.bias": (dim,)})
    conv = "conv_after_body.weight" in sd
    for i, d in enumerate(depths):
        g, h = f"layers.{i}.residual_group", heads_[i]
        for j in range(d):
            b = f"{g}.blocks.{j}"
            want.update(_swin.block_shapes(sd, b, dim, h, ws, hidden))
            if qkv_bias:
                want[f"{b}.attn.qkv.bias"] = (3 * dim,)
            want.update({f"{b}.conv_block.cab.0.weight": (cr, dim, 3, 3), f"{b}.conv_block.cab.0.bias": (cr,),
                         f"{b}.conv_block.cab.2.weight": (dim, cr, 3, 3), f"{b}.conv_block.cab.2.bias": (dim,),
                         f"{b}.conv_block.cab.3.attention.1.weight": (sq, dim, 1, 1),
                         f"{b}.conv_block.cab.3.attention.1.bias": (sq,),
                         f"{b}.conv_block.cab.3.attention.3.weight": (dim, sq, 1, 1),
                         f"{b}.conv_block.cab.3.attention.3.bias": (dim,)})
        o = f"{g}.overlap_attn"
        want.update({f"{o}.norm1.weight": (dim,), f"{o}.norm1.bias": (dim,), f"{o}.norm2.weight": (dim,),
                     f"{o}.norm2.bias": (dim,), f"{o}.qkv.weight": (3 * dim, dim), f"{o}.proj.weight": (dim, dim),
                     f"{o}.proj.bias": (dim,), f"{o}.relative_position_bias_table": ((ws + ows - 1) ** 2, h),
                     f"{o}.mlp.fc1.weight": (oca_hidden, dim), f"{o}.mlp.fc1.bias": (oca_hidden,),
                     f"{o}.mlp.fc2.weight": (dim, oca_hidden), f"{o}.mlp.fc2.bias": (dim,)})
        if qkv_bias:
            want[f"{o}.qkv.bias"] = (3 * dim,)
        if conv:  # resi_connection 1conv: every group's conv and conv_after_body; identity: none
            want.update({f"layers.{i}.conv.weight": (dim, dim, 3, 3), f"layers.{i}.conv.bias": (dim,)})
        elif f"layers.{i}.conv.weight" in sd:
            return None
    if conv:
        want.update({"conv_after_body.weight": (dim, dim, 3, 3), "conv_after_body.bias": (dim,)})
    if "upsample.0.weight" in sd:
        up = pixelshuffle_shapes(sd, dim, cin)
        if up is None:
            return None
        s, nf, shapes = up
        want.update(shapes)
    else:  # x1: conv_before_upsample straight into conv_last
        s, last = 1, _shape(sd, "conv_last.weight")
        if len(last) != 4:
            return None
        nf = last[1]
        want.update({"conv_before_upsample.0.weight": (nf, dim, 3, 3), "conv_before_upsample.0.bias": (nf,),
                     "conv_last.weight": (cin, nf, 3, 3), "conv_last.bias": (cin,)})
    if (scale is not None and scale != s) or not _swin.shapes_match(sd, want):
        return None
    params: dict[str, Any] = {"embed_dim": dim, "depths": depths, "heads": heads_, "window": ws,
                              "overlap_window": ows, "mlp_hidden": hidden, "compress": cr, "squeeze": sq,
                              "num_feat": nf, "resi_connection": "1conv" if conv else "identity",
                              "patch_norm": patch_norm, "size": _size(depths, dim, cr)}
    # reflection padding of up to ws-1 rows needs at least ws of them
    return Arch("hat", s, in_channels=cin, out_channels=cin, min_size=max(ws, 8), params=params)


def _size(depths: list[int], dim: int, cr: int) -> str:
    """spandrel's size tag: large from 9 groups on, else small when ``dim/compress`` is below 4."""
    return "large" if len(depths) >= 9 else ("small" if cr * 4 < dim else "medium")


def _cab(F: Any, sd: Mapping[str, np.ndarray], p: str, img: Any) -> Any:
    h = _conv(F, sd, f"{p}.cab.2", F.gelu(_conv(F, sd, f"{p}.cab.0", img)))
    a = F.relu(_conv(F, sd, f"{p}.cab.3.attention.1", F.global_mean(h)))
    return F.mul(h, F.sigmoid(_conv(F, sd, f"{p}.cab.3.attention.3", a)))


def _hab(F: Any, sd: Mapping[str, np.ndarray], p: str, t: Any, like: Any, dim: int, heads: int, ws: int,
         shift: int, mask: Any) -> Any:
    h = F.layer_norm(t, weight(sd, f"{p}.norm1.weight"), weight(sd, f"{p}.norm1.bias"), 1e-5)
    img = F.from_tokens(h, like)
    conv = F.affine(F.to_tokens(_cab(F, sd, f"{p}.conv_block", img)), CONV_SCALE)
    if shift:
        img = F.roll(img, -shift, -shift)
    a = _swin.attention(F, sd, f"{p}.attn", F.window_partition(img, ws, ws), dim, heads, ws, mask if shift else None)
    img = F.window_reverse(a, ws, ws, like)
    if shift:
        img = F.roll(img, shift, shift)
    t = F.add(F.add(t, F.to_tokens(img)), conv)
    h = F.layer_norm(t, weight(sd, f"{p}.norm2.weight"), weight(sd, f"{p}.norm2.bias"), 1e-5)
    return F.add(t, _swin.mlp(F, sd, f"{p}.mlp", h))


def _ocab(F: Any, sd: Mapping[str, np.ndarray], p: str, t: Any, like: Any, dim: int, heads: int, ws: int,
          ows: int) -> Any:
    hd = dim // heads
    h = F.layer_norm(t, weight(sd, f"{p}.norm1.weight"), weight(sd, f"{p}.norm1.bias"), 1e-5)
    wq = weight(sd, f"{p}.qkv.weight")
    bq = weight(sd, f"{p}.qkv.bias") if f"{p}.qkv.bias" in sd else np.zeros(3 * dim, np.float32)
    q = F.linear(h, wq[:dim] * hd ** -0.5, bq[:dim] * hd ** -0.5)
    k = F.from_tokens(F.linear(h, wq[dim:2 * dim], bq[dim:2 * dim]), like)
    v = F.from_tokens(F.linear(h, wq[2 * dim:], bq[2 * dim:]), like)
    q = F.window_partition(F.from_tokens(q, like), ws, ws)                 # [B*nW, ws*ws, C]
    k, v = F.overlap_windows(k, ws, ows), F.overlap_windows(v, ws, ows)    # [B*nW, ows*ows, C]
    q = F.transpose(F.reshape(q, [0, 0, heads, hd]), (0, 2, 1, 3))
    k = F.transpose(F.reshape(k, [0, 0, heads, hd]), (0, 2, 3, 1))
    v = F.transpose(F.reshape(v, [0, 0, heads, hd]), (0, 2, 1, 3))
    a = F.affine(F.matmul(q, k), 1.0, oca_bias(weight(sd, f"{p}.relative_position_bias_table"), ws, ows))
    y = F.matmul(F.softmax(a, -1), v)
    y = F.reshape(F.transpose(y, (0, 2, 1, 3)), [0, 0, dim])
    y = F.to_tokens(F.window_reverse(y, ws, ws, like))
    t = F.add(F.linear(y, weight(sd, f"{p}.proj.weight"), weight(sd, f"{p}.proj.bias")), t)
    h = F.layer_norm(t, weight(sd, f"{p}.norm2.weight"), weight(sd, f"{p}.norm2.bias"), 1e-5)
    return F.add(t, _swin.mlp(F, sd, f"{p}.mlp", h))


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr, s = arch.params, arch.scale
    dim, ws, ows = pr["embed_dim"], pr["window"], pr["overlap_window"]
    mean = MEAN if arch.in_channels == 3 else np.zeros(arch.in_channels, np.float32)
    xp = F.pad_to_multiple(x, ws, ws, "reflect")
    feat = _conv(F, sd, "conv_first", F.affine(xp, 1.0, -mean))
    t = F.to_tokens(feat)
    if pr["patch_norm"]:
        t = F.layer_norm(t, weight(sd, "patch_embed.norm.weight"), weight(sd, "patch_embed.norm.bias"), 1e-5)
    shift = ws // 2
    mask = _swin.shift_mask(F, xp, ws, shift) if any(d > 1 for d in pr["depths"]) else None
    for i, depth in enumerate(pr["depths"]):
        t0, g = t, f"layers.{i}.residual_group"
        for j in range(depth):
            t = _hab(F, sd, f"{g}.blocks.{j}", t, feat, dim, pr["heads"][i], ws, shift if j % 2 else 0, mask)
        t = _ocab(F, sd, f"{g}.overlap_attn", t, feat, dim, pr["heads"][i], ws, ows)
        if pr["resi_connection"] == "1conv":
            t = F.to_tokens(_conv(F, sd, f"layers.{i}.conv", F.from_tokens(t, feat)))
        t = F.add(t, t0)
    t = F.layer_norm(t, weight(sd, "norm.weight"), weight(sd, "norm.bias"), 1e-5)
    res = F.from_tokens(t, feat)
    if pr["resi_connection"] == "1conv":
        res = _conv(F, sd, "conv_after_body", res)
    res = F.add(res, feat)
    y = pixelshuffle_up(F, sd, res, pr["num_feat"])  # at x1: conv_before_upsample, conv_last
    return F.crop_to(F.affine(y, 1.0, mean), x, s)
