"""Torch-free golden outputs of the converted architectures (tests/data/golden/*.npz).

Each .npz holds what :file:`tools/record_golden.py` recorded once with PyTorch
(``tests/torch_archs.py``, and spandrel's SPAN): the state dict's key names and
shapes (``spec``, JSON), the probe input ``x`` (NCHW float32) and the PyTorch
output ``y``. The weights themselves are not stored: :func:`weights` regenerates
them from the spec with NumPy's PCG64 generator (stable across platforms and
NumPy versions), so each file stays a few tens of kB.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
SEED = 2024


def weights(spec: list[tuple[str, list[int]]], seed: int = SEED, gain: float = 1.0) -> dict[str, np.ndarray]:
    """Deterministic random weights for ``spec`` (key, shape), scaled so that
    activations stay of order 1 through deep networks: convolution kernels
    ~ N(0, 2/fan_in) * gain**2 (He), biases ~ N(0, 0.02), 1-D tensors (PReLU slopes) in [0.05, 0.3]."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for key, shape in spec:
        if len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            v = rng.standard_normal(shape) * (gain * np.sqrt(2.0 / fan_in))
        elif key.endswith("bias"):
            v = rng.standard_normal(shape) * 0.02
        else:
            v = rng.uniform(0.05, 0.3, shape)
        out[key] = v.astype(np.float32)
    return out


def probe(channels: int, size: int, seed: int = SEED) -> np.ndarray:
    """A smooth-plus-noise NCHW input in [0, 1] (like an image crop)."""
    rng = np.random.default_rng(seed + 1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = 0.5 + 0.3 * np.sin(6 * xx + 3 * yy)
    x = base[None] + 0.1 * rng.standard_normal((channels, size, size))
    return np.clip(x, 0, 1).astype(np.float32)[None]


def load(name: str) -> dict[str, Any]:
    with np.load(GOLDEN / f"{name}.npz") as z:
        d = {k: z[k] for k in z.files}
    d["spec"] = [(k, list(s)) for k, s in json.loads(str(d["spec"]))]
    d["meta"] = json.loads(str(d["meta"]))
    return d


def names() -> list[str]:
    return sorted(p.stem for p in GOLDEN.glob("*.npz"))
