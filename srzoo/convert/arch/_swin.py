"""Shifted-window self-attention (Swin Transformer, Liu et al. 2021) written once against
the graph operations, for SwinIR and the architectures built on it (SRFormer, DRCT, HAT), and
Swin V2 blocks (Swin2SR: cosine attention, continuous position bias, post-norm).

Tokens are ``[B, L, C]`` (``L = H*W``, row by row), images NCHW. Nothing depends on the
input size at conversion time: the shifted-window mask is built in the graph from the
padded image's height and width (:func:`shift_mask`), and the relative position bias is
gathered into a constant here (:func:`relative_bias`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import weight
from srzoo.errors import ModelLoadError

#: the largest window converted: the relative position bias becomes a (heads, ws**2, ws**2)
#: constant per block, so a crafted bias table of a huge window would ask for gigabytes
#: (published models use 7 to 24)
MAX_WINDOW = 32

#: what torch's Swin adds to the attention logits of token pairs from different regions
MASK_VALUE = -100.0


def check_window(name: str, ws: int) -> None:
    if ws > MAX_WINDOW:
        raise ModelLoadError(f"the state dict describes a {name} with {ws}x{ws} attention windows; srzoo "
                             f"converts windows up to {MAX_WINDOW} (its bias tables grow with the 4th power)")


def relative_index(ws: int) -> np.ndarray:
    """(ws*ws, ws*ws): the row of the bias table for each pair of tokens of a window
    (dy + ws - 1) * (2*ws - 1) + (dx + ws - 1), computed here, never read from the file."""
    yy, xx = np.meshgrid(np.arange(ws), np.arange(ws), indexing="ij")
    y, x = yy.reshape(-1), xx.reshape(-1)
    dy = y[:, None] - y[None, :] + ws - 1
    dx = x[:, None] - x[None, :] + ws - 1
    return dy * (2 * ws - 1) + dx


def relative_bias(table: np.ndarray, ws: int) -> np.ndarray:
    """The (heads, N, N) bias from a ((2ws-1)^2, heads) table."""
    n = ws * ws
    return np.ascontiguousarray(np.asarray(table, np.float32)[relative_index(ws).reshape(-1)]
                                .reshape(n, n, -1).transpose(2, 0, 1))


def _le(F: Any, d: Any, k: int) -> Any:
    """1 where the (integer-valued) map ``d`` is <= k, else 0: relu(k+1-d) - relu(k-d)."""
    return F.add(F.relu(F.affine(d, -1.0, float(k + 1))), F.affine(F.relu(F.affine(d, -1.0, float(k))), -1.0))


def shift_mask(F: Any, x: Any, ws: int, shift: int) -> Any:
    """[B*nW, 1, N, N] of 0 and -100 for the windows of ``x`` (NCHW, H and W multiples of
    ``ws``) after a cyclic shift by ``-shift``: tokens of a window attend only to tokens of
    the same region (rows and columns split at H-ws and H-shift, as upstream's
    ``calculate_mask``). Each token's region is a one-hot vector of 9 (3 row bands x 3
    column bands, from the distance to the bottom/right edge); two tokens share a region
    exactly when the dot product of their vectors is 1."""
    bands = []
    for axis in (2, 3):
        d = F.ramp(x, axis, reverse=True)          # H - i (W - j): 1 on the last row
        in_w, in_s = _le(F, d, ws), _le(F, d, shift)
        bands.append([F.affine(in_w, -1.0, 1.0), F.add(in_w, F.affine(in_s, -1.0)), in_s])
    onehot = F.cat([F.mul(r, c) for r in bands[0] for c in bands[1]])   # (B, 9, H, W)
    w = F.window_partition(onehot, ws, ws)                               # [B*nW, N, 9]
    same = F.matmul(w, F.transpose(w, (0, 2, 1)))                        # [B*nW, N, N]
    n = ws * ws
    return F.reshape(F.affine(same, -MASK_VALUE, MASK_VALUE), [0, 1, n, n])


def attention(F: Any, sd: Mapping[str, np.ndarray], prefix: str, win: Any, dim: int, heads: int, ws: int,
              mask: Any | None) -> Any:
    """Window multi-head self-attention of ``prefix`` (``qkv``, ``proj``,
    ``relative_position_bias_table``) on windows ``win`` [B*nW, N, C]."""
    hd = dim // heads
    scale = hd ** -0.5
    wq = weight(sd, f"{prefix}.qkv.weight")
    bq = weight(sd, f"{prefix}.qkv.bias") if f"{prefix}.qkv.bias" in sd else np.zeros(3 * dim, np.float32)
    q = F.linear(win, wq[:dim] * scale, bq[:dim] * scale)
    k = F.linear(win, wq[dim:2 * dim], bq[dim:2 * dim])
    v = F.linear(win, wq[2 * dim:], bq[2 * dim:])
    q = F.transpose(F.reshape(q, [0, 0, heads, hd]), (0, 2, 1, 3))      # [B*nW, h, N, hd]
    k = F.transpose(F.reshape(k, [0, 0, heads, hd]), (0, 2, 3, 1))      # [B*nW, h, hd, N]
    v = F.transpose(F.reshape(v, [0, 0, heads, hd]), (0, 2, 1, 3))
    a = F.affine(F.matmul(q, k), 1.0, relative_bias(weight(sd, f"{prefix}.relative_position_bias_table"), ws))
    if mask is not None:
        a = F.add(a, mask)
    y = F.matmul(F.softmax(a, -1), v)                                     # [B*nW, h, N, hd]
    y = F.reshape(F.transpose(y, (0, 2, 1, 3)), [0, 0, dim])
    return F.linear(y, weight(sd, f"{prefix}.proj.weight"), weight(sd, f"{prefix}.proj.bias"))


def mlp(F: Any, sd: Mapping[str, np.ndarray], prefix: str, t: Any) -> Any:
    h = F.gelu(F.linear(t, weight(sd, f"{prefix}.fc1.weight"), weight(sd, f"{prefix}.fc1.bias")))
    return F.linear(h, weight(sd, f"{prefix}.fc2.weight"), weight(sd, f"{prefix}.fc2.bias"))


def block(F: Any, sd: Mapping[str, np.ndarray], prefix: str, t: Any, like: Any, dim: int, heads: int, ws: int,
          shift: int, mask: Any | None, eps: float = 1e-5) -> Any:
    """One Swin transformer block on tokens ``t`` of the image ``like`` (its H, W):
    ``t + W-MSA(LN(t))`` (windows shifted by ``shift``), then ``+ MLP(LN(.))``."""
    h = F.layer_norm(t, weight(sd, f"{prefix}.norm1.weight"), weight(sd, f"{prefix}.norm1.bias"), eps)
    img = F.from_tokens(h, like)
    if shift:
        img = F.roll(img, -shift, -shift)
    a = attention(F, sd, f"{prefix}.attn", F.window_partition(img, ws, ws), dim, heads, ws,
                  mask if shift else None)
    img = F.window_reverse(a, ws, ws, like)
    if shift:
        img = F.roll(img, shift, shift)
    t = F.add(t, F.to_tokens(img))
    h = F.layer_norm(t, weight(sd, f"{prefix}.norm2.weight"), weight(sd, f"{prefix}.norm2.bias"), eps)
    return F.add(t, mlp(F, sd, f"{prefix}.mlp", h))


def block_shapes(sd: Mapping[str, np.ndarray], prefix: str, dim: int, heads: int, ws: int,
                 hidden: int) -> dict[str, tuple[int, ...]]:
    """The shapes :func:`block` reads (a state dict that is not what its keys suggest is refused)."""
    return {f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
            f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
            f"{prefix}.attn.qkv.weight": (3 * dim, dim), f"{prefix}.attn.proj.weight": (dim, dim),
            f"{prefix}.attn.proj.bias": (dim,),
            f"{prefix}.attn.relative_position_bias_table": ((2 * ws - 1) ** 2, heads),
            f"{prefix}.mlp.fc1.weight": (hidden, dim), f"{prefix}.mlp.fc1.bias": (hidden,),
            f"{prefix}.mlp.fc2.weight": (dim, hidden), f"{prefix}.mlp.fc2.bias": (dim,)}


def shapes_match(sd: Mapping[str, np.ndarray], want: Mapping[str, tuple[int, ...]]) -> bool:
    return all(k in sd and tuple(np.shape(sd[k])) == tuple(v) for k, v in want.items())


# -- Swin Transformer V2 (Liu et al. 2022; Swin2SR): cosine attention with a learnt,
# clamped temperature, a continuous position bias from a small MLP, post-norm blocks

#: upstream clamps each head's log temperature to log(1 / 0.01)
MAX_LOGIT_SCALE = float(np.log(100.0))


def cpb_coords(ws: int) -> np.ndarray:
    """((2ws-1)**2, 2): the log-spaced relative coordinates the bias MLP reads, row by row over
    (dy, dx) from -(ws-1) to ws-1 (upstream's ``relative_coords_table``, computed here; a
    pretrained window of 0: normalised by ws-1)."""
    r = np.arange(-(ws - 1), ws, dtype=np.float64) / max(ws - 1, 1) * 8
    yy, xx = np.meshgrid(r, r, indexing="ij")
    t = np.stack([yy, xx], -1).reshape(-1, 2)
    return np.sign(t) * np.log2(np.abs(t) + 1.0) / np.log2(8)


def cpb_bias(sd: Mapping[str, np.ndarray], prefix: str, ws: int) -> np.ndarray:
    """The (heads, N, N) bias ``16 * sigmoid(cpb_mlp(coords)[index])`` of ``prefix``
    (``cpb_mlp.0`` Linear(2, hidden) + ReLU, ``cpb_mlp.2`` Linear(hidden, heads) without
    bias), evaluated here at conversion time into a constant."""
    w0, b0, w2 = (np.asarray(sd[f"{prefix}.cpb_mlp.{k}"], np.float64)
                  for k in ("0.weight", "0.bias", "2.weight"))
    table = np.maximum(cpb_coords(ws) @ w0.T + b0, 0) @ w2.T       # ((2ws-1)^2, heads)
    return 16 / (1 + np.exp(-relative_bias(table, ws).astype(np.float64)))


def cosine_attention(F: Any, sd: Mapping[str, np.ndarray], prefix: str, win: Any, dim: int, heads: int, ws: int,
                     mask: Any | None) -> Any:
    """Swin V2 window attention of ``prefix`` (``qkv`` without bias, ``q_bias``/``v_bias``,
    ``logit_scale``, ``cpb_mlp``, ``proj``) on windows ``win`` [B*nW, N, C]: cosine
    similarity of queries and keys times ``exp(min(logit_scale, log 100))`` per head."""
    hd = dim // heads
    wq = weight(sd, f"{prefix}.qkv.weight")
    zero = np.zeros(dim, np.float32)
    qb = weight(sd, f"{prefix}.q_bias") if f"{prefix}.q_bias" in sd else zero
    vb = weight(sd, f"{prefix}.v_bias") if f"{prefix}.v_bias" in sd else zero
    q = F.transpose(F.reshape(F.linear(win, wq[:dim], qb), [0, 0, heads, hd]), (0, 2, 1, 3))   # [B*nW, h, N, hd]
    k = F.transpose(F.reshape(F.linear(win, wq[dim:2 * dim], zero), [0, 0, heads, hd]), (0, 2, 1, 3))
    v = F.transpose(F.reshape(F.linear(win, wq[2 * dim:], vb), [0, 0, heads, hd]), (0, 2, 1, 3))
    temp = np.exp(np.minimum(np.asarray(sd[f"{prefix}.logit_scale"], np.float64).reshape(-1), MAX_LOGIT_SCALE))
    a = F.matmul(F.l2_normalize(q), F.transpose(F.l2_normalize(k), (0, 1, 3, 2)))
    a = F.affine(a, temp.astype(np.float32), cpb_bias(sd, prefix, ws).astype(np.float32))
    if mask is not None:
        a = F.add(a, mask)
    y = F.matmul(F.softmax(a, -1), v)
    y = F.reshape(F.transpose(y, (0, 2, 1, 3)), [0, 0, dim])
    return F.linear(y, weight(sd, f"{prefix}.proj.weight"), weight(sd, f"{prefix}.proj.bias"))


def block_v2(F: Any, sd: Mapping[str, np.ndarray], prefix: str, t: Any, like: Any, dim: int, heads: int, ws: int,
             shift: int, mask: Any | None, eps: float = 1e-5) -> Any:
    """One Swin V2 block (post-norm): ``t + LN(W-MSA(t))`` (windows shifted by ``shift``),
    then ``+ LN(MLP(.))``."""
    img = F.from_tokens(t, like)
    if shift:
        img = F.roll(img, -shift, -shift)
    a = cosine_attention(F, sd, f"{prefix}.attn", F.window_partition(img, ws, ws), dim, heads, ws,
                         mask if shift else None)
    img = F.window_reverse(a, ws, ws, like)
    if shift:
        img = F.roll(img, shift, shift)
    t = F.add(t, F.layer_norm(F.to_tokens(img), weight(sd, f"{prefix}.norm1.weight"),
                              weight(sd, f"{prefix}.norm1.bias"), eps))
    m = mlp(F, sd, f"{prefix}.mlp", t)
    return F.add(t, F.layer_norm(m, weight(sd, f"{prefix}.norm2.weight"), weight(sd, f"{prefix}.norm2.bias"), eps))


def block_v2_shapes(prefix: str, dim: int, heads: int, hidden: int, cpb: int,
                    qkv_bias: bool) -> dict[str, tuple[int, ...]]:
    """The shapes :func:`block_v2` reads (``cpb``: the bias MLP's hidden width, 512 upstream)."""
    want = {f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
            f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
            f"{prefix}.attn.qkv.weight": (3 * dim, dim), f"{prefix}.attn.proj.weight": (dim, dim),
            f"{prefix}.attn.proj.bias": (dim,), f"{prefix}.attn.logit_scale": (heads, 1, 1),
            f"{prefix}.attn.cpb_mlp.0.weight": (cpb, 2), f"{prefix}.attn.cpb_mlp.0.bias": (cpb,),
            f"{prefix}.attn.cpb_mlp.2.weight": (heads, cpb),
            f"{prefix}.mlp.fc1.weight": (hidden, dim), f"{prefix}.mlp.fc1.bias": (hidden,),
            f"{prefix}.mlp.fc2.weight": (dim, hidden), f"{prefix}.mlp.fc2.bias": (dim,)}
    if qkv_bias:
        want.update({f"{prefix}.attn.q_bias": (dim,), f"{prefix}.attn.v_bias": (dim,)})
    return want
