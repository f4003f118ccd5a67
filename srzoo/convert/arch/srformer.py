"""SRFormer (Permuted Self-Attention for Single Image Super-Resolution, Zhou et al. 2023):
the OpenModelDB ``srformer`` architecture (SRFormer and SRFormer-light; every upsampler of
SwinIR, whose trunk it shares).

Keys as SwinIR's (:mod:`srzoo.convert.arch.swinir`: ``conv_first``, ``patch_embed.norm``,
groups ``layers.i`` closed by ``layers.i.conv`` 1conv/3conv, ``norm``, ``conv_after_body``,
the upsamplers ``pixelshuffle``, ``pixelshuffledirect``, ``nearest+conv`` x4 and none),
with permuted self-attention (PSA) blocks ``layers.i.residual_group.blocks.j``:

- ``attn.q`` (dim -> dim) and ``attn.kv`` (dim -> dim/2: keys and values compressed to a
  quarter of the channels each); the keys and values of each 2x2 pixel block of a window
  are stacked into one token of ``dim`` channels (order dy, dx, channel), so a ws x ws
  window of queries attends to (ws/2)^2 keys;
- a relative position bias table of ``(ws - 1)**2`` rows (the permuted window ws/2), each
  query taking the row of its 2x2 block (upstream's ``aligned_relative_position_index``,
  computed here, never read from the file);
- odd blocks shift their windows by ws//2; the mask compares the region of a query (bands
  split ws and ws//2 rows/columns from the bottom/right of the padded image) with that of a
  key on the half-resolution grid (split ws/2 and ceil(ws/4) from its edge), as upstream's
  ``calculate_mask`` (its ``-shift_size // 2`` rounds towards minus infinity);
- ``mlp`` a ConvFFN: fc1, GELU, ``h + GELU(dwconv5x5(h))`` (``mlp.dwconv.depthwise_conv.0``), fc2.

The window is even (the permutation halves it); shifted blocks exist exactly when the state
dict holds the shifted blocks' ``attn_mask`` buffer (spandrel builds an unshifted network
otherwise; its size is not used). The input is normalised as ``x - mean`` (0.4488, 0.4371,
0.4040 for three channels, else 0; img_range 1, as spandrel), padded bottom/right by
reflection to a multiple of the window and the output cropped (``check_image_size``).
An absolute position embedding (``absolute_pos_embed``, fixed to the training size) is refused.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, _swin, weight
from srzoo.convert.arch.swinir import MEAN, _conv, _conv_keys, _resi, pixelshuffle_shapes, reconstruct

_LAYER = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.norm1\.weight$")


def aligned_index(ws: int) -> np.ndarray:
    """(ws*ws, (ws/2)**2): the bias-table row of each (query, key) pair, the query taking
    the relative position of its 2x2 block in the permuted (ws/2) window."""
    p = ws // 2
    rel = _swin.relative_index(p).reshape(p, p, p * p)             # [py, px, key]
    return np.repeat(np.repeat(rel, 2, axis=0), 2, axis=1).reshape(ws * ws, p * p)


def aligned_bias(table: np.ndarray, ws: int) -> np.ndarray:
    """The (heads, ws*ws, (ws/2)**2) bias from a ((ws-1)**2, heads) table."""
    n, m = ws * ws, (ws // 2) ** 2
    return np.ascontiguousarray(np.asarray(table, np.float32)[aligned_index(ws).reshape(-1)]
                                .reshape(n, m, -1).transpose(2, 0, 1))


def _bands(F: Any, like: Any, ws: int, shift: int) -> Any:
    """(B, 9, H, W): the one-hot region of each pixel of ``like`` (3 row bands x 3 column
    bands: farther than ``ws`` from the bottom/right edge, within ``ws`` but not ``shift``,
    within ``shift``), as :func:`srzoo.convert.arch._swin.shift_mask` builds them."""
    bands = []
    for axis in (2, 3):
        d = F.ramp(like, axis, reverse=True)
        in_w, in_s = _swin._le(F, d, ws), _swin._le(F, d, shift)
        bands.append([F.affine(in_w, -1.0, 1.0), F.add(in_w, F.affine(in_s, -1.0)), in_s])
    return F.cat([F.mul(r, c) for r in bands[0] for c in bands[1]])


def psa_mask(F: Any, xp: Any, ws: int) -> Any:
    """[B*nW, 1, ws*ws, (ws/2)**2] of 0 and -100 for the shifted windows of the padded image
    ``xp``: a query attends to the keys of its own region (upstream's ``calculate_mask``)."""
    shift, p = ws // 2, ws // 2
    q = F.window_partition(_bands(F, xp, ws, shift), ws, ws)                    # [B*nW, N, 9]
    half = F.maxpool(xp, 2, 2)                                                  # (H/2, W/2)
    k = F.window_partition(_bands(F, half, p, -(-shift // 2)), p, p)            # [B*nW, N/4, 9]
    same = F.matmul(q, F.transpose(k, (0, 2, 1)))
    return F.reshape(F.affine(same, -_swin.MASK_VALUE, _swin.MASK_VALUE), [0, 1, ws * ws, p * p])


def attention(F: Any, sd: Mapping[str, np.ndarray], prefix: str, win: Any, dim: int, heads: int, ws: int,
              mask: Any | None) -> Any:
    """Permuted self-attention of ``prefix`` (``q``, ``kv``, ``proj``, the bias table) on
    windows ``win`` [B*nW, ws*ws, C]."""
    hd, p, c4 = dim // heads, ws // 2, dim // 4
    scale = hd ** -0.5
    wq = weight(sd, f"{prefix}.q.weight")
    bq = weight(sd, f"{prefix}.q.bias") if f"{prefix}.q.bias" in sd else np.zeros(dim, np.float32)
    wkv = weight(sd, f"{prefix}.kv.weight")
    bkv = weight(sd, f"{prefix}.kv.bias") if f"{prefix}.kv.bias" in sd else np.zeros(dim // 2, np.float32)
    q = F.transpose(F.reshape(F.linear(win, wq * scale, bq * scale), [0, 0, heads, hd]), (0, 2, 1, 3))

    def permuted(w: np.ndarray, b: np.ndarray) -> Any:
        """[B*nW, ws*ws, C/4] -> [B*nW, (ws/2)**2, C]: each 2x2 block's tokens side by side."""
        t = F.reshape(F.linear(win, w, b), [0, p, 2, p, 2, c4])
        return F.reshape(F.transpose(t, (0, 1, 3, 2, 4, 5)), [0, p * p, dim])
    k = F.transpose(F.reshape(permuted(wkv[:c4], bkv[:c4]), [0, 0, heads, hd]), (0, 2, 3, 1))  # [.., h, hd, M]
    v = F.transpose(F.reshape(permuted(wkv[c4:], bkv[c4:]), [0, 0, heads, hd]), (0, 2, 1, 3))  # [.., h, M, hd]
    a = F.affine(F.matmul(q, k), 1.0, aligned_bias(weight(sd, f"{prefix}.relative_position_bias_table"), ws))
    if mask is not None:
        a = F.add(a, mask)
    y = F.matmul(F.softmax(a, -1), v)                                            # [B*nW, h, N, hd]
    y = F.reshape(F.transpose(y, (0, 2, 1, 3)), [0, 0, dim])
    return F.linear(y, weight(sd, f"{prefix}.proj.weight"), weight(sd, f"{prefix}.proj.bias"))


def conv_ffn(F: Any, sd: Mapping[str, np.ndarray], prefix: str, t: Any, like: Any) -> Any:
    h = F.gelu(F.linear(t, weight(sd, f"{prefix}.fc1.weight"), weight(sd, f"{prefix}.fc1.bias")))
    dw = f"{prefix}.dwconv.depthwise_conv.0"
    wdw = weight(sd, f"{dw}.weight")
    img = F.gelu(F.conv(F.from_tokens(h, like), wdw, weight(sd, f"{dw}.bias"), groups=int(wdw.shape[0])))
    h = F.add(h, F.to_tokens(img))
    return F.linear(h, weight(sd, f"{prefix}.fc2.weight"), weight(sd, f"{prefix}.fc2.bias"))


def block(F: Any, sd: Mapping[str, np.ndarray], prefix: str, t: Any, like: Any, dim: int, heads: int, ws: int,
          shift: int, mask: Any | None) -> Any:
    h = F.layer_norm(t, weight(sd, f"{prefix}.norm1.weight"), weight(sd, f"{prefix}.norm1.bias"), 1e-5)
    img = F.from_tokens(h, like)
    if shift:
        img = F.roll(img, -shift, -shift)
    a = attention(F, sd, f"{prefix}.attn", F.window_partition(img, ws, ws), dim, heads, ws, mask if shift else None)
    img = F.window_reverse(a, ws, ws, like)
    if shift:
        img = F.roll(img, shift, shift)
    t = F.add(t, F.to_tokens(img))
    h = F.layer_norm(t, weight(sd, f"{prefix}.norm2.weight"), weight(sd, f"{prefix}.norm2.bias"), 1e-5)
    return F.add(t, conv_ffn(F, sd, f"{prefix}.mlp", h, like))


def block_shapes(sd: Mapping[str, np.ndarray], prefix: str, dim: int, heads: int, ws: int,
                 hidden: int) -> dict[str, tuple[int, ...]]:
    want = {f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
            f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
            f"{prefix}.attn.q.weight": (dim, dim), f"{prefix}.attn.kv.weight": (dim // 2, dim),
            f"{prefix}.attn.proj.weight": (dim, dim), f"{prefix}.attn.proj.bias": (dim,),
            f"{prefix}.attn.relative_position_bias_table": ((ws - 1) ** 2, heads),
            f"{prefix}.mlp.fc1.weight": (hidden, dim), f"{prefix}.mlp.fc1.bias": (hidden,),
            f"{prefix}.mlp.fc2.weight": (dim, hidden), f"{prefix}.mlp.fc2.bias": (dim,),
            f"{prefix}.mlp.dwconv.depthwise_conv.0.weight": (hidden, 1, 5, 5),
            f"{prefix}.mlp.dwconv.depthwise_conv.0.bias": (hidden,)}
    if f"{prefix}.attn.q.bias" in sd or f"{prefix}.attn.kv.bias" in sd:
        want.update({f"{prefix}.attn.q.bias": (dim,), f"{prefix}.attn.kv.bias": (dim // 2,)})
    return want


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    p0 = "layers.0.residual_group.blocks.0"
    if f"{p0}.attn.kv.weight" not in sd or f"{p0}.attn.relative_position_bias_table" not in sd:
        return None
    if "conv_first.weight" not in sd or f"{p0}.mlp.fc1.weight" not in sd or "norm.weight" not in sd:
        return None
    if "absolute_pos_embed" in sd:
        return None  # fixed to the training size: see the module docstring
    w0 = np.shape(sd["conv_first.weight"])
    if len(w0) != 4 or w0[2:] != (3, 3):
        return None
    dim, cin = int(w0[0]), int(w0[1])
    blocks: dict[int, set[int]] = {}
    for k in sd:
        if m := _LAYER.match(k):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        return None
    depths = [len(blocks[i]) for i in range(len(blocks))]
    if any(sorted(blocks[i]) != list(range(d)) for i, d in enumerate(depths)):
        return None
    rows = int(np.shape(sd[f"{p0}.attn.relative_position_bias_table"])[0])
    ws = math.isqrt(rows) + 1
    hidden = int(np.shape(sd[f"{p0}.mlp.fc1.weight"])[0])
    heads = [int(np.shape(sd[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"])[1])
             for i in range(len(depths))]
    if ws < 2 or ws % 2 or (ws - 1) ** 2 != rows or dim % 4 or any(h < 1 or dim % h for h in heads):
        return None
    _swin.check_window("srformer", ws)
    want: dict[str, tuple[int, ...]] = {"norm.weight": (dim,), "norm.bias": (dim,), "conv_first.bias": (dim,)}
    if "patch_embed.norm.weight" in sd:
        want.update({"patch_embed.norm.weight": (dim,), "patch_embed.norm.bias": (dim,)})
    for i, d in enumerate(depths):
        for j in range(d):
            want.update(block_shapes(sd, f"layers.{i}.residual_group.blocks.{j}", dim, heads[i], ws, hidden))
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
    if "conv_hr.weight" in sd:
        upsampler, s = "nearest+conv", 4
        nf = int(np.shape(sd["conv_before_upsample.0.weight"])[0]) if "conv_before_upsample.0.weight" in sd else 0
        want.update({"conv_before_upsample.0.weight": (nf, dim, 3, 3), "conv_before_upsample.0.bias": (nf,),
                     "conv_last.weight": (cout, nf, 3, 3), "conv_last.bias": (cout,),
                     "conv_hr.weight": (nf, nf, 3, 3), "conv_hr.bias": (nf,)})
        for k in (1, 2):
            want.update({f"conv_up{k}.weight": (nf, nf, 3, 3), f"conv_up{k}.bias": (nf,)})
    elif "conv_before_upsample.0.weight" in sd:
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
    shifted = "layers.0.residual_group.blocks.1.attn_mask" in sd
    params: dict[str, Any] = {"embed_dim": dim, "depths": depths, "heads": heads, "window": ws,
                              "mlp_hidden": hidden, "upsampler": upsampler or "none", "resi_connection": resi,
                              "shift": ws // 2 if shifted else 0, "patch_norm": "patch_embed.norm.weight" in sd}
    if upsampler in ("pixelshuffle", "nearest+conv"):
        params["num_feat"] = nf
    # reflection padding of up to ws-1 rows needs at least ws of them
    return Arch("srformer", s, in_channels=cin, out_channels=cout, min_size=max(ws, 8), params=params)


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr, s = arch.params, arch.scale
    dim, ws, shift = pr["embed_dim"], pr["window"], pr["shift"]
    mean = MEAN if arch.in_channels == 3 else np.zeros(arch.in_channels, np.float32)
    xp = F.pad_to_multiple(x, ws, ws, "reflect")
    xn = F.affine(xp, 1.0, -mean)
    feat = _conv(F, sd, "conv_first", xn)
    t = F.to_tokens(feat)
    if pr["patch_norm"]:
        t = F.layer_norm(t, weight(sd, "patch_embed.norm.weight"), weight(sd, "patch_embed.norm.bias"), 1e-5)
    mask = psa_mask(F, xp, ws) if shift and any(d > 1 for d in pr["depths"]) else None
    for i, depth in enumerate(pr["depths"]):
        t0 = t
        for j in range(depth):
            t = block(F, sd, f"layers.{i}.residual_group.blocks.{j}", t, feat, dim, pr["heads"][i], ws,
                      shift if j % 2 else 0, mask)
        t = F.add(F.to_tokens(_resi(F, sd, f"layers.{i}.conv", F.from_tokens(t, feat))), t0)
    t = F.layer_norm(t, weight(sd, "norm.weight"), weight(sd, "norm.bias"), 1e-5)
    res = F.add(_resi(F, sd, "conv_after_body", F.from_tokens(t, feat)), feat)
    y = reconstruct(F, sd, pr["upsampler"], res, xn, s, pr.get("num_feat"))
    y = F.affine(y, 1.0, mean)
    return F.crop_to(y, x, s)
