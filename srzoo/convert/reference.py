"""Eager forward passes of an architecture, to check a converted ONNX graph.

:class:`TorchOps` runs the operations of :class:`srzoo.convert.onnxbuild.Graph`
with PyTorch (``torch.nn.functional``), the source framework of ``.pth``
files; :class:`NumpyOps` runs them in plain numpy when PyTorch is not
installed. :func:`best` picks one and names it for the conversion record.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from srzoo.errors import SrzooError
from srzoo.resample import cubic_kernel


class TorchOps:
    def __init__(self) -> None:
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        self.name = f"torch {torch.__version__} (eager, torch.nn.functional)"

    def t(self, a: Any) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(a, np.float32))

    def input(self, x: np.ndarray) -> Any:
        return self.t(x)

    def output(self, x: Any) -> np.ndarray:
        return x.detach().numpy()

    def conv(self, x: Any, w: np.ndarray, b: np.ndarray | None = None, *, stride: int = 1,
             pad: int | None = None, groups: int = 1) -> Any:
        p = (w.shape[2] // 2, w.shape[3] // 2) if pad is None else pad
        return self.F.conv2d(x, self.t(w), None if b is None else self.t(b), stride=stride, padding=p,
                             groups=groups)

    def gelu(self, x: Any) -> Any:
        return self.F.gelu(x)

    def mish(self, x: Any) -> Any:
        return self.F.mish(x)

    def channels(self, x: Any, lo: int, hi: int) -> Any:
        return x[:, lo:hi]

    def layer_norm_channels(self, x: Any, w: np.ndarray, b: np.ndarray, eps: float) -> Any:
        perm = x.permute(0, 2, 3, 1)
        y = self.F.layer_norm(perm, (perm.shape[-1],), self.t(w), self.t(b), eps)
        return y.permute(0, 3, 1, 2)

    def group_norm(self, x: Any, groups: int, w: np.ndarray, b: np.ndarray, eps: float) -> Any:
        return self.F.group_norm(x, groups, self.t(w), self.t(b), eps)

    def dysample(self, x: Any, offset: Any, r: int, groups: int, channels: int) -> Any:
        torch = self.torch
        _, _, h, w = offset.shape
        off = offset.reshape(1, 2, -1, h, w)
        yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        centre = torch.stack([xx, yy]).to(x.dtype).reshape(1, 2, 1, h, w)
        size = torch.tensor([w, h], dtype=x.dtype).reshape(1, 2, 1, 1, 1)
        grid = (2 * (centre + off) / size - 1).reshape(1, -1, h, w)
        grid = self.F.pixel_shuffle(grid, r).reshape(2, groups, r * h, r * w).permute(1, 2, 3, 0)
        y = self.F.grid_sample(x.reshape(groups, -1, h, w), grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        return y.reshape(1, -1, r * h, r * w)

    def relu(self, x: Any) -> Any:
        return self.F.relu(x)

    def lrelu(self, x: Any, alpha: float) -> Any:
        return self.F.leaky_relu(x, alpha)

    def prelu(self, x: Any, slope: np.ndarray) -> Any:
        return self.F.prelu(x, self.t(np.asarray(slope).reshape(-1)))

    def sigmoid(self, x: Any) -> Any:
        return self.torch.sigmoid(x)

    def tanh(self, x: Any) -> Any:
        return self.torch.tanh(x)

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def mul(self, a: Any, b: Any) -> Any:
        return a * b

    def affine(self, x: Any, mul: Any = 1.0, add: Any = 0.0) -> Any:
        m, a = np.asarray(mul, np.float32), np.asarray(add, np.float32)
        m = m.reshape(-1, 1, 1) if m.ndim == 1 else m
        a = a.reshape(-1, 1, 1) if a.ndim == 1 else a
        return x * self.t(m) + self.t(a)

    def cat(self, xs: Sequence[Any]) -> Any:
        return self.torch.cat(list(xs), 1)

    def pixel_shuffle(self, x: Any, r: int, mode: str = "CRD", channels: int | None = None) -> Any:
        if mode == "CRD":
            return self.F.pixel_shuffle(x, r)
        n, c, h, w = x.shape
        y = x.reshape(n, r, r, c // (r * r), h, w).permute(0, 3, 4, 1, 5, 2)
        return y.reshape(n, c // (r * r), h * r, w * r)

    def pad_reflect(self, x: Any, p: int) -> Any:
        return self.F.pad(x, (p, p, p, p), mode="reflect")

    def pixel_unshuffle(self, x: Any, r: int, channels: int) -> Any:
        return self.F.pixel_unshuffle(x, r)

    def up_nearest(self, x: Any, r: int) -> Any:
        return self.F.interpolate(x, scale_factor=r, mode="nearest")

    def maxpool(self, x: Any, k: int, stride: int) -> Any:
        return self.F.max_pool2d(x, k, stride)

    def resize(self, x: Any, s: float, mode: str) -> Any:
        return self.F.interpolate(x, scale_factor=s, mode={"linear": "bilinear", "cubic": "bicubic"}[mode],
                                  align_corners=False)

    def resize_bilinear_like(self, x: Any, ref: Any) -> Any:
        return self.F.interpolate(x, size=tuple(ref.shape[2:]), mode="bilinear", align_corners=False)

    # -- tokens and windows (see srzoo.convert.onnxbuild.Graph)
    def to_tokens(self, x: Any) -> Any:
        return x.flatten(2).transpose(1, 2)

    def from_tokens(self, t: Any, like: Any) -> Any:
        return t.transpose(1, 2).reshape(t.shape[0], -1, *like.shape[2:])

    def linear(self, t: Any, w: np.ndarray, b: np.ndarray | None = None) -> Any:
        return self.F.linear(t, self.t(w), None if b is None else self.t(b))

    def layer_norm(self, t: Any, w: np.ndarray, b: np.ndarray, eps: float) -> Any:
        return self.F.layer_norm(t, (t.shape[-1],), self.t(w), self.t(b), eps)

    def matmul(self, a: Any, b: Any) -> Any:
        return a @ b

    def softmax(self, t: Any, axis: int = -1) -> Any:
        return t.softmax(axis)

    def transpose(self, t: Any, perm: Sequence[int]) -> Any:
        return t.permute(*perm)

    def reshape(self, t: Any, shape: Sequence[int]) -> Any:
        return t.reshape(_onnx_shape(t.shape, shape))

    def pad_to_multiple(self, x: Any, mh: int, mw: int, mode: str = "reflect") -> Any:
        h, w = x.shape[2:]
        ph, pw = (mh - h % mh) % mh, (mw - w % mw) % mw
        return self.F.pad(x, (0, pw, 0, ph), mode={"zeros": "constant"}.get(mode, mode)) if ph or pw else x

    def crop_to(self, x: Any, like: Any, scale: int = 1) -> Any:
        return x[:, :, : like.shape[2] * scale, : like.shape[3] * scale]

    def window_partition(self, x: Any, wh: int, ww: int) -> Any:
        b, c, h, w = x.shape
        t = x.reshape(b, c, h // wh, wh, w // ww, ww).permute(0, 2, 4, 3, 5, 1)
        return t.reshape(-1, wh * ww, c)

    def window_reverse(self, t: Any, wh: int, ww: int, like: Any) -> Any:
        b, _, h, w = like.shape
        t = t.reshape(b, h // wh, w // ww, wh, ww, -1).permute(0, 5, 1, 3, 2, 4)
        return t.reshape(b, -1, h, w)

    def grid_partition(self, x: Any, wh: int, ww: int) -> Any:
        b, c, h, w = x.shape
        t = x.reshape(b, c, wh, h // wh, ww, w // ww).permute(0, 3, 5, 2, 4, 1)
        return t.reshape(-1, wh * ww, c)

    def grid_reverse(self, t: Any, wh: int, ww: int, like: Any) -> Any:
        b, _, h, w = like.shape
        t = t.reshape(b, h // wh, w // ww, wh, ww, -1).permute(0, 5, 3, 1, 4, 2)
        return t.reshape(b, -1, h, w)

    def split_batch(self, t: Any, like: Any) -> Any:
        return t.reshape(like.shape[0], -1, *t.shape[1:])

    def l2_normalize(self, t: Any, eps: float = 1e-12) -> Any:
        return self.F.normalize(t, dim=-1, eps=eps)

    def global_mean(self, x: Any) -> Any:
        return x.mean((2, 3), keepdim=True)

    def roll(self, x: Any, sh: int, sw: int) -> Any:
        return self.torch.roll(x, (sh, sw), (2, 3))

    def ramp(self, like: Any, axis: int, reverse: bool = False) -> Any:
        shape = [like.shape[0], 1, like.shape[2], like.shape[3]]
        n = like.shape[axis]
        r = self.torch.arange(n, 0, -1) if reverse else self.torch.arange(1, n + 1)
        view = [1, 1, n, 1] if axis == 2 else [1, 1, 1, n]
        return r.to(like.dtype).reshape(view).expand(shape)

    # --- ops added by 22d ---
    def overlap_windows(self, x: Any, ws: int, ows: int) -> Any:
        b, c = x.shape[:2]
        u = self.F.unfold(x, ows, stride=ws, padding=(ows - ws) // 2)        # [B, C*ows*ows, nW]
        return u.reshape(b, c, ows * ows, -1).permute(0, 3, 2, 1).reshape(-1, ows * ows, c)

    def resize_cubic_to(self, x: Any, like: Any, scale: int) -> Any:
        return self.F.interpolate(x, size=(like.shape[2] * scale, like.shape[3] * scale), mode="bicubic",
                                  align_corners=False)
    # --- end 22d ---
    # --- ops added by 22f ---
    def sqrt(self, x: Any) -> Any:
        return self.torch.sqrt(x)
    # --- end 22f ---
    # --- ops added by 22g ---
    def conv_transpose(self, x: Any, w: np.ndarray, b: np.ndarray | None = None, *, stride: int = 1,
                       pad: int = 0) -> Any:
        return self.F.conv_transpose2d(x, self.t(w), None if b is None else self.t(b), stride=stride, padding=pad)

    def pad_reflect_multiple(self, x: Any, p: int, m: int) -> Any:
        eh, ew = (-x.shape[2]) % m, (-x.shape[3]) % m
        return self.F.pad(x, (p, p + ew, p, p + eh), mode="reflect")

    def crop_border(self, x: Any, p: int) -> Any:
        return x[:, :, p:-p, p:-p]
    # --- end 22g ---
    # --- ops added by 22h ---
    def pad_symmetric_to_multiple(self, x: Any, mh: int, mw: int) -> Any:
        h, w = x.shape[2:]
        ph, pw = (mh - h % mh) % mh, (mw - w % mw) % mw
        x = self.torch.cat([x, self.torch.flip(x, [2])], 2)[:, :, : h + ph]
        return self.torch.cat([x, self.torch.flip(x, [3])], 3)[:, :, :, : w + pw]

    def normalize_last(self, t: Any, eps: float) -> Any:
        return self.F.layer_norm(t, t.shape[-1:], eps=eps)

    def category_order(self, sim: Any, m: int) -> tuple[Any, Any]:
        perm = self.torch.sort(self.torch.argmax(sim, -1), dim=-1, stable=True).indices
        rank = self.torch.empty_like(perm)
        rank.scatter_(1, perm, self.torch.arange(perm.shape[1]).expand_as(perm).contiguous())
        return perm, rank

    def group_tokens(self, t: Any, perm: Any, size: int) -> Any:
        b, n, c = t.shape
        gs = min(n, size)
        ng = (n + gs - 1) // gs
        j = self.torch.arange(ng * gs)
        idx = self.torch.where(j < n, j, 2 * n - 1 - j)
        pp = perm[:, idx]
        return self.torch.gather(t, 1, pp[..., None].expand(b, ng * gs, c)).reshape(b, ng, gs, c)

    def ungroup_tokens(self, g: Any, rank: Any) -> Any:
        b, c = g.shape[0], g.shape[3]
        y = g.reshape(b, -1, c)
        return self.torch.gather(y, 1, rank[..., None].expand(b, rank.shape[1], c))
    # --- end 22h ---


class NumpyOps:
    """The same operations in numpy (float64 accumulation); slow, for small probes only."""

    name = "numpy reference (srzoo.convert.reference.NumpyOps; PyTorch not installed)"

    def input(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float64)

    def output(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32)

    def conv(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, stride: int = 1,
             pad: int | None = None, groups: int = 1) -> np.ndarray:
        kh, kw = w.shape[2:]
        ph, pw = (kh // 2, kw // 2) if pad is None else (pad, pad)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
        cin, cout = x.shape[1] // groups, w.shape[0] // groups
        if kh == kw == 1 and groups == 1:  # pointwise: one matrix product
            t = xp[:, :, ::stride, ::stride]
            y = (np.asarray(w[:, :, 0, 0], np.float64) @ t.reshape(t.shape[0], t.shape[1], -1)).reshape(
                t.shape[0], -1, *t.shape[2:])
        elif groups > 1 and cin == 1 and cout == 1:  # depthwise: one shifted multiply-add per tap
            ho, wo = win.shape[2], win.shape[3]
            y = np.zeros((x.shape[0], x.shape[1], ho, wo))
            for i in range(kh):
                for j in range(kw):
                    tap = xp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                    y += tap * np.asarray(w[:, 0, i, j], np.float64).reshape(1, -1, 1, 1)
        else:
            outs = [np.einsum("nchwij,ocij->nohw", win[:, g * cin:(g + 1) * cin], w[g * cout:(g + 1) * cout],
                              optimize=True) for g in range(groups)]
            y = np.concatenate(outs, 1)
        return y if b is None else y + np.asarray(b).reshape(1, -1, 1, 1)

    def relu(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def gelu(self, x: np.ndarray) -> np.ndarray:
        return 0.5 * x * (1 + _erf(x / np.sqrt(2)))

    def mish(self, x: np.ndarray) -> np.ndarray:
        return x * np.tanh(np.logaddexp(0, x))

    def channels(self, x: np.ndarray, lo: int, hi: int) -> np.ndarray:
        return x[:, lo:hi]

    def layer_norm_channels(self, x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
        d = x - x.mean(1, keepdims=True)
        y = d / np.sqrt((d * d).mean(1, keepdims=True) + eps)
        return y * np.asarray(w, np.float64).reshape(1, -1, 1, 1) + np.asarray(b, np.float64).reshape(1, -1, 1, 1)

    def group_norm(self, x: np.ndarray, groups: int, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
        n, c, h, wd = x.shape
        g = x.reshape(n, groups, -1)
        d = g - g.mean(2, keepdims=True)
        y = (d / np.sqrt((d * d).mean(2, keepdims=True) + eps)).reshape(n, c, h, wd)
        return y * np.asarray(w, np.float64).reshape(1, -1, 1, 1) + np.asarray(b, np.float64).reshape(1, -1, 1, 1)

    def dysample(self, x: np.ndarray, offset: np.ndarray, r: int, groups: int, channels: int) -> np.ndarray:
        _, _, h, w = x.shape
        n = groups * r * r
        out = np.empty((groups, channels // groups, r * h, r * w))
        xg = x.reshape(groups, channels // groups, h, w)
        # offset channel g*r*r + a*r + b moves output pixel (r*i + a, r*j + b) of group g
        dx = self.pixel_shuffle(offset[:, :n], r).reshape(groups, r * h, r * w)
        dy = self.pixel_shuffle(offset[:, n:], r).reshape(groups, r * h, r * w)
        ii, jj = np.meshgrid(np.arange(r * h) // r, np.arange(r * w) // r, indexing="ij")
        for g in range(groups):
            py = np.clip(ii + dy[g], 0, h - 1)  # border padding: the coordinate is clamped
            px = np.clip(jj + dx[g], 0, w - 1)
            y0, x0 = np.floor(py).astype(int), np.floor(px).astype(int)
            fy, fx = py - y0, px - x0
            y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
            src = xg[g]
            out[g] = (src[:, y0, x0] * (1 - fy) * (1 - fx) + src[:, y0, x1] * (1 - fy) * fx
                      + src[:, y1, x0] * fy * (1 - fx) + src[:, y1, x1] * fy * fx)
        return out.reshape(1, channels, r * h, r * w)

    def lrelu(self, x: np.ndarray, alpha: float) -> np.ndarray:
        return np.where(x >= 0, x, x * alpha)

    def prelu(self, x: np.ndarray, slope: np.ndarray) -> np.ndarray:
        s = np.asarray(slope, np.float64).reshape(1, -1, 1, 1)
        return np.where(x >= 0, x, x * s)

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    def affine(self, x: np.ndarray, mul: Any = 1.0, add: Any = 0.0) -> np.ndarray:
        m, a = np.asarray(mul, np.float64), np.asarray(add, np.float64)
        m = m.reshape(-1, 1, 1) if m.ndim == 1 else m
        a = a.reshape(-1, 1, 1) if a.ndim == 1 else a
        return x * m + a

    def cat(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate(list(xs), 1)

    def pad_reflect(self, x: np.ndarray, p: int) -> np.ndarray:
        return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect")

    def pixel_shuffle(self, x: np.ndarray, r: int, mode: str = "CRD", channels: int | None = None) -> np.ndarray:
        n, c, h, w = x.shape
        if mode == "DCR":
            y = x.reshape(n, r, r, c // (r * r), h, w).transpose(0, 3, 4, 1, 5, 2)
            return y.reshape(n, c // (r * r), h * r, w * r)
        return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)

    def pixel_unshuffle(self, x: np.ndarray, r: int, channels: int) -> np.ndarray:
        n, c, h, w = x.shape
        return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)

    def up_nearest(self, x: np.ndarray, r: int) -> np.ndarray:
        return x.repeat(r, 2).repeat(r, 3)

    def maxpool(self, x: np.ndarray, k: int, stride: int) -> np.ndarray:
        win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
        return win.max(axis=(4, 5))

    def resize(self, x: np.ndarray, s: float, mode: str) -> np.ndarray:
        if mode not in ("linear", "cubic"):
            raise SrzooError(f"the numpy reference has no {mode} resize: install the source framework "
                             f"(torch, or the ncnn package) to verify this model")
        n, c, h, w = x.shape
        if mode == "cubic":
            a_h, a_w = _cubic_matrix(h, int(h * s), s), _cubic_matrix(w, int(w * s), s)
            return np.einsum("oh,nchw,pw->ncop", a_h, x, a_w, optimize=True)
        return self.resize_bilinear_like(x, np.empty((n, c, int(h * s), int(w * s))))

    def resize_bilinear_like(self, x: np.ndarray, ref: np.ndarray) -> np.ndarray:
        oh, ow = ref.shape[2:]
        ih, iw = x.shape[2:]

        def axis(o: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            src = np.clip((np.arange(o) + 0.5) * i / o - 0.5, 0, i - 1)
            lo = np.floor(src).astype(int)
            hi = np.minimum(lo + 1, i - 1)
            return lo, hi, src - lo
        y0, y1, fy = axis(oh, ih)
        x0, x1, fx = axis(ow, iw)
        rows = x[:, :, y0] * (1 - fy)[:, None] + x[:, :, y1] * fy[:, None]
        return rows[..., x0] * (1 - fx) + rows[..., x1] * fx

    # -- tokens and windows (see srzoo.convert.onnxbuild.Graph)
    def to_tokens(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], x.shape[1], -1).transpose(0, 2, 1)

    def from_tokens(self, t: np.ndarray, like: np.ndarray) -> np.ndarray:
        return t.transpose(0, 2, 1).reshape(t.shape[0], -1, *like.shape[2:])

    def linear(self, t: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        # W^T contiguous: numpy's matmul of a contiguous [.., L, C] with a transposed view
        # leaves BLAS (measured ~30x slower on the transformers' tokens)
        y = t @ np.ascontiguousarray(np.asarray(w, np.float64).T)
        return y if b is None else y + np.asarray(b, np.float64)

    def layer_norm(self, t: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
        d = t - t.mean(-1, keepdims=True)
        y = d / np.sqrt((d * d).mean(-1, keepdims=True) + eps)
        return y * np.asarray(w, np.float64) + np.asarray(b, np.float64)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # contiguous operands: numpy's batched matmul takes its BLAS path only for those
        # (a transposed view makes it loop in C without BLAS, many times slower)
        return np.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b))

    def softmax(self, t: np.ndarray, axis: int = -1) -> np.ndarray:
        e = np.exp(t - t.max(axis, keepdims=True))
        return e / e.sum(axis, keepdims=True)

    def transpose(self, t: np.ndarray, perm: Sequence[int]) -> np.ndarray:
        return t.transpose(*perm)

    def reshape(self, t: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        return t.reshape(_onnx_shape(t.shape, shape))

    def pad_to_multiple(self, x: np.ndarray, mh: int, mw: int, mode: str = "reflect") -> np.ndarray:
        h, w = x.shape[2:]
        ph, pw = (mh - h % mh) % mh, (mw - w % mw) % mw
        return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode={"zeros": "constant"}.get(mode, mode))

    def crop_to(self, x: np.ndarray, like: np.ndarray, scale: int = 1) -> np.ndarray:
        return x[:, :, : like.shape[2] * scale, : like.shape[3] * scale]

    def window_partition(self, x: np.ndarray, wh: int, ww: int) -> np.ndarray:
        b, c, h, w = x.shape
        t = x.reshape(b, c, h // wh, wh, w // ww, ww).transpose(0, 2, 4, 3, 5, 1)
        return t.reshape(-1, wh * ww, c)

    def window_reverse(self, t: np.ndarray, wh: int, ww: int, like: np.ndarray) -> np.ndarray:
        b, _, h, w = like.shape
        t = t.reshape(b, h // wh, w // ww, wh, ww, -1).transpose(0, 5, 1, 3, 2, 4)
        return t.reshape(b, -1, h, w)

    def grid_partition(self, x: np.ndarray, wh: int, ww: int) -> np.ndarray:
        b, c, h, w = x.shape
        t = x.reshape(b, c, wh, h // wh, ww, w // ww).transpose(0, 3, 5, 2, 4, 1)
        return t.reshape(-1, wh * ww, c)

    def grid_reverse(self, t: np.ndarray, wh: int, ww: int, like: np.ndarray) -> np.ndarray:
        b, _, h, w = like.shape
        t = t.reshape(b, h // wh, w // ww, wh, ww, -1).transpose(0, 5, 3, 1, 4, 2)
        return t.reshape(b, -1, h, w)

    def split_batch(self, t: np.ndarray, like: np.ndarray) -> np.ndarray:
        return t.reshape(like.shape[0], -1, *t.shape[1:])

    def l2_normalize(self, t: np.ndarray, eps: float = 1e-12) -> np.ndarray:
        return t / np.maximum(np.sqrt((t * t).sum(-1, keepdims=True)), eps)

    def global_mean(self, x: np.ndarray) -> np.ndarray:
        return x.mean((2, 3), keepdims=True)


    def roll(self, x: np.ndarray, sh: int, sw: int) -> np.ndarray:
        return np.roll(x, (sh, sw), (2, 3))

    def ramp(self, like: np.ndarray, axis: int, reverse: bool = False) -> np.ndarray:
        n = like.shape[axis]
        r = np.arange(n, 0, -1.0) if reverse else np.arange(1.0, n + 1)
        view = [1, 1, n, 1] if axis == 2 else [1, 1, 1, n]
        return np.broadcast_to(r.reshape(view), (like.shape[0], 1, like.shape[2], like.shape[3]))

    # --- ops added by 22d ---
    def overlap_windows(self, x: np.ndarray, ws: int, ows: int) -> np.ndarray:
        p = (ows - ws) // 2
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (ows, ows), axis=(2, 3))[:, :, ::ws, ::ws]
        return np.ascontiguousarray(win.transpose(0, 2, 3, 4, 5, 1)).reshape(-1, ows * ows, x.shape[1])

    def resize_cubic_to(self, x: np.ndarray, like: np.ndarray, scale: int) -> np.ndarray:
        (h, w), (oh, ow) = x.shape[2:], (like.shape[2] * scale, like.shape[3] * scale)
        return np.einsum("oh,nchw,pw->ncop", _cubic_matrix(h, oh, oh / h), x, _cubic_matrix(w, ow, ow / w),
                         optimize=True)
    # --- end 22d ---
    # --- ops added by 22f ---
    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(x)
    # --- end 22f ---
    # --- ops added by 22h ---
    def pad_symmetric_to_multiple(self, x: np.ndarray, mh: int, mw: int) -> np.ndarray:
        h, w = x.shape[2:]
        ph, pw = (mh - h % mh) % mh, (mw - w % mw) % mw
        return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="symmetric")

    def normalize_last(self, t: np.ndarray, eps: float) -> np.ndarray:
        d = t - t.mean(-1, keepdims=True)
        return d / np.sqrt((d * d).mean(-1, keepdims=True) + eps)

    def category_order(self, sim: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        perm = np.argsort(np.argmax(sim, -1), -1, kind="stable")
        rank = np.empty_like(perm)
        np.put_along_axis(rank, perm, np.broadcast_to(np.arange(perm.shape[1]), perm.shape), 1)
        return perm, rank

    def group_tokens(self, t: np.ndarray, perm: np.ndarray, size: int) -> np.ndarray:
        b, n, c = t.shape
        gs = min(n, size)
        ng = (n + gs - 1) // gs
        j = np.arange(ng * gs)
        pp = perm[:, np.where(j < n, j, 2 * n - 1 - j)]
        return np.take_along_axis(t, pp[..., None], 1).reshape(b, ng, gs, c)

    def ungroup_tokens(self, g: np.ndarray, rank: np.ndarray) -> np.ndarray:
        y = g.reshape(g.shape[0], -1, g.shape[3])
        return np.take_along_axis(y, rank[..., None], 1)
    # --- end 22h ---

    # --- ops added by 22g ---
    def conv_transpose(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, stride: int = 1,
                       pad: int = 0) -> np.ndarray:
        n, _, h, wd = x.shape
        k = w.shape[2]
        full = np.zeros((n, w.shape[1], stride * (h - 1) + k, stride * (wd - 1) + k))
        w64 = np.asarray(w, np.float64)
        for i in range(k):      # each kernel tap scatters one matrix product onto a strided grid
            for j in range(w.shape[3]):
                full[:, :, i:i + stride * (h - 1) + 1:stride, j:j + stride * (wd - 1) + 1:stride] += np.einsum(
                    "nchw,co->nohw", x, w64[:, :, i, j], optimize=True)
        y = full[:, :, pad:full.shape[2] - pad, pad:full.shape[3] - pad]
        return y if b is None else y + np.asarray(b).reshape(1, -1, 1, 1)

    def pad_reflect_multiple(self, x: np.ndarray, p: int, m: int) -> np.ndarray:
        eh, ew = (-x.shape[2]) % m, (-x.shape[3]) % m
        return np.pad(x, ((0, 0), (0, 0), (p, p + eh), (p, p + ew)), mode="reflect")

    def crop_border(self, x: np.ndarray, p: int) -> np.ndarray:
        return x[:, :, p:-p, p:-p]
    # --- end 22g ---

def _onnx_shape(have: Sequence[int], shape: Sequence[int]) -> list[int]:
    """ONNX Reshape's target: 0 copies that dimension of the input, -1 is inferred."""
    return [int(have[i]) if int(d) == 0 else int(d) for i, d in enumerate(shape)]


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise (numpy has none; math.erf is exact to double precision)."""
    return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)


def _cubic_matrix(n_in: int, n_out: int, s: float, a: float = -0.75) -> np.ndarray:
    """The (n_out, n_in) matrix of bicubic resampling along one axis by ``s``:
    half-pixel centres, Keys' kernel with ``a`` = -0.75 (PyTorch, ncnn, ONNX
    ``cubic_coeff_a``), edge pixels repeated beyond the border."""

    src = (np.arange(n_out) + 0.5) / s - 0.5
    base = np.floor(src).astype(int)
    m = np.zeros((n_out, n_in))
    for tap in range(-1, 3):
        idx = base + tap
        np.add.at(m, (np.arange(n_out), np.clip(idx, 0, n_in - 1)), cubic_kernel(src - idx, a))
    return m


def best() -> Any:
    """PyTorch when installed (the source framework of .pth files), else numpy."""
    try:
        return TorchOps()
    except ImportError:
        return NumpyOps()


__all__ = ["NumpyOps", "TorchOps", "best"]
