"""OmniSR (Omni Aggregation Networks for Lightweight Image Super-Resolution, Wang et al.,
CVPR 2023): the OpenModelDB ``omnisr`` architecture.

Keys: ``input`` (3x3 conv, in -> num_feat), ``residual_layer.<g>`` OSAG groups, ``output``
(3x3), ``up.0`` (3x3 to out * s * s, then pixel shuffle). Convolutions ``input``,
``output``, ``up.0`` and each group's last 1x1 have biases or none (``bias``).

OSAG ``residual_layer.<g>``: blocks ``residual_layer.<g>.residual_layer.<b>`` (OSA blocks),
then a 1x1 conv at index ``block_num``, the group's input added, then ESA (``esa.*``: 1x1,
3x3 stride 2 unpadded, max pool 7 / 3, 3x3, bilinear back to the input's size, sigmoid gate).

OSA block ``...layer.<i>``:

- 0: MBConv with its residual (``fn.0`` 1x1, GELU, ``fn.2`` depthwise 3x3, GELU, squeeze
  and excitation ``fn.4.gate.1``/``gate.3`` with SiLU and sigmoid, ``fn.5`` 1x1);
- 2: block (window) self-attention on ``window_size`` squares, pre-LayerNorm (eps 1e-5,
  over channels), 4 heads, ``to_qkv`` and ``to_out`` without bias, relative position
  bias ``rel_pos_bias`` (an embedding of (2w - 1)^2 rows: when present it gives the
  window size; without it the window is 8, what spandrel assumes);
- 4, 6, 10, 12: gated convolutional feed-forward (channels-first LayerNorm eps 1e-6,
  ``project_in`` 1x1 to 2C, depthwise 3x3, ``gelu(first half) * second half``,
  ``project_out``), with the residual;
- 5: channel attention inside each window (q, k, v by a 1x1 and a depthwise 3x3; per
  head, the d channels attend to each other over the window's pixels, L2-normalised,
  times ``temperature``); 11: the same over the grid (the pixels at one position in
  every window);
- 8: grid self-attention (window ``(i, j)`` holds the pixels ``(a*H/w + i, b*W/w + j)``),
  otherwise as 2.

Input: padded with zeros at the bottom and right to a multiple of the window size (the
upstream ``check_image_size``, here inside the graph) and the output cropped back to
``H*s`` x ``W*s``; so any input of at least 16 px per side runs, tiles included. No
input normalisation.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight

HEADS = 4           # OmniSR's attention heads (dim_head = num_feat // 4) and channel-attention heads
EPS_LN = 1e-5       # nn.LayerNorm of the self-attentions
EPS_LN2D = 1e-6     # its LayerNorm2d of the convolutional parts
DEFAULT_WINDOW = 8  # without a relative position bias the window is not in the weights
_NEED = ("input.weight", "up.0.weight", "residual_layer.0.residual_layer.0.layer.0.fn.0.weight")
_GROUP = re.compile(r"^residual_layer\.(\d+)\.")
_BLOCK = re.compile(r"^residual_layer\.0\.residual_layer\.(\d+)\.")
_ANY_BLOCK = re.compile(r"^residual_layer\.\d+\.residual_layer\.(\d+)\.")


def _count(sd: Mapping[str, np.ndarray], pattern: re.Pattern) -> list[int]:
    return sorted({int(m.group(1)) for k in sd if (m := pattern.match(k))})


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if not all(k in sd for k in _NEED):
        return None
    w_in = sd["input.weight"]
    if len(w_in.shape) != 4 or tuple(w_in.shape[2:]) != (3, 3) or len(sd["up.0.weight"].shape) != 4:
        return None
    feat, cin = int(w_in.shape[0]), int(w_in.shape[1])
    up = int(sd["up.0.weight"].shape[0])
    s = math.isqrt(up // cin) if up % cin == 0 else 0
    if s < 1 or s * s * cin != up or (scale is not None and scale != s):
        return None
    groups, blocks = _count(sd, _GROUP), _count(sd, _BLOCK)
    # each group: blocks 0 .. n-1 and the 1x1 conv at index n
    if not groups or groups != list(range(len(groups))) or blocks != list(range(len(blocks))) or len(blocks) < 2:
        return None
    n_blocks = len(blocks) - 1
    if any(int(m.group(1)) > n_blocks for k in sd if (m := _ANY_BLOCK.match(k))):
        return None  # a group with more blocks than the first: not a network spandrel builds either
    rpb = "residual_layer.0.residual_layer.0.layer.2.fn.rel_pos_bias.weight"
    if rpb in sd:
        if len(sd[rpb].shape) != 2:
            return None
        rows = int(sd[rpb].shape[0])
        side = math.isqrt(rows)
        if side * side != rows or side % 2 == 0:
            return None
        window = (side + 1) // 2
    else:
        window = DEFAULT_WINDOW
    params: dict[str, Any] = {"num_feat": feat, "res_num": len(groups), "block_num": n_blocks, "window": window,
                              "pe": rpb in sd, "bias": "input.bias" in sd}
    if feat % HEADS or not 2 <= window <= 64 or not _shapes_ok(sd, params, cin, up):
        return None
    return Arch("omnisr", s, in_channels=cin, out_channels=cin, min_size=16, params=params)


def layout(pr: Mapping[str, Any], cin: int = 3, up: int | None = None) -> dict[str, tuple[int, ...]]:
    """Every tensor an OmniSR of ``pr`` (detect's params) holds, with its shape (``up``: the
    output channels of ``up.0``, ``cin * scale**2``)."""
    c, w = pr["num_feat"], pr["window"]
    up = cin * 4 if up is None else up
    se, esa = int(c * 0.25), max(c // 4, 16)
    bias = pr["bias"]
    want: dict[str, tuple[int, ...]] = {}

    def conv(key: str, shape: tuple[int, ...], b: bool = True) -> None:
        want[f"{key}.weight"] = shape
        if b:
            want[f"{key}.bias"] = (shape[0],)

    def norm(key: str) -> None:
        want[f"{key}.norm.weight"] = want[f"{key}.norm.bias"] = (c,)
    conv("input", (c, cin, 3, 3), bias)
    for g in range(pr["res_num"]):
        p = f"residual_layer.{g}"
        for b in range(pr["block_num"]):
            q = f"{p}.residual_layer.{b}.layer"
            conv(f"{q}.0.fn.0", (c, c, 1, 1))
            conv(f"{q}.0.fn.2", (c, 1, 3, 3))
            want[f"{q}.0.fn.4.gate.1.weight"], want[f"{q}.0.fn.4.gate.3.weight"] = (se, c), (c, se)
            conv(f"{q}.0.fn.5", (c, c, 1, 1))
            for i in (2, 8):
                norm(f"{q}.{i}")
                want[f"{q}.{i}.fn.to_qkv.weight"], want[f"{q}.{i}.fn.to_out.0.weight"] = (3 * c, c), (c, c)
                if pr["pe"]:
                    want[f"{q}.{i}.fn.rel_pos_bias.weight"] = ((2 * w - 1) ** 2, HEADS)
            for i in (4, 6, 10, 12):
                norm(f"{q}.{i}")
                conv(f"{q}.{i}.fn.project_in", (2 * c, c, 1, 1), False)
                conv(f"{q}.{i}.fn.dwconv", (2 * c, 1, 3, 3), False)
                conv(f"{q}.{i}.fn.project_out", (c, c, 1, 1), False)
            for i in (5, 11):
                norm(f"{q}.{i}")
                want[f"{q}.{i}.fn.temperature"] = (HEADS, 1, 1)
                conv(f"{q}.{i}.fn.qkv", (3 * c, c, 1, 1), False)
                conv(f"{q}.{i}.fn.qkv_dwconv", (3 * c, 1, 3, 3), False)
                conv(f"{q}.{i}.fn.project_out", (c, c, 1, 1), False)
        conv(f"{p}.residual_layer.{pr['block_num']}", (c, c, 1, 1), bias)
        for k, shape in (("conv1", (esa, c, 1, 1)), ("conv_f", (esa, esa, 1, 1)), ("conv2", (esa, esa, 3, 3)),
                         ("conv3", (esa, esa, 3, 3)), ("conv4", (c, esa, 1, 1))):
            conv(f"{p}.esa.{k}", shape)
    conv("output", (c, c, 3, 3), bias)
    conv("up.0", (up, c, 3, 3), bias)
    return want


def _shapes_ok(sd: Mapping[str, np.ndarray], pr: dict[str, Any], cin: int, up: int) -> bool:
    """Every group and block has the layers at the shapes the forward pass assumes (a file
    that is not what its keys suggest is refused here, not half-built)."""
    return all(k in sd and tuple(sd[k].shape) == v for k, v in layout(pr, cin, up).items())


def _conv(F: Any, sd: Mapping[str, np.ndarray], prefix: str, x: Any, **kw: Any) -> Any:
    b = f"{prefix}.bias"
    w = weight(sd, f"{prefix}.weight")
    if kw.pop("depthwise", False):
        kw["groups"] = int(w.shape[0])
    return F.conv(x, w, weight(sd, b) if b in sd else None, **kw)


def rel_pos_bias(table: np.ndarray, window: int) -> np.ndarray:
    """The [heads, w*w, w*w] bias of window positions i, j (row by row): row
    ``(ri - rj + w - 1) * (2w - 1) + (ci - cj + w - 1)`` of the embedding ``table``."""
    r, c = np.divmod(np.arange(window * window), window)
    idx = (r[:, None] - r[None, :] + window - 1) * (2 * window - 1) + (c[:, None] - c[None, :] + window - 1)
    return np.ascontiguousarray(np.asarray(table, np.float32)[idx].transpose(2, 0, 1))


def _mbconv(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any) -> Any:
    h = F.gelu(_conv(F, sd, f"{p}.fn.0", x))
    h = F.gelu(_conv(F, sd, f"{p}.fn.2", h, depthwise=True))
    g1, g3 = weight(sd, f"{p}.fn.4.gate.1.weight"), weight(sd, f"{p}.fn.4.gate.3.weight")
    gate = F.conv(F.global_mean(h), g1[:, :, None, None])
    gate = F.mul(gate, F.sigmoid(gate))  # SiLU
    gate = F.sigmoid(F.conv(gate, g3[:, :, None, None]))
    return F.add(_conv(F, sd, f"{p}.fn.5", F.mul(h, gate)), x)


def _self_attention(F: Any, sd: Mapping[str, np.ndarray], p: str, t: Any, c: int, window: int) -> Any:
    """PreNormResidual(Attention) on window tokens [B*nW, w*w, C]."""
    d = c // HEADS
    n = window * window
    h = F.layer_norm(t, weight(sd, f"{p}.norm.weight"), weight(sd, f"{p}.norm.bias"), EPS_LN)
    wqkv = weight(sd, f"{p}.fn.to_qkv.weight")

    def heads(w: np.ndarray, perm: list[int]) -> Any:
        return F.transpose(F.reshape(F.linear(h, w), [0, 0, HEADS, d]), perm)
    q = heads(wqkv[:c] * np.float32(d ** -0.5), [0, 2, 1, 3])   # B h N d
    k = heads(wqkv[c:2 * c], [0, 2, 3, 1])                       # B h d N
    v = heads(wqkv[2 * c:], [0, 2, 1, 3])
    sim = F.matmul(q, k)
    if f"{p}.fn.rel_pos_bias.weight" in sd:
        sim = F.affine(sim, 1.0, rel_pos_bias(weight(sd, f"{p}.fn.rel_pos_bias.weight"), window))
    out = F.matmul(F.softmax(sim, -1), v)                        # B h N d
    out = F.reshape(F.transpose(out, [0, 2, 1, 3]), [0, n, c])
    return F.add(F.linear(out, weight(sd, f"{p}.fn.to_out.0.weight")), t)


def _norm2d(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any) -> Any:
    return F.layer_norm_channels(x, weight(sd, f"{p}.norm.weight"), weight(sd, f"{p}.norm.bias"), EPS_LN2D)


def _gated_ff(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any) -> Any:
    h = _conv(F, sd, f"{p}.fn.dwconv", _conv(F, sd, f"{p}.fn.project_in", _norm2d(F, sd, p, x)), depthwise=True)
    c2 = int(sd[f"{p}.fn.dwconv.weight"].shape[0])
    h = F.mul(F.gelu(F.channels(h, 0, c2 // 2)), F.channels(h, c2 // 2, c2))
    return F.add(_conv(F, sd, f"{p}.fn.project_out", h), x)


def _channel_attention(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, c: int, window: int,
                       grid: bool) -> Any:
    """Conv_PreNormResidual(Channel_Attention / Channel_Attention_grid)."""
    d, n = c // HEADS, window * window
    qkv = _conv(F, sd, f"{p}.fn.qkv_dwconv", _conv(F, sd, f"{p}.fn.qkv", _norm2d(F, sd, p, x)), depthwise=True)
    temp = weight(sd, f"{p}.fn.temperature")  # (heads, 1, 1)

    def split(lo: int) -> Any:
        t = F.window_partition(F.channels(qkv, lo, lo + c), window, window)   # B*nW N C
        if grid:  # over the windows, one group per position in the window: B N h d nW
            return F.transpose(F.reshape(F.split_batch(t, x), [0, 0, 0, HEADS, d]), [0, 2, 3, 4, 1])
        return F.transpose(F.reshape(t, [0, 0, HEADS, d]), [0, 2, 3, 1])     # B*nW h d N
    q, k, v = (split(i * c) for i in range(3))
    rank = 5 if grid else 4
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    q, k = F.l2_normalize(q), F.l2_normalize(k)
    attn = F.softmax(F.affine(F.matmul(q, F.transpose(k, swap)), temp), -1)
    out = F.matmul(attn, v)
    if grid:
        out = F.reshape(F.transpose(out, [0, 4, 1, 2, 3]), [-1, n, c])     # B*nW N C
    else:
        out = F.reshape(F.transpose(out, [0, 3, 1, 2]), [0, 0, c])
    out = F.window_reverse(out, window, window, x)
    return F.add(_conv(F, sd, f"{p}.fn.project_out", out), x)


def _osa_block(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, c: int, window: int) -> Any:
    h = _mbconv(F, sd, f"{p}.0", x)
    t = _self_attention(F, sd, f"{p}.2", F.window_partition(h, window, window), c, window)
    h = F.window_reverse(t, window, window, h)
    h = _gated_ff(F, sd, f"{p}.4", h)
    h = _channel_attention(F, sd, f"{p}.5", h, c, window, grid=False)
    h = _gated_ff(F, sd, f"{p}.6", h)
    t = _self_attention(F, sd, f"{p}.8", F.grid_partition(h, window, window), c, window)
    h = F.grid_reverse(t, window, window, h)
    h = _gated_ff(F, sd, f"{p}.10", h)
    h = _channel_attention(F, sd, f"{p}.11", h, c, window, grid=True)
    return _gated_ff(F, sd, f"{p}.12", h)


def _esa(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any) -> Any:
    c1_ = _conv(F, sd, f"{p}.conv1", x)
    c1 = _conv(F, sd, f"{p}.conv2", c1_, stride=2, pad=0)
    c3 = _conv(F, sd, f"{p}.conv3", F.maxpool(c1, 7, 3))
    c3 = F.resize_bilinear_like(c3, x)
    m = F.sigmoid(_conv(F, sd, f"{p}.conv4", F.add(c3, _conv(F, sd, f"{p}.conv_f", c1_))))
    return F.mul(x, m)


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    pr = arch.params
    c, w, nb = pr["num_feat"], pr["window"], pr["block_num"]
    xp = F.pad_to_multiple(x, w, w, mode="constant")
    residual = _conv(F, sd, "input", xp)
    h = residual
    for g in range(pr["res_num"]):
        p = f"residual_layer.{g}"
        t = h
        for b in range(nb):
            t = _osa_block(F, sd, f"{p}.residual_layer.{b}.layer", t, c, w)
        t = F.add(_conv(F, sd, f"{p}.residual_layer.{nb}", t), h)
        h = _esa(F, sd, f"{p}.esa", t)
    h = F.add(_conv(F, sd, "output", h), residual)
    y = F.pixel_shuffle(_conv(F, sd, "up.0", h), arch.scale, channels=int(sd["up.0.weight"].shape[0]))
    return F.crop_to(y, x, arch.scale)
