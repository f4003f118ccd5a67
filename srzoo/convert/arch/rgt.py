"""RGT (Recursive Generalization Transformer, Chen et al., ICLR 2024): the OpenModelDB
``rgt`` architecture (RGT and RGT-S).

The frame is DAT's (:mod:`srzoo.convert.arch.dat`): ``conv_first``, ``before_RG.1``
LayerNorm, residual groups ``layers.i`` (blocks, then ``conv`` 1conv/3conv), ``norm``,
``conv_after_body``, ``conv_before_upsample.0`` + LeakyReLU 0.01, ``upsample`` (pixel
shuffle by 2 per step or one by 3), ``conv_last``; the DIV2K mean for 3 channels, img_range 1.

Block ``j``: ``y = x + attn(norm1(x))``, ``y = y + mlp(norm2(y))``, then ``y + gamma * x``
(layer scale of the block's input). Even ``j``: L-SA, DAT's two-branch split-window
attention (zero padding to the larger window side, shifted windows and mask in the same
blocks, relative position bias from the same MLP), plus a depthwise 3x3 conv of ``v``
(``get_v``), then ``proj``. Odd ``j``: RG-SA, attention of every pixel to a map reduced
16 times: the depthwise 4x4 stride-4 ``reduction1`` applied twice, ``dwconv`` 3x3 and a
1x1 ``conv`` to ``cr`` channels, LayerNorm + GELU; ``q`` (``cr`` channels) from the
pixels, ``k`` (``cr``) and ``v`` (``C``) from the reduced map, ``v`` plus its depthwise
``cpe``; ``softmax(q k^T (C/heads * cr/C)^-0.5) v``, ``proj``. Upstream reduces twice
for inputs below 1024 pixels a side (three times from 1024, four from 4096): the graph
reduces twice, so a side must stay below 1024 (srzoo's tiles do), and at least 16.
The MLP is DAT's SGFN (``mlp.fc1``, ``mlp.sg``, ``mlp.fc2``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight
from srzoo.convert.arch import _dat
from srzoo.convert.arch.dat import EPS_LN, MEAN, _shape, trunk

_NEED = ("conv_first.weight", "before_RG.1.weight", "layers.0.blocks.0.attn.qkv.weight",
         "layers.0.blocks.0.attn.get_v.weight", "layers.0.blocks.0.attn.attns.0.rpe_biases",
         "layers.0.blocks.0.mlp.sg.conv.weight", "layers.0.blocks.0.gamma", "norm.weight", "conv_last.weight",
         "conv_before_upsample.0.weight")
#: the largest input side the graph reproduces upstream at (two reductions by 4)
MAX_SIDE = 1023


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if not all(k in sd for k in _NEED):
        return None
    found = trunk(sd)
    if found is None:
        return None
    dim, cin, depths, split = found
    nf_shape = _shape(sd, "conv_before_upsample.0.weight")
    if nf_shape is None or len(nf_shape) != 4 or nf_shape[1] != dim:
        return None
    nf = nf_shape[0]
    steps, s = 0, 1
    while f"upsample.{2 * steps}.weight" in sd:
        sh = _shape(sd, f"upsample.{2 * steps}.weight")
        if sh not in ((4 * nf, nf, 3, 3), (9 * nf, nf, 3, 3)) or steps > 4 or (s > 1 and sh[0] == 9 * nf):
            return None
        s *= 2 if sh[0] == 4 * nf else 3
        steps += 1
    if _shape(sd, "conv_last.weight") != (cin, nf, 3, 3) or (scale is not None and scale != s):
        return None
    hid = _shape(sd, "layers.0.blocks.0.mlp.fc1.weight")
    if hid is None or hid[1] != dim or hid[0] % 2:
        return None
    heads = []  # spandrel's rule: twice L-SA's per-branch count, plus one where dim is not divisible by it
    for i in range(len(depths)):
        h3 = _shape(sd, f"layers.{i}.blocks.0.attn.attns.0.pos.pos3.2.weight")
        if h3 is None or len(h3) != 2 or h3[0] < 1:
            return None
        heads.append(2 * h3[0] if dim % (2 * h3[0]) == 0 else 2 * h3[0] + 1)
    cr = next((_shape(sd, f"layers.{i}.blocks.1.attn.conv.weight")[0] for i, d in enumerate(depths) if d > 1),
              dim // 2)
    resi = "1conv" if "conv_after_body.weight" in sd else "3conv"
    params: dict[str, Any] = {"dim": dim, "depths": depths, "heads": heads, "split": list(split), "ffn": hid[0],
                              "cr": int(cr), "resi": resi, "num_feat": nf,
                              "qkv_bias": "layers.0.blocks.0.attn.qkv.bias" in sd}
    if not _shapes_ok(sd, params):
        return None
    return Arch("rgt", s, in_channels=cin, out_channels=cin, min_size=16, params=params)


def _shapes_ok(sd: Mapping[str, np.ndarray], pr: dict[str, Any]) -> bool:
    c, hid, cr = pr["dim"], pr["ffn"], pr["cr"]
    if c < 4 or c % 2 or hid % 2 or cr < 1:
        return False
    s0, s1 = pr["split"]
    want: dict[str, tuple[int, ...]] = {"before_RG.1.weight": (c,), "norm.weight": (c,)}
    for i, depth in enumerate(pr["depths"]):
        heads = pr["heads"][i]
        if c % heads or cr % heads or (c // 2) % (heads // 2 or 1):
            return False
        want[f"layers.{i}.conv.weight" if pr["resi"] == "1conv" else f"layers.{i}.conv.4.weight"] = (
            (c, c, 3, 3) if pr["resi"] == "1conv" else (c, c // 4, 3, 3))
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}"
            a = f"{p}.attn"
            want.update({f"{p}.norm1.weight": (c,), f"{p}.norm2.weight": (c,), f"{p}.gamma": (c,),
                         f"{p}.mlp.fc1.weight": (hid, c), f"{p}.mlp.sg.norm.weight": (hid // 2,),
                         f"{p}.mlp.sg.conv.weight": (hid // 2, 1, 3, 3), f"{p}.mlp.fc2.weight": (c, hid // 2),
                         f"{a}.proj.weight": (c, c)})
            if j % 2:
                want.update({f"{a}.reduction1.weight": (c, 1, 4, 4), f"{a}.dwconv.weight": (c, 1, 3, 3),
                             f"{a}.conv.weight": (cr, c, 1, 1), f"{a}.norm_act.0.weight": (cr,),
                             f"{a}.q.weight": (cr, c), f"{a}.k.weight": (cr, cr), f"{a}.v.weight": (c, cr),
                             f"{a}.cpe.weight": (c, 1, 3, 3)})
                continue
            want.update({f"{a}.qkv.weight": (3 * c, c), f"{a}.get_v.weight": (c, 1, 3, 3)})
            for br in (0, 1):
                q = f"{a}.attns.{br}.pos"
                pp = _shape(sd, f"{q}.pos_proj.weight")
                if pp is None or len(pp) != 2 or pp[1] != 2:
                    return False
                pd = pp[0]
                want.update({f"{q}.pos3.2.weight": (heads // 2, pd), f"{a}.attns.{br}.rpe_biases":
                             ((2 * s0 - 1) * (2 * s1 - 1), 2)})
                for k in ("pos1", "pos2", "pos3"):
                    want[f"{q}.{k}.0.weight"] = (pd,)
                for k in ("pos1", "pos2"):
                    want[f"{q}.{k}.2.weight"] = (pd, pd)
    return all(k in sd and tuple(int(d) for d in sd[k].shape) == v for k, v in want.items())


def _rg_sa(F: Any, sd: Mapping[str, np.ndarray], pr: dict[str, Any], rg: int, p: str, x: Any) -> Any:
    c, cr, heads = pr["dim"], pr["cr"], pr["heads"][rg]
    scale = ((c // heads) * (cr / c)) ** -0.5
    r = x
    for _ in range(2):
        r = _dat.conv(F, sd, f"{p}.reduction1", r, stride=4, pad=0, groups=c)
    r = _dat.conv(F, sd, f"{p}.conv", _dat.conv(F, sd, f"{p}.dwconv", r, groups=c))
    rt = F.gelu(F.layer_norm(F.to_tokens(r), weight(sd, f"{p}.norm_act.0.weight"),
                             weight(sd, f"{p}.norm_act.0.bias"), EPS_LN))  # (B, n, cr)
    qb = weight(sd, f"{p}.q.bias") * scale if f"{p}.q.bias" in sd else None
    q = F.linear(F.to_tokens(x), weight(sd, f"{p}.q.weight") * scale, qb)
    q = F.transpose(F.reshape(q, [0, 0, heads, cr // heads]), [0, 2, 1, 3])  # (B, heads, N, cr/heads)
    k = F.linear(rt, weight(sd, f"{p}.k.weight"), weight(sd, f"{p}.k.bias") if f"{p}.k.bias" in sd else None)
    k = F.transpose(F.reshape(k, [0, 0, heads, cr // heads]), [0, 2, 3, 1])  # (B, heads, cr/heads, n)
    v = F.linear(rt, weight(sd, f"{p}.v.weight"), weight(sd, f"{p}.v.bias") if f"{p}.v.bias" in sd else None)
    vimg = F.from_tokens(v, r)
    vimg = F.add(vimg, _dat.conv(F, sd, f"{p}.cpe", vimg, groups=c))
    v = F.transpose(F.reshape(vimg, [0, heads, c // heads, -1]), [0, 1, 3, 2])  # (B, heads, n, C/heads)
    o = F.matmul(F.softmax(F.matmul(q, k), -1), v)
    o = F.reshape(F.transpose(o, [0, 2, 1, 3]), [0, 0, -1])  # (B, N, C)
    return _dat.linear1x1(F, sd, f"{p}.proj", F.from_tokens(o, x))


def _block(F: Any, sd: Mapping[str, np.ndarray], pr: dict[str, Any], rg: int, b: int, x: Any) -> Any:
    p = f"layers.{rg}.blocks.{b}"
    h = F.layer_norm_channels(x, weight(sd, f"{p}.norm1.weight"), weight(sd, f"{p}.norm1.bias"), EPS_LN)
    if b % 2 == 0:
        att, v = _dat.windowed(F, sd, pr, f"{p}.attn", _dat.shifted(rg, b), h)
        a = _dat.linear1x1(F, sd, f"{p}.attn.proj", F.add(att, _dat.conv(F, sd, f"{p}.attn.get_v", v,
                                                                          groups=pr["dim"])))
    else:
        a = _rg_sa(F, sd, pr, rg, f"{p}.attn", h)
    y = F.add(x, a)
    h = F.layer_norm_channels(y, weight(sd, f"{p}.norm2.weight"), weight(sd, f"{p}.norm2.bias"), EPS_LN)
    y = F.add(y, _dat.sgfn(F, sd, f"{p}.mlp", h))
    return F.add(y, F.affine(x, weight(sd, f"{p}.gamma")))


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr = arch.params
    mean = MEAN if arch.in_channels == 3 else np.zeros(arch.in_channels, np.float32)
    x = F.affine(x, 1.0, -mean)
    feat = _dat.conv(F, sd, "conv_first", x)
    h = F.layer_norm_channels(feat, weight(sd, "before_RG.1.weight"), weight(sd, "before_RG.1.bias"), EPS_LN)
    for i, depth in enumerate(pr["depths"]):
        res = h
        for j in range(depth):
            h = _block(F, sd, pr, i, j, h)
        h = F.add(res, _dat.resi(F, sd, f"layers.{i}.conv", pr["resi"], h))
    h = F.layer_norm_channels(h, weight(sd, "norm.weight"), weight(sd, "norm.bias"), EPS_LN)
    h = F.add(_dat.resi(F, sd, "conv_after_body", pr["resi"], h), feat)
    h = F.lrelu(_dat.conv(F, sd, "conv_before_upsample.0", h), 0.01)
    k = 0
    while f"upsample.{k}.weight" in sd:
        w = weight(sd, f"upsample.{k}.weight")
        r = 2 if w.shape[0] == 4 * w.shape[1] else 3
        h = F.pixel_shuffle(_dat.conv(F, sd, f"upsample.{k}", h), r, channels=int(w.shape[0]))
        k += 2
    h = _dat.conv(F, sd, "conv_last", h)
    return F.affine(h, 1.0, mean)
