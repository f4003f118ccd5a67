"""ATD (Adaptive Token Dictionary, Zhang et al., CVPR 2024): the OpenModelDB ``atd``
architecture (ATD and ATD-light, every upsampler of spandrel's implementation).

Keys: ``conv_first`` (3x3, in -> dim), ``patch_embed.norm`` (optional), residual groups
``layers.i``: a token dictionary ``residual_group.td`` (m x dim) and transformer layers
``residual_group.layers.j``, then ``layers.i.conv`` (1conv, or 3conv ``.0/.2/.4``) and a
skip; ``norm``, ``conv_after_body``, and SwinIR's upsamplers (``pixelshuffle``,
``pixelshuffledirect``, ``nearest+conv`` x4, none at x1: ``x + conv_last(body)``).

One layer, on ``h = LN1(t)`` with ``qkv = wqkv(h)``:

- window attention (W-MSA, odd layers shifted by half a window; :mod:`_swin`, bias table
  ``attn_win``) on ``qkv``;
- ATD_CA: ``sim = softmax(cos(wq h, wk td) * (1 + clamp(scale, 0, 1) * ln m))`` [B, N, m],
  output ``sim @ wv td``;
- AC-MSA: every token's category is the argmax of its ``sim`` row; the tokens are sorted by
  category (stably, see below), cut into groups of ``min(N, category_size)`` (the last one
  filled with the last tokens mirrored), attended within each group (``q k^T`` times
  ``exp(min(logit_scale, ln 100))``, no bias), put back in place and projected (``proj``);
- ``t + win + atd + aca``, then ``+ ConvFFN(LN2(.))`` (fc1, GELU, ``+ GELU(dwconv k x k)``,
  fc2); and, except in a group's last layer, the dictionary is refined:
  ``td = s td + (1 - s) softmax(IN(sim^T)) @ t`` with ``s = sigmoid(sigma)``.

Sorting: upstream calls ``torch.sort(tk_id, stable=False)`` on category ids, nearly all of
which tie; the order torch gives tied elements is implementation-defined (on torch 2.13's
CPU it equals the stable one only up to 16 tokens), so the graph sorts stably (the order a
stable sort and the parity tests, which patch upstream's sort to ``stable=True``, give),
counting ranks with one-hot sums instead of TopK, whose ties OpenVINO breaks otherwise.

``category_size`` is not in the state dict: 128 for the light model (``pixelshuffledirect``
and dim 48), else 256, as spandrel. Input ``x - mean`` (0.4488, 0.4371, 0.4040 for three
channels, else 0; none when the ``no_norm`` buffer is present; img_range 1). The graph pads
bottom/right by mirroring with the edge repeated (upstream's ``cat([x, flip(x)])``, not a
reflection) to a multiple of the window and crops the result. Refused:
``absolute_pos_embed`` (tied to the training size).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, _swin, weight
from srzoo.convert.arch.swinir import MEAN, _conv, _conv_keys, _resi, pixelshuffle_shapes, reconstruct

_LAYER = re.compile(r"^layers\.(\d+)\.residual_group\.layers\.(\d+)\.norm1\.weight$")
#: the largest token dictionary converted (published models: 64 to 128)
MAX_TOKENS = 1024


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(sd[key])) if key in sd else ()


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    p0 = "layers.0.residual_group"
    need = ("conv_first.weight", "conv_first.bias", "norm.weight", "norm.bias", f"{p0}.td",
            f"{p0}.layers.0.wqkv.weight", f"{p0}.layers.0.attn_atd.scale", f"{p0}.layers.0.attn_aca.logit_scale",
            f"{p0}.layers.0.attn_win.relative_position_bias_table", f"{p0}.layers.0.convffn.fc1.weight",
            f"{p0}.layers.0.convffn.dwconv.depthwise_conv.0.weight", f"{p0}.layers.0.attn_atd.wq.weight")
    if any(k not in sd for k in need) or "absolute_pos_embed" in sd:
        return None
    w0 = _shape(sd, "conv_first.weight")
    if len(w0) != 4 or w0[2:] != (3, 3):
        return None
    dim, cin = w0[0], w0[1]
    layers: dict[int, set[int]] = {}
    for k in sd:
        if m := _LAYER.match(k):
            layers.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not layers or sorted(layers) != list(range(len(layers))):
        return None
    depths = [len(layers[i]) for i in range(len(layers))]
    if any(sorted(layers[i]) != list(range(d)) for i, d in enumerate(depths)):
        return None
    t = _shape(sd, f"{p0}.layers.0.attn_win.relative_position_bias_table")
    if len(t) != 2:
        return None
    ws = (math.isqrt(t[0]) + 1) // 2
    if ws < 2 or (2 * ws - 1) ** 2 != t[0]:
        return None
    _swin.check_window("atd", ws)
    m = _shape(sd, f"{p0}.layers.0.attn_atd.scale")
    rc = _shape(sd, f"{p0}.layers.0.attn_atd.wq.weight")
    hidden = _shape(sd, f"{p0}.layers.0.convffn.fc1.weight")
    dw = _shape(sd, f"{p0}.layers.0.convffn.dwconv.depthwise_conv.0.weight")
    if len(m) != 1 or len(rc) != 2 or len(hidden) != 2 or len(dw) != 4 or not 1 <= m[0] <= MAX_TOKENS:
        return None
    m_, rc_, hid, k = m[0], rc[0], hidden[0], dw[2]
    if k % 2 == 0 or dw[3] != k or min(rc_, hid) < 1:
        return None
    heads = [_shape(sd, f"layers.{i}.residual_group.layers.0.attn_win.relative_position_bias_table")[1:2]
             for i in range(len(depths))]
    if any(len(h) != 1 or h[0] < 1 or dim % h[0] for h in heads):
        return None
    heads_ = [h[0] for h in heads]
    bias = f"{p0}.layers.0.wqkv.bias" in sd
    patch_norm = "patch_embed.norm.weight" in sd
    want: dict[str, tuple[int, ...]] = {"norm.weight": (dim,), "norm.bias": (dim,), "conv_first.bias": (dim,)}
    if patch_norm:
        want.update({"patch_embed.norm.weight": (dim,), "patch_embed.norm.bias": (dim,)})
    for i, d in enumerate(depths):
        g = f"layers.{i}.residual_group"
        want[f"{g}.td"] = (m_, dim)
        for j in range(d):
            p = f"{g}.layers.{j}"
            want.update({f"{p}.norm1.weight": (dim,), f"{p}.norm1.bias": (dim,), f"{p}.norm2.weight": (dim,),
                         f"{p}.norm2.bias": (dim,), f"{p}.wqkv.weight": (3 * dim, dim),
                         f"{p}.attn_win.relative_position_bias_table": ((2 * ws - 1) ** 2, heads_[i]),
                         f"{p}.attn_win.proj.weight": (dim, dim), f"{p}.attn_win.proj.bias": (dim,),
                         f"{p}.attn_atd.scale": (m_,), f"{p}.attn_atd.wq.weight": (rc_, dim),
                         f"{p}.attn_atd.wk.weight": (rc_, dim), f"{p}.attn_atd.wv.weight": (dim, dim),
                         f"{p}.attn_aca.logit_scale": (1, 1), f"{p}.attn_aca.proj.weight": (dim, dim),
                         f"{p}.convffn.fc1.weight": (hid, dim), f"{p}.convffn.fc1.bias": (hid,),
                         f"{p}.convffn.dwconv.depthwise_conv.0.weight": (hid, 1, k, k),
                         f"{p}.convffn.dwconv.depthwise_conv.0.bias": (hid,),
                         f"{p}.convffn.fc2.weight": (dim, hid), f"{p}.convffn.fc2.bias": (dim,)})
            if bias:
                want.update({f"{p}.wqkv.bias": (3 * dim,), f"{p}.attn_atd.wq.bias": (rc_,),
                             f"{p}.attn_atd.wk.bias": (rc_,), f"{p}.attn_atd.wv.bias": (dim,),
                             f"{p}.attn_aca.proj.bias": (dim,)})
            if j < d - 1:
                want.update({f"{p}.norm3.weight": (m_,), f"{p}.norm3.bias": (m_,), f"{p}.sigma": (m_, 1)})
        conv = _conv_keys(sd, f"layers.{i}.conv", dim)
        if conv is None:
            return None
        want.update(conv)
    conv = _conv_keys(sd, "conv_after_body", dim)
    if conv is None:
        return None
    want.update(conv)
    nf = dim
    if "conv_up1.weight" in sd:
        upsampler, s = "nearest+conv", 4
        nf = _shape(sd, "conv_before_upsample.0.weight")[:1][0] if "conv_before_upsample.0.weight" in sd else 0
        if nf < 1:
            return None
        want.update({"conv_before_upsample.0.weight": (nf, dim, 3, 3), "conv_before_upsample.0.bias": (nf,),
                     "conv_up1.weight": (nf, nf, 3, 3), "conv_up1.bias": (nf,), "conv_up2.weight": (nf, nf, 3, 3),
                     "conv_up2.bias": (nf,), "conv_hr.weight": (nf, nf, 3, 3), "conv_hr.bias": (nf,),
                     "conv_last.weight": (cin, nf, 3, 3), "conv_last.bias": (cin,)})
    elif "conv_before_upsample.0.weight" in sd:
        upsampler = "pixelshuffle"
        up = pixelshuffle_shapes(sd, dim, cin)
        if up is None:
            return None
        s, nf, shapes = up
        want.update(shapes)
    elif "conv_last.weight" in sd:
        upsampler, s = "none", 1
        want.update({"conv_last.weight": (cin, dim, 3, 3), "conv_last.bias": (cin,)})
    elif "upsample.0.weight" in sd:
        upsampler = "pixelshuffledirect"
        n = _shape(sd, "upsample.0.weight")[0]
        s = math.isqrt(n // cin)
        if s < 1 or s * s * cin != n:
            return None
        want.update({"upsample.0.weight": (n, dim, 3, 3), "upsample.0.bias": (n,)})
    else:
        return None
    if (scale is not None and scale != s) or not _swin.shapes_match(sd, want):
        return None
    light = upsampler == "pixelshuffledirect" and dim == 48
    params: dict[str, Any] = {"embed_dim": dim, "depths": depths, "heads": heads_, "window": ws, "tokens": m_,
                              "reduced_dim": rc_, "mlp_hidden": hid, "ffn_kernel": k, "upsampler": upsampler,
                              "num_feat": nf, "category_size": 128 if light else 256, "patch_norm": patch_norm,
                              "norm": "no_norm" not in sd, "size": "light" if light else "medium"}
    # mirroring adds at most H rows: at least a window of them
    return Arch("atd", s, in_channels=cin, out_channels=cin, min_size=max(ws, 8), params=params)


def _linear(F: Any, sd: Mapping[str, np.ndarray], p: str, t: Any, scale: float = 1.0) -> Any:
    b = weight(sd, f"{p}.bias") if f"{p}.bias" in sd else None
    return F.linear(t, weight(sd, f"{p}.weight") * scale, None if b is None else b * scale)


def _aca(F: Any, sd: Mapping[str, np.ndarray], p: str, h: Any, sim: Any, dim: int, heads: int, m: int,
         cs: int) -> Any:
    """AC-MSA of layer ``p`` on ``h`` = LN1(t) with the categories of ``sim``."""
    hd = dim // heads
    wq = weight(sd, f"{p}.wqkv.weight")
    bq = weight(sd, f"{p}.wqkv.bias") if f"{p}.wqkv.bias" in sd else np.zeros(3 * dim, np.float32)
    ls = float(np.exp(min(float(weight(sd, f"{p}.attn_aca.logit_scale").reshape(-1)[0]), math.log(100.0))))
    perm, rank = F.category_order(sim, m)
    q, k, v = (F.group_tokens(F.linear(h, wq[i * dim:(i + 1) * dim] * (ls if i == 0 else 1.0),
                                       bq[i * dim:(i + 1) * dim] * (ls if i == 0 else 1.0)), perm, cs)
               for i in range(3))                                                # [B, ng, gs, C]
    q = F.transpose(F.reshape(q, [0, 0, 0, heads, hd]), (0, 1, 3, 2, 4))         # [B, ng, h, gs, hd]
    k = F.transpose(F.reshape(k, [0, 0, 0, heads, hd]), (0, 1, 3, 4, 2))         # [B, ng, h, hd, gs]
    v = F.transpose(F.reshape(v, [0, 0, 0, heads, hd]), (0, 1, 3, 2, 4))
    y = F.matmul(F.softmax(F.matmul(q, k), -1), v)
    y = F.reshape(F.transpose(y, (0, 1, 3, 2, 4)), [0, 0, 0, dim])               # [B, ng, gs, C]
    return _linear(F, sd, f"{p}.attn_aca.proj", F.ungroup_tokens(y, rank))


def _layer(F: Any, sd: Mapping[str, np.ndarray], p: str, t: Any, td: Any, like: Any, pr: dict[str, Any],
           heads: int, shift: int, mask: Any, last: bool) -> tuple[Any, Any]:
    """One ATD transformer layer; ``td`` is None for the group's dictionary as stored."""
    dim, ws, m = pr["embed_dim"], pr["window"], pr["tokens"]
    h = F.layer_norm(t, weight(sd, f"{p}.norm1.weight"), weight(sd, f"{p}.norm1.bias"), 1e-5)
    # ATD_CA
    td0 = weight(sd, p.rsplit(".layers.", 1)[0] + ".td")
    a = f"{p}.attn_atd"
    temp = (1.0 + np.clip(weight(sd, f"{a}.scale"), 0.0, 1.0) * np.log(m)).reshape(1, m)
    q = F.l2_normalize(_linear(F, sd, f"{a}.wq", h))
    if td is None:
        wk, bk = weight(sd, f"{a}.wk.weight"), (weight(sd, f"{a}.wk.bias") if f"{a}.wk.bias" in sd else 0.0)
        kk = td0 @ wk.T + bk
        kk = kk / np.maximum(np.sqrt((kk * kk).sum(-1, keepdims=True)), 1e-12)
        sim = F.softmax(F.linear(q, kk * temp.T), -1)                                # [B, N, m]
        wv, bv = weight(sd, f"{a}.wv.weight"), (weight(sd, f"{a}.wv.bias") if f"{a}.wv.bias" in sd else 0.0)
        x_atd = F.linear(sim, (td0 @ wv.T + bv).T)
    else:
        kk = F.transpose(F.l2_normalize(_linear(F, sd, f"{a}.wk", td)), (0, 2, 1))
        sim = F.softmax(F.affine(F.matmul(q, kk), temp), -1)
        x_atd = F.matmul(sim, _linear(F, sd, f"{a}.wv", td))
    # AC-MSA
    x_aca = _aca(F, sd, p, h, sim, dim, heads, m, pr["category_size"])
    # (S)W-MSA on the shared qkv
    view = {"w.qkv.weight": weight(sd, f"{p}.wqkv.weight"), "w.proj.weight": weight(sd, f"{p}.attn_win.proj.weight"),
            "w.proj.bias": weight(sd, f"{p}.attn_win.proj.bias"),
            "w.relative_position_bias_table": weight(sd, f"{p}.attn_win.relative_position_bias_table")}
    if f"{p}.wqkv.bias" in sd:
        view["w.qkv.bias"] = weight(sd, f"{p}.wqkv.bias")
    img = F.from_tokens(h, like)
    if shift:
        img = F.roll(img, -shift, -shift)
    win = _swin.attention(F, view, "w", F.window_partition(img, ws, ws), dim, heads, ws, mask if shift else None)
    img = F.window_reverse(win, ws, ws, like)
    if shift:
        img = F.roll(img, shift, shift)
    t = F.add(F.add(F.add(t, F.to_tokens(img)), x_atd), x_aca)
    # ConvFFN
    c = f"{p}.convffn"
    f = F.gelu(_linear(F, sd, f"{c}.fc1", F.layer_norm(t, weight(sd, f"{p}.norm2.weight"),
                                                        weight(sd, f"{p}.norm2.bias"), 1e-5)))
    dw = F.gelu(F.conv(F.from_tokens(f, like), weight(sd, f"{c}.dwconv.depthwise_conv.0.weight"),
                       weight(sd, f"{c}.dwconv.depthwise_conv.0.bias"), groups=pr["mlp_hidden"]))
    t = F.add(t, _linear(F, sd, f"{c}.fc2", F.add(f, F.to_tokens(dw))))
    if last:
        return t, td
    # adaptive token refinement
    w3 = weight(sd, f"{p}.norm3.weight").reshape(m, 1)
    b3 = weight(sd, f"{p}.norm3.bias").reshape(m, 1)
    mask_soft = F.softmax(F.affine(F.normalize_last(F.transpose(sim, (0, 2, 1)), 1e-5), w3, b3), -1)
    s = 1.0 / (1.0 + np.exp(-weight(sd, f"{p}.sigma").astype(np.float64)))            # (m, 1)
    upd = F.matmul(mask_soft, t)                                                      # [B, m, C]
    if td is None:
        td = F.affine(upd, (1.0 - s).astype(np.float32), (s * td0).astype(np.float32))
    else:
        td = F.add(F.affine(td, s.astype(np.float32)), F.affine(upd, (1.0 - s).astype(np.float32)))
    return t, td


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr, s = arch.params, arch.scale
    ws = pr["window"]
    mean = (MEAN if arch.in_channels == 3 else np.zeros(arch.in_channels, np.float32)) if pr["norm"] \
        else np.zeros(arch.in_channels, np.float32)
    xp = F.pad_symmetric_to_multiple(x, ws, ws)
    xn = F.affine(xp, 1.0, -mean)
    feat = _conv(F, sd, "conv_first", xn)
    t = F.to_tokens(feat)
    if pr["patch_norm"]:
        t = F.layer_norm(t, weight(sd, "patch_embed.norm.weight"), weight(sd, "patch_embed.norm.bias"), 1e-5)
    shift = ws // 2
    mask = _swin.shift_mask(F, xp, ws, shift) if any(d > 1 for d in pr["depths"]) else None
    for i, depth in enumerate(pr["depths"]):
        t0, td = t, None
        for j in range(depth):
            t, td = _layer(F, sd, f"layers.{i}.residual_group.layers.{j}", t, td, feat, pr, pr["heads"][i],
                           shift if j % 2 else 0, mask, j == depth - 1)
        t = F.add(F.to_tokens(_resi(F, sd, f"layers.{i}.conv", F.from_tokens(t, feat))), t0)
    t = F.layer_norm(t, weight(sd, "norm.weight"), weight(sd, "norm.bias"), 1e-5)
    res = F.add(_resi(F, sd, "conv_after_body", F.from_tokens(t, feat)), feat)
    y = reconstruct(F, sd, pr["upsampler"], res, xn, s, pr.get("num_feat"))
    return F.crop_to(F.affine(y, 1.0, mean), x, s)
