"""PLKSR and RealPLKSR (Partial Large Kernel CNNs for Efficient Super-Resolution,
Lee et al. 2024): the OpenModelDB ``realplksr`` and ``realplksr-dysample``
architectures, and the original PLKSR.

Keys: ``feats.0`` (3x3 conv, 3 -> dim), blocks ``feats.1`` .. ``feats.n`` and the
last conv ``feats.<last>`` (3x3, dim -> 3*s*s). RealPLKSR has a ``Dropout2d``
between the blocks and the last conv (no weights: its index is skipped) and its
channel mixer is spelled ``channel_mixer``; PLKSR's is ``channe_mixer``.

Block: ``x + norm(refine(ea(lk(mixer(layer_norm(x))))))`` where

- ``layer_norm``: RealPLKSR with ``feats.i.layer_norm.*`` (channels-first LayerNorm,
  eps 1e-6); then ``norm`` is absent. Without it, ``norm`` is a GroupNorm of
  ``GROUPS`` groups (``feats.i.norm.*``; the group count is not in the weights, 4 is
  what every published RealPLKSR uses). PLKSR has neither.
- ``mixer``: two convs with Mish (RealPLKSR, 3x3 then 3x3) or GELU (PLKSR: CCM 3x3
  then 1x1, ICCM 1x1 then 3x3, DCCM 3x3 then 3x3; read from the kernel sizes).
- ``lk``: a large-kernel conv on the first ``pdim`` channels only, the rest passed on
  (``lk.conv``); PLKSR's rectangular variant (``lk.mn_conv``/``nm_conv``/``nn_conv``)
  sums three kernels. PLKSR's ``lk.convs`` (sparse dilated kernels) cannot be read
  from the weights (the dilations are not stored) and is refused.
- ``ea``: ``x * sigmoid(conv3x3(x))`` when ``feats.i.attn.f.0`` is present.
- ``refine``: 1x1 conv.

Output: ``last(feats) + repeat_interleave(x, s*s)`` then pixel shuffle by ``s``, or
(``to_img.init_pos`` present) DySample: ``offset`` and ``scope`` 1x1 convs give
``offset * sigmoid(scope) / 2 + init_pos`` (in input pixels), the 3*s*s channels are
resampled in ``groups`` groups (3 for odd scales, else 4) and, for s > 1, a 1x1
``end_conv`` maps them to 3 channels. No input normalisation.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight

GROUPS = 4          # RealPLKSR's GroupNorm groups (norm_groups; not stored in the weights)
EPS_LN = 1e-6       # its LayerNorm
EPS_GN = 1e-5       # torch.nn.GroupNorm's default
_BLOCK = re.compile(r"^feats\.(\d+)\.")


def _blocks(sd: Mapping[str, np.ndarray]) -> list[int]:
    return sorted({int(m.group(1)) for k in sd if (m := _BLOCK.match(k))})


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if "feats.0.weight" not in sd or "feats.1.refine.weight" not in sd:
        return None
    real = "feats.1.channel_mixer.0.weight" in sd
    if not real and "feats.1.channe_mixer.0.weight" not in sd:
        return None
    lk = next((k for k in ("conv", "mn_conv", "convs.0") if f"feats.1.lk.{k}.weight" in sd), None)
    if lk is None:
        return None
    w0 = sd["feats.0.weight"]
    if len(w0.shape) != 4 or w0.shape[1] != 3:
        return None
    dim = int(w0.shape[0])
    idx = [i for i in _blocks(sd) if f"feats.{i}.refine.weight" in sd]
    n_blocks = len(idx)
    if idx != list(range(1, n_blocks + 1)):
        return None
    # RealPLKSR: Dropout2d at n+1 (no weights), the last conv at n+2; PLKSR: at n+1
    last = n_blocks + (2 if real else 1)
    wl = sd.get(f"feats.{last}.weight")
    if wl is None or len(wl.shape) != 4 or wl.shape[1] != dim or wl.shape[0] % 3:
        return None
    s = math.isqrt(int(wl.shape[0]) // 3)
    if s < 1 or 3 * s * s != wl.shape[0] or (scale is not None and scale != s):
        return None
    if lk == "convs.0":
        return None  # sparse PLK: its dilations are not in the weights
    lkw = sd[f"feats.1.lk.{lk}.weight"]
    mixer = "channel_mixer" if real else "channe_mixer"
    k0 = int(sd[f"feats.1.{mixer}.0.weight"].shape[2])
    k2 = int(sd[f"feats.1.{mixer}.2.weight"].shape[2])
    params: dict[str, Any] = {
        "variant": "realplksr" if real else "plksr", "dim": dim, "blocks": n_blocks,
        "kernel": int(lkw.shape[2]), "pdim": int(lkw.shape[0]), "ea": "feats.1.attn.f.0.weight" in sd}
    if real:
        params["norm"] = "layernorm" if "feats.1.layer_norm.weight" in sd else "groupnorm"
        dys = "to_img.init_pos" in sd
        params["upsampler"] = "dysample" if dys else "pixelshuffle"
        if dys:
            n_off = int(sd["to_img.offset.weight"].shape[0])
            groups = n_off // (2 * s * s)
            if groups < 1 or 2 * groups * s * s != n_off or (3 * s * s) % groups:
                return None
            if int(np.asarray(sd["to_img.init_pos"]).size) != n_off:
                return None
            params["groups"] = groups
    else:
        params["lk"] = {"conv": "plk", "mn_conv": "rectplk"}[lk]
        mixers = {(3, 1): "CCM", (1, 3): "ICCM", (3, 3): "DCCM"}
        if (k0, k2) not in mixers:
            return None
        params["mixer"] = mixers[(k0, k2)]
    if not _shapes_ok(sd, params, mixer, lk, k0, k2):
        return None
    return Arch("realplksr" if real else "plksr", s, min_size=4, params=params)


def _shapes_ok(sd: Mapping[str, np.ndarray], pr: dict[str, Any], mixer: str, lk: str, k0: int, k2: int) -> bool:
    """Every block has the first block's layers at the shapes the forward pass assumes
    (a file that is not what its keys suggest is refused here, not half-built)."""
    dim, pdim, k = pr["dim"], pr["pdim"], pr["kernel"]
    if not (0 < pdim <= dim and k % 2 == 1 and k0 % 2 == 1 and k2 % 2 == 1):
        return False
    if lk == "mn_conv":
        n = k // 3
        if n % 2 == 0:
            return False
        lks = {"mn_conv": (pdim, pdim, k, n), "nm_conv": (pdim, pdim, n, k), "nn_conv": (pdim, pdim, n, n)}
    else:
        lks = {"conv": (pdim, pdim, k, k)}
    for i in range(1, pr["blocks"] + 1):
        p = f"feats.{i}"
        want = {f"{p}.{mixer}.0.weight": (2 * dim, dim, k0, k0), f"{p}.{mixer}.2.weight": (dim, 2 * dim, k2, k2),
                f"{p}.refine.weight": (dim, dim, 1, 1), **{f"{p}.lk.{n}.weight": v for n, v in lks.items()}}
        if pr["ea"]:
            want[f"{p}.attn.f.0.weight"] = (dim, dim, 3, 3)
        if pr.get("norm") == "layernorm":
            want[f"{p}.layer_norm.weight"] = (dim,)
        elif pr.get("norm") == "groupnorm":
            if dim % GROUPS:
                return False
            want[f"{p}.norm.weight"] = (dim,)
        if any(key not in sd or tuple(sd[key].shape) != shape for key, shape in want.items()):
            return False
    return True


def _conv(F: Any, sd: Mapping[str, np.ndarray], prefix: str, x: Any, **kw: Any) -> Any:
    b = f"{prefix}.bias"
    return F.conv(x, weight(sd, f"{prefix}.weight"), weight(sd, b) if b in sd else None, **kw)


def _block(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, i: int, x: Any) -> Any:
    p, pr = f"feats.{i}", arch.params
    real = pr["variant"] == "realplksr"
    h = x
    if real and pr["norm"] == "layernorm":
        h = F.layer_norm_channels(h, weight(sd, f"{p}.layer_norm.weight"), weight(sd, f"{p}.layer_norm.bias"),
                                  EPS_LN)
    mixer = f"{p}.channel_mixer" if real else f"{p}.channe_mixer"
    h = _conv(F, sd, f"{mixer}.0", h)
    h = F.mish(h) if real else F.gelu(h)
    h = _conv(F, sd, f"{mixer}.2", h)
    # the large kernel on the first pdim channels; the others pass unchanged
    pdim, dim = pr["pdim"], pr["dim"]
    head = F.channels(h, 0, pdim)
    if pr.get("lk") == "rectplk":
        head = F.add(F.add(_conv(F, sd, f"{p}.lk.mn_conv", head), _conv(F, sd, f"{p}.lk.nm_conv", head)),
                     _conv(F, sd, f"{p}.lk.nn_conv", head))
    else:
        head = _conv(F, sd, f"{p}.lk.conv", head)
    h = F.cat([head, F.channels(h, pdim, dim)]) if pdim < dim else head
    if pr["ea"]:
        h = F.mul(h, F.sigmoid(_conv(F, sd, f"{p}.attn.f.0", h)))
    h = _conv(F, sd, f"{p}.refine", h)
    if real and pr["norm"] == "groupnorm":
        h = F.group_norm(h, GROUPS, weight(sd, f"{p}.norm.weight"), weight(sd, f"{p}.norm.bias"), EPS_GN)
    return F.add(h, x)


def repeat_kernel(channels: int, n: int) -> np.ndarray:
    """The 1x1 kernel of ``repeat_interleave(x, n, dim=1)``: output c*n + k is input c."""
    w = np.zeros((channels * n, channels, 1, 1), np.float32)
    for c in range(channels):
        w[c * n:(c + 1) * n, c] = 1.0
    return w


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    s, pr = arch.scale, arch.params
    h = _conv(F, sd, "feats.0", x)
    for i in range(1, pr["blocks"] + 1):
        h = _block(F, sd, arch, i, h)
    last = pr["blocks"] + (2 if pr["variant"] == "realplksr" else 1)  # RealPLKSR: Dropout2d between
    h = _conv(F, sd, f"feats.{last}", h)
    h = F.add(h, F.conv(x, repeat_kernel(3, s * s)))
    if pr.get("upsampler") != "dysample":
        return F.pixel_shuffle(h, s, channels=3 * s * s)
    groups = pr["groups"]
    init = np.asarray(sd["to_img.init_pos"], np.float32).reshape(-1)
    off = F.mul(_conv(F, sd, "to_img.offset", h), F.sigmoid(_conv(F, sd, "to_img.scope", h)))
    off = F.affine(off, 0.5, init)
    y = F.dysample(h, off, s, groups, 3 * s * s)
    return _conv(F, sd, "to_img.end_conv", y) if "to_img.end_conv.weight" in sd else y
