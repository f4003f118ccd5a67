"""The parts of DAT (:mod:`srzoo.convert.arch.dat`): its blocks, built from the shared
operations of :class:`srzoo.convert.onnxbuild.Graph` / :mod:`srzoo.convert.reference`,
the constants computed at conversion time (BatchNorms folded into convs, the relative
position bias) and the shifted-window mask, which depends on the padded input size and
so is built in the graph at run time."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import weight
from srzoo.convert.onnxbuild import Graph

EPS_LN = 1e-5
EPS_BN = 1e-5
MASK = -100.0  # upstream's value for token pairs from different regions of a shifted window


def conv(F: Any, sd: Mapping[str, np.ndarray], prefix: str, x: Any, **kw: Any) -> Any:
    b = f"{prefix}.bias"
    return F.conv(x, weight(sd, f"{prefix}.weight"), weight(sd, b) if b in sd else None, **kw)


def folded(sd: Mapping[str, np.ndarray], conv_: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """The conv ``conv_`` followed by the eval-mode BatchNorm ``bn`` as one conv."""
    w = weight(sd, f"{conv_}.weight").astype(np.float64)
    b = weight(sd, f"{conv_}.bias").astype(np.float64) if f"{conv_}.bias" in sd else np.zeros(w.shape[0])
    k = weight(sd, f"{bn}.weight") / np.sqrt(weight(sd, f"{bn}.running_var").astype(np.float64) + EPS_BN)
    bias = (b - weight(sd, f"{bn}.running_mean")) * k + weight(sd, f"{bn}.bias")
    return (w * k.reshape(-1, 1, 1, 1)).astype(np.float32), bias.astype(np.float32)


def _fconv(F: Any, sd: Mapping[str, np.ndarray], conv_: str, bn: str, x: Any, **kw: Any) -> Any:
    w, b = folded(sd, conv_, bn)
    return F.conv(x, w, b, **kw)


def linear1x1(F: Any, sd: Mapping[str, np.ndarray], prefix: str, x: Any) -> Any:
    """torch Linear on every pixel of an NCHW map (a 1x1 conv)."""
    w = weight(sd, f"{prefix}.weight")
    b = f"{prefix}.bias"
    return F.conv(x, w.reshape(*w.shape, 1, 1), weight(sd, b) if b in sd else None)


def resi(F: Any, sd: Mapping[str, np.ndarray], prefix: str, kind: str, x: Any) -> Any:
    if kind == "1conv":
        return conv(F, sd, prefix, x)
    h = F.lrelu(conv(F, sd, f"{prefix}.0", x), 0.2)
    h = F.lrelu(conv(F, sd, f"{prefix}.2", h), 0.2)
    return conv(F, sd, f"{prefix}.4", h)


def shifted(rg: int, b: int) -> bool:
    """Whether upstream shifts the windows of block ``b`` of residual group ``rg``."""
    return (rg % 2 == 0 and b > 0 and (b - 2) % 4 == 0) or (rg % 2 != 0 and b % 4 == 0)


# -- relative position bias (a constant) ----------------------------------------
def _ln(t: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = t - t.mean(-1, keepdims=True)
    return d / np.sqrt((d * d).mean(-1, keepdims=True) + EPS_LN) * w + b


def position_bias(sd: Mapping[str, np.ndarray], prefix: str, wh: int, ww: int) -> np.ndarray:
    """``[heads, N, N]``: DynamicPosBias (no residual) of the window offsets, gathered by
    the relative position index (both recomputed from the window size, as upstream builds
    its buffers)."""
    def lin(t: np.ndarray, key: str) -> np.ndarray:
        return t @ weight(sd, f"{key}.weight").astype(np.float64).T + weight(sd, f"{key}.bias")

    dh, dw = np.meshgrid(np.arange(1 - wh, wh), np.arange(1 - ww, ww), indexing="ij")
    pos = lin(np.stack([dh.ravel(), dw.ravel()], 1).astype(np.float64), f"{prefix}.pos_proj")
    for k in ("pos1", "pos2", "pos3"):
        pos = _ln(pos, weight(sd, f"{prefix}.{k}.0.weight"), weight(sd, f"{prefix}.{k}.0.bias"))
        pos = lin(np.maximum(pos, 0), f"{prefix}.{k}.2")
    ch, cw = np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")
    ch, cw = ch.ravel(), cw.ravel()
    index = (ch[:, None] - ch[None, :] + wh - 1) * (2 * ww - 1) + (cw[:, None] - cw[None, :] + ww - 1)
    return pos[index].transpose(2, 0, 1).astype(np.float32)


# -- the shifted-window mask (from the padded size, at run time) ------------------
def _labels(n: int, win: int, shift: int) -> np.ndarray:
    """Upstream's region of each row: 0 up to ``n - win``, 1 up to ``n - shift``, then 2
    (with shift 0 the last slice ``[-0:]`` is everything: one region)."""
    if shift == 0:
        return np.zeros(n)
    d = n - np.arange(n)  # distance from the end, 1 for the last row
    return (d <= win).astype(np.float64) + (d <= shift)


def shift_mask(F: Any, x: Any, wh: int, ww: int, sh: int, sw: int) -> Any:
    """``[B*nW, 1, N, N]``: ``MASK`` between tokens of a window that upstream's
    ``calculate_mask`` puts in different regions, else 0; ``x`` is the padded NCHW map."""
    if isinstance(F, Graph):
        return _shift_mask_graph(F, x, wh, ww, sh, sw)
    b, _, h, w = x.shape
    lab = 3 * _labels(h, wh, sh)[:, None] + _labels(w, ww, sw)[None, :]
    lab = np.broadcast_to(lab, (b, 1, h, w))
    win = lab.reshape(b, 1, h // wh, wh, w // ww, ww).transpose(0, 2, 4, 3, 5, 1).reshape(-1, wh * ww)
    m = np.where(win[:, None, :] != win[:, :, None], MASK, 0.0)[:, None]
    return F.input(m.astype(np.float32))


def _shift_mask_graph(g: Graph, x: str, wh: int, ww: int, sh: int, sw: int) -> str:
    f32 = g.onnx.TensorProto.FLOAT
    ones = g.node("Add", [g.node("Mul", [g.channels(x, 0, 1), g.const(np.float32(0), "k")]),
                          g.const(np.float32(1), "k")])  # (B, 1, H, W)

    def labels(axis: int, win: int, shift: int) -> str | None:
        if shift == 0:
            return None
        ax = g.const(np.array(axis, np.int64), "axis")
        size = g.node("ReduceSum", [ones, g.const(np.array([axis], np.int64), "axes")], keepdims=1)
        d = g.node("Add", [g.node("Sub", [size, g.node("CumSum", [ones, ax])]), g.const(np.float32(1), "k")])
        a = g.node("Cast", [g.node("Less", [d, g.const(np.float32(win + 0.5), "k")])], to=f32)
        b = g.node("Cast", [g.node("Less", [d, g.const(np.float32(shift + 0.5), "k")])], to=f32)
        return g.node("Add", [a, b])
    rows, cols = labels(2, wh, sh), labels(3, ww, sw)
    lab = ones
    if rows is not None:
        lab = g.node("Mul", [rows, g.const(np.float32(3), "k")])
    if cols is not None:
        lab = cols if rows is None else g.node("Add", [lab, cols])
    win = g.window_partition(lab, wh, ww)  # (B*nW, N, 1)
    diff = g.node("Abs", [g.node("Sub", [win, g.transpose(win, [0, 2, 1])])])
    m = g.node("Mul", [g.node("Min", [diff, g.const(np.float32(1), "k")]), g.const(np.float32(MASK), "k")])
    return g.node("Unsqueeze", [m, g.const(np.array([1], np.int64), "axes")])


# -- the blocks -----------------------------------------------------------------
def _interactions(F: Any, sd: Mapping[str, np.ndarray], p: str, pooled_from: Any, spatial_from: Any) -> tuple[Any, Any]:
    cm = _fconv(F, sd, f"{p}.channel_interaction.1", f"{p}.channel_interaction.2", F.global_mean(pooled_from))
    cm = conv(F, sd, f"{p}.channel_interaction.4", F.gelu(cm))
    sm = _fconv(F, sd, f"{p}.spatial_interaction.0", f"{p}.spatial_interaction.1", spatial_from)
    sm = conv(F, sd, f"{p}.spatial_interaction.3", F.gelu(sm))
    return F.sigmoid(cm), F.sigmoid(sm)


def _dwconv_v(F: Any, sd: Mapping[str, np.ndarray], p: str, v: Any, c: int) -> Any:
    return F.gelu(_fconv(F, sd, f"{p}.dwconv.0", f"{p}.dwconv.1", v, groups=c))


def spatial_attention(F: Any, sd: Mapping[str, np.ndarray], pr: dict[str, Any], rg: int, b: int, x: Any) -> Any:
    p = f"layers.{rg}.blocks.{b}.attn"
    att, v = windowed(F, sd, pr, p, shifted(rg, b), x)
    conv_x = _dwconv_v(F, sd, p, v, pr["dim"])
    cmap, smap = _interactions(F, sd, p, conv_x, att)
    return linear1x1(F, sd, f"{p}.proj", F.add(F.mul(att, cmap), F.mul(smap, conv_x)))


def windowed(F: Any, sd: Mapping[str, np.ndarray], pr: dict[str, Any], p: str, shift: bool, x: Any) -> tuple[Any, Any]:
    """The two-branch split-window attention of DAT and RGT (``p``: its ``attn`` prefix):
    the attended map and ``v`` (both NCHW, the input's size)."""
    c = pr["dim"]
    half = c // 2
    s0, s1 = pr["split"]
    heads = int(sd[f"{p}.attns.0.pos.pos3.2.weight"].shape[0])
    hd = half // heads
    scale = hd ** -0.5
    wq = weight(sd, f"{p}.qkv.weight")
    bq = weight(sd, f"{p}.qkv.bias") if f"{p}.qkv.bias" in sd else np.zeros(3 * c, np.float32)
    # output channels regrouped per branch, q pre-scaled: [q0 k0 v0 q1 k1 v1]
    order, mul = [], []
    for br in (0, 1):
        for part in (0, 1, 2):
            lo = part * c + br * half
            order.extend(range(lo, lo + half))
            mul.extend([scale if part == 0 else 1.0] * half)
    m = np.asarray(mul, np.float64)
    w = (wq[order].astype(np.float64) * m[:, None]).astype(np.float32)
    bias = (bq[order].astype(np.float64) * m).astype(np.float32)
    qkv = F.conv(x, w.reshape(3 * c, c, 1, 1), bias if f"{p}.qkv.bias" in sd else None)
    v = F.cat([F.channels(qkv, 2 * half, 3 * half), F.channels(qkv, 5 * half, 6 * half)])
    big = max(s0, s1)
    outs = []
    for br in (0, 1):
        wh, ww = (s0, s1) if br == 0 else (s1, s0)
        sh, sw = (s0 // 2, s1 // 2) if br == 0 else (s1 // 2, s0 // 2)
        t = F.pad_to_multiple(F.channels(qkv, 3 * half * br, 3 * half * (br + 1)), big, big, "constant")
        if shift:
            t = F.roll(t, -sh, -sw)
        win = F.transpose(F.reshape(F.window_partition(t, wh, ww), [0, 0, 3 * heads, hd]), [0, 2, 1, 3])
        q, k, vv = F.channels(win, 0, heads), F.channels(win, heads, 2 * heads), F.channels(win, 2 * heads, 3 * heads)
        attn = F.matmul(q, F.transpose(k, [0, 1, 3, 2]))
        attn = F.affine(attn, 1.0, position_bias(sd, f"{p}.attns.{br}.pos", wh, ww))
        if shift:
            attn = F.add(attn, shift_mask(F, t, wh, ww, sh, sw))
        o = F.matmul(F.softmax(attn, -1), vv)  # (B*nW, heads, N, hd)
        o = F.reshape(F.transpose(o, [0, 2, 1, 3]), [0, 0, -1])
        img = F.window_reverse(o, wh, ww, F.channels(t, 0, half))  # like: the padded map, C/2 channels
        if shift:
            img = F.roll(img, sh, sw)
        outs.append(F.crop_to(img, x, 1))
    return F.cat(outs), v


def channel_attention(F: Any, sd: Mapping[str, np.ndarray], pr: dict[str, Any], rg: int, b: int, x: Any) -> Any:
    p = f"layers.{rg}.blocks.{b}.attn"
    c = pr["dim"]
    temp = weight(sd, f"{p}.temperature")
    heads = int(temp.shape[0])
    hd = c // heads
    qkv = linear1x1(F, sd, f"{p}.qkv", x)

    def part(i: int) -> Any:
        return F.reshape(F.channels(qkv, i * c, (i + 1) * c), [0, heads, hd, -1])  # (B, heads, hd, HW)
    q, k, v = F.l2_normalize(part(0)), F.l2_normalize(part(1)), part(2)
    attn = F.softmax(F.affine(F.matmul(q, F.transpose(k, [0, 1, 3, 2])), temp.reshape(heads, 1, 1)), -1)
    o = F.reshape(F.matmul(attn, v), [0, c, -1])  # (B, C, HW)
    att = F.from_tokens(F.transpose(o, [0, 2, 1]), x)
    conv_x = _dwconv_v(F, sd, p, F.channels(qkv, 2 * c, 3 * c), c)
    cmap, smap = _interactions(F, sd, p, att, conv_x)
    return linear1x1(F, sd, f"{p}.proj", F.add(F.mul(att, smap), F.mul(conv_x, cmap)))


def sgfn(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any) -> Any:
    h = F.gelu(linear1x1(F, sd, f"{p}.fc1", x))
    n = int(sd[f"{p}.fc1.weight"].shape[0]) // 2
    x2 = F.layer_norm_channels(F.channels(h, n, 2 * n), weight(sd, f"{p}.sg.norm.weight"),
                               weight(sd, f"{p}.sg.norm.bias"), EPS_LN)
    x2 = conv(F, sd, f"{p}.sg.conv", x2, groups=n)
    return linear1x1(F, sd, f"{p}.fc2", F.mul(F.channels(h, 0, n), x2))


def block(F: Any, sd: Mapping[str, np.ndarray], pr: dict[str, Any], rg: int, b: int, x: Any) -> Any:
    p = f"layers.{rg}.blocks.{b}"
    h = F.layer_norm_channels(x, weight(sd, f"{p}.norm1.weight"), weight(sd, f"{p}.norm1.bias"), EPS_LN)
    attn = spatial_attention if b % 2 == 0 else channel_attention
    x = F.add(x, attn(F, sd, pr, rg, b, h))
    h = F.layer_norm_channels(x, weight(sd, f"{p}.norm2.weight"), weight(sd, f"{p}.norm2.bias"), EPS_LN)
    return F.add(x, sgfn(F, sd, f"{p}.ffn", h))


# -- shapes (a file that is not what its keys suggest is refused, not half-built) -----
def shapes_ok(sd: Mapping[str, np.ndarray], cin: int, pr: dict[str, Any]) -> bool:
    c, hid = pr["dim"], pr["ffn"]
    if c < 16 or c % 2 or hid % 2:
        return False
    s0, s1 = pr["split"]
    want: dict[str, tuple[int, ...]] = {"before_RG.1.weight": (c,), "before_RG.1.bias": (c,),
                                        "norm.weight": (c,), "norm.bias": (c,)}

    def bn(key: str, n: int) -> None:
        for k in ("weight", "bias", "running_mean", "running_var"):
            want[f"{key}.{k}"] = (n,)

    def convs(prefix: str) -> None:
        if pr["resi"] == "1conv":
            want[f"{prefix}.weight"] = (c, c, 3, 3)
        else:
            want.update({f"{prefix}.0.weight": (c // 4, c, 3, 3), f"{prefix}.2.weight": (c // 4, c // 4, 1, 1),
                         f"{prefix}.4.weight": (c, c // 4, 3, 3)})
    convs("conv_after_body")
    qkv_bias = pr["qkv_bias"]
    for i, depth in enumerate(pr["depths"]):
        convs(f"layers.{i}.conv")
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}"
            a = f"{p}.attn"
            for n in ("norm1", "norm2"):
                want[f"{p}.{n}.weight"] = (c,)
                want[f"{p}.{n}.bias"] = (c,)
            want.update({f"{p}.ffn.fc1.weight": (hid, c), f"{p}.ffn.sg.norm.weight": (hid // 2,),
                         f"{p}.ffn.sg.norm.bias": (hid // 2,), f"{p}.ffn.sg.conv.weight": (hid // 2, 1, 3, 3),
                         f"{p}.ffn.fc2.weight": (c, hid // 2), f"{a}.qkv.weight": (3 * c, c),
                         f"{a}.proj.weight": (c, c), f"{a}.dwconv.0.weight": (c, 1, 3, 3),
                         f"{a}.channel_interaction.1.weight": (c // 8, c, 1, 1),
                         f"{a}.channel_interaction.4.weight": (c, c // 8, 1, 1),
                         f"{a}.spatial_interaction.0.weight": (c // 16, c, 1, 1),
                         f"{a}.spatial_interaction.3.weight": (1, c // 16, 1, 1)})
            if qkv_bias:
                want[f"{a}.qkv.bias"] = (3 * c,)
            bn(f"{a}.dwconv.1", c)
            bn(f"{a}.channel_interaction.2", c // 8)
            bn(f"{a}.spatial_interaction.1", c // 16)
            if j % 2:
                t = sd.get(f"{a}.temperature")
                if t is None or len(t.shape) != 3 or t.shape[1:] != (1, 1) or t.shape[0] < 1 or c % t.shape[0]:
                    return False
                continue
            for br in (0, 1):
                q = f"{a}.attns.{br}.pos"
                pp = sd.get(f"{q}.pos_proj.weight")
                h3 = sd.get(f"{q}.pos3.2.weight")
                if pp is None or h3 is None or len(pp.shape) != 2 or len(h3.shape) != 2:
                    return False
                pd, heads = int(pp.shape[0]), int(h3.shape[0])
                if pp.shape[1] != 2 or heads < 1 or (c // 2) % heads or h3.shape[1] != pd:
                    return False
                want.update({f"{q}.pos_proj.bias": (pd,), f"{q}.pos3.2.bias": (heads,),
                             f"{a}.attns.{br}.rpe_biases": ((2 * s0 - 1) * (2 * s1 - 1), 2)})
                for k in ("pos1", "pos2", "pos3"):
                    want[f"{q}.{k}.0.weight"] = (pd,)
                    want[f"{q}.{k}.0.bias"] = (pd,)
                for k in ("pos1", "pos2"):
                    want[f"{q}.{k}.2.weight"] = (pd, pd)
                    want[f"{q}.{k}.2.bias"] = (pd,)
    if pr["upsampler"] == "pixelshuffle":
        want["conv_before_upsample.0.weight"] = (pr["num_feat"], c, 3, 3)
    return all(k in sd and tuple(int(d) for d in sd[k].shape) == v for k, v in want.items())
