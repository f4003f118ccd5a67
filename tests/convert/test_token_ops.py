"""The token and window operations the transformer converters share
(srzoo.convert.onnxbuild.Graph, reference.NumpyOps, reference.TorchOps): each one
against an independent numpy formula written here from its definition, the ONNX
graph run by ONNX Runtime at sizes the graph was not built for (nothing baked in), the
eager ones also with a batch of two.
"""

from __future__ import annotations

import numpy as np
import pytest

from srzoo.convert import reference
from srzoo.convert.onnxbuild import Graph

C = 6


def run_graph(fn, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    g = Graph("t")
    y = fn(g, g.input(C))
    sess = ort.InferenceSession(g.finish(y, C), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def eager_ops():
    ops = [reference.NumpyOps()]
    try:
        ops.append(reference.TorchOps())
    except ImportError:
        pass
    return ops


def windows_by_hand(x: np.ndarray, wh: int, ww: int, grid: bool) -> np.ndarray:
    """[B*nW, wh*ww, C] pixel by pixel: block window (i, j) holds (i*wh + a, j*ww + b);
    grid window (i, j) holds (a*H/wh + i, b*W/ww + j)."""
    b, c, h, w = x.shape
    nh, nw = h // wh, w // ww
    out = np.empty((b * nh * nw, wh * ww, c), x.dtype)
    for n in range(b):
        for i in range(nh):
            for j in range(nw):
                for a in range(wh):
                    for k in range(ww):
                        y, z = (a * nh + i, k * nw + j) if grid else (i * wh + a, j * ww + k)
                        out[(n * nh + i) * nw + j, a * ww + k] = x[n, :, y, z]
    return out


CASES = {  # name: (graph/eager function, numpy formula of the same thing)
    "window_roundtrip": (lambda F, x: F.window_reverse(F.affine(F.window_partition(x, 4, 2), 2.0), 4, 2, x),
                         lambda x: 2 * x),
    "grid_roundtrip": (lambda F, x: F.grid_reverse(F.affine(F.grid_partition(x, 2, 4), 2.0), 2, 4, x),
                       lambda x: 2 * x),
    "tokens_roundtrip": (lambda F, x: F.from_tokens(F.to_tokens(x), x), lambda x: x),
    "pad_crop": (lambda F, x: F.crop_to(F.pad_to_multiple(x, 8, 12, mode="reflect"), x, 1), lambda x: x),
}


@pytest.mark.parametrize("hw", [(8, 16), (16, 8), (24, 32)])
@pytest.mark.parametrize("name", list(CASES))
def test_roundtrips_on_every_op_set(name, hw):
    fn, want_of = CASES[name]
    x = np.random.default_rng(0).random((1, C, *hw), np.float32)
    assert np.abs(run_graph(fn, x) - want_of(x)).max() <= 1e-6
    for ops in eager_ops():
        xb = np.concatenate([x, x[:, :, ::-1]])  # a batch of two
        got = ops.output(fn(ops, ops.input(xb)))
        assert np.abs(got - want_of(xb)).max() <= 1e-6, ops.name


@pytest.mark.parametrize("grid", [False, True])
def test_partition_puts_each_pixel_where_its_definition_says(grid):
    x = np.random.default_rng(1).random((1, C, 8, 12), np.float32)
    want = windows_by_hand(x, 4, 2, grid)
    part = (lambda F, t: F.grid_partition(t, 4, 2)) if grid else (lambda F, t: F.window_partition(t, 4, 2))
    # the graph's output must be NCHW-like for finish(): read it back through from_tokens of a [1, L, C] view
    got = run_graph(lambda F, t: F.from_tokens(F.reshape(part(F, t), [1, -1, C]), F.pad_to_multiple(t, 1, 1)),
                    x)
    assert np.array_equal(got.reshape(C, -1).T.reshape(want.shape), want)
    for ops in eager_ops():
        xb = np.concatenate([x, 1 - x])
        assert np.array_equal(ops.output(part(ops, ops.input(xb))), windows_by_hand(xb, 4, 2, grid)), ops.name


def test_pad_to_multiple_is_bottom_right_and_crop_scales():
    x = np.random.default_rng(2).random((1, C, 5, 7), np.float32)
    for mode, np_mode in (("reflect", "reflect"), ("constant", "constant")):
        want = np.pad(x, ((0, 0), (0, 0), (0, 3), (0, 1)), mode=np_mode)
        got = run_graph(lambda F, t: F.pad_to_multiple(t, 4, 4, mode=mode), x)
        assert np.array_equal(got, want)
        for ops in eager_ops():
            assert np.array_equal(ops.output(ops.pad_to_multiple(ops.input(x), 4, 4, mode=mode)), want)
    big = np.random.default_rng(3).random((1, C, 20, 30), np.float32)
    for ops in eager_ops():
        assert ops.output(ops.crop_to(ops.input(big), ops.input(x), 2)).shape == (1, C, 10, 14)


def test_linear_layer_norm_softmax_l2_against_formulas():
    rng = np.random.default_rng(4)
    t = rng.standard_normal((2, 5, C)).astype(np.float32)
    w, b = rng.standard_normal((3, C)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    lw, lb = rng.standard_normal(C).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    d = t - t.mean(-1, keepdims=True)
    ln = d / np.sqrt((d * d).mean(-1, keepdims=True) + 1e-5) * lw + lb
    e = np.exp(t - t.max(-1, keepdims=True))
    for ops in eager_ops():
        tt = ops.input(t)
        assert np.abs(ops.output(ops.linear(tt, w, b)) - (t @ w.T + b)).max() <= 1e-5
        assert np.abs(ops.output(ops.layer_norm(tt, lw, lb, 1e-5)) - ln).max() <= 1e-5
        assert np.abs(ops.output(ops.softmax(tt, -1)) - e / e.sum(-1, keepdims=True)).max() <= 1e-6
        assert np.abs(ops.output(ops.l2_normalize(tt)) - t / np.linalg.norm(t, axis=-1, keepdims=True)).max() <= 1e-6
        assert ops.output(ops.reshape(tt, [0, -1, 2, 3])).shape == (2, 5, 2, 3)
    # the same in a graph (tokens of a 1 x C x 2 x 3 image: 6 tokens)
    x = rng.standard_normal((1, C, 2, 3)).astype(np.float32)
    tok = x.reshape(C, -1).T[None]
    d = tok - tok.mean(-1, keepdims=True)
    want = (d / np.sqrt((d * d).mean(-1, keepdims=True) + 1e-5) * lw + lb)[0].T.reshape(1, C, 2, 3)
    got = run_graph(lambda F, t: F.from_tokens(F.layer_norm(F.to_tokens(t), lw, lb, 1e-5), t), x)
    assert np.abs(got - want).max() <= 1e-5
