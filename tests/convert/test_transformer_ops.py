"""The graph operations the transformer converters share (onnxbuild.Graph, run by ONNX
Runtime) against plain numpy written here, at sizes the graph never saw while it was
built (heights and widths are computed at run time), and the eager NumpyOps / TorchOps
against the same numpy."""

from __future__ import annotations

import numpy as np
import pytest

from srzoo.convert.onnxbuild import Graph
from srzoo.convert.reference import NumpyOps

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(3)


def run(fn, x: np.ndarray, channels: int) -> np.ndarray:
    """ONNX Runtime on the graph of ``fn`` (input: x's channels; output: ``channels``)."""
    g = Graph("t")
    y = fn(g, g.input(x.shape[1]))
    sess = ort.InferenceSession(g.finish(y, channels), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def windows(x: np.ndarray, wh: int, ww: int) -> np.ndarray:
    """[B*nW, wh*ww, C], windows row by row, tokens row by row inside each (explicit loops)."""
    b, c, h, w = x.shape
    out = []
    for n in range(b):
        for i in range(0, h, wh):
            for j in range(0, w, ww):
                out.append(x[n, :, i:i + wh, j:j + ww].reshape(c, -1).T)
    return np.stack(out)


def ops():
    out = [NumpyOps()]
    try:
        from srzoo.convert.reference import TorchOps

        out.append(TorchOps())
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("h,w", [(8, 12), (16, 4)])
def test_window_partition_and_reverse(h, w):
    x = RNG.random((1, 3, h, w), dtype=np.float32)
    want = windows(x, 4, 2)
    back = run(lambda g, t: g.window_reverse(g.window_partition(t, 4, 2), 4, 2, t), x, 3)
    assert np.array_equal(back, x)
    # the partition itself, read back through tokens -> image of one window per row
    got = run(lambda g, t: g.from_tokens(g.reshape(g.window_partition(t, 4, 2), [1, -1, 3]),
                                         g.reshape(g.channels(t, 0, 1), [1, 1, -1, 8])), x, 3)
    assert np.array_equal(got[0].reshape(3, -1).T, want.reshape(-1, 3))
    for F in ops():
        xb = np.concatenate([x, x[:, :, ::-1]])
        wb = F.output(F.window_partition(F.input(xb), 4, 2))
        assert np.array_equal(wb, windows(xb, 4, 2).astype(np.float32))
        assert np.array_equal(F.output(F.window_reverse(F.input(wb), 4, 2, F.input(xb))), xb)


@pytest.mark.parametrize("h,w", [(5, 7), (8, 8), (9, 16)])
def test_pad_crop_roll_ramp(h, w):
    x = RNG.random((1, 2, h, w), dtype=np.float32)
    padded = np.pad(x, ((0, 0), (0, 0), (0, (-h) % 4), (0, (-w) % 8)), mode="reflect")
    assert np.array_equal(run(lambda g, t: g.pad_to_multiple(t, 4, 8), x, 2), padded)
    assert np.array_equal(run(lambda g, t: g.crop_to(g.pad_to_multiple(t, 4, 8), t), x, 2), x)
    assert np.array_equal(run(lambda g, t: g.roll(t, -2, 3), x, 2), np.roll(x, (-2, 3), (2, 3)))
    rows = run(lambda g, t: g.ramp(t, 2, reverse=True), x, 1)
    assert np.array_equal(rows[0, 0, :, 0], np.arange(h, 0, -1)) and rows.shape == (1, 1, h, w)
    cols = run(lambda g, t: g.ramp(t, 3), x, 1)
    assert np.array_equal(cols[0, 0, 0], np.arange(1, w + 1))
    for F in ops():
        assert np.array_equal(F.output(F.pad_to_multiple(F.input(x), 4, 8)), padded)
        assert np.array_equal(F.output(F.roll(F.input(x), -2, 3)), np.roll(x, (-2, 3), (2, 3)))
        assert np.array_equal(F.output(F.ramp(F.input(x), 3, reverse=True))[0, 0, 0], np.arange(w, 0, -1))


def test_tokens_linear_layer_norm_softmax_matmul():
    x = RNG.standard_normal((1, 6, 5, 7)).astype(np.float32)
    w1, b1 = RNG.standard_normal((6, 6)).astype(np.float32), RNG.standard_normal(6).astype(np.float32)
    lw, lb = RNG.random(6).astype(np.float32) + 0.5, RNG.standard_normal(6).astype(np.float32)
    t = x.reshape(1, 6, -1).transpose(0, 2, 1).astype(np.float64)
    lin = t @ w1.T + b1
    d = lin - lin.mean(-1, keepdims=True)
    ln = d / np.sqrt((d * d).mean(-1, keepdims=True) + 1e-5) * lw + lb
    att = ln @ ln.transpose(0, 2, 1)
    sm = np.exp(att - att.max(-1, keepdims=True))
    sm /= sm.sum(-1, keepdims=True)
    want = (sm @ ln).transpose(0, 2, 1).reshape(1, 6, 5, 7)

    def chain(F, v):
        h = F.layer_norm(F.linear(F.to_tokens(v), w1, b1), lw, lb, 1e-5)
        return F.from_tokens(F.matmul(F.softmax(F.matmul(h, F.transpose(h, (0, 2, 1))), -1), h), v)
    assert np.abs(run(chain, x, 6) - want).max() < 1e-4
    for F in ops():
        assert np.abs(F.output(chain(F, F.input(x))) - want).max() < 1e-4
