"""Real-CUGAN (bilibili's anime upscaler, the UpCunet networks): the OpenModelDB
``real-cugan`` and ``cugan`` architectures, as spandrel's ``RealCUGAN`` reads them.

Two cascaded U-Nets of unpadded 3x3 convolutions with LeakyReLU 0.1: ``unet1``
(``conv1`` 2 convs, ``conv1_down`` a 2x2 stride-2 conv, ``conv2`` 2 convs and a
squeeze-excitation block ``seblock`` (mean, 1x1, ReLU, 1x1, sigmoid), ``conv2_up``
a 2x2 stride-2 transposed conv, ``conv3``, then ``conv_bottom``) and ``unet2``
(one level deeper: ``conv2_down``, ``conv3``, ``conv3_up``, ``conv4``, ``conv4_up``,
``conv5``, ``conv_bottom``); the skips crop the border off (4 and 16 pixels). The
output is ``unet2(unet1(x)) + crop(unet1(x), 20)``.

Variants, read from the weights:

- **2x**: ``unet1.conv_bottom`` a 4x4 stride-2 transposed conv; input reflect-padded
  by 18 (and to even sides), output cropped to 2H x 2W.
- **3x**: ``unet1.conv_bottom`` a 5x5 stride-3 transposed conv; padded by 14 and to
  multiples of 4.
- **4x**: ``conv_final`` (3x3, 64 -> 4 * out) after the U-Nets (64 channels out),
  a 1-pixel crop, pixel shuffle by 2, plus the nearest-neighbour 4x input; padded by 19.
- **2x fast** (``UpCunet2x_fast``, traiNNer's "shuffle CUGAN"): pixel unshuffle by 2
  first (``unet1.conv1`` sees 4 * in channels), then as 4x at half resolution; padded
  by 38. spandrel needs sides that are multiples of 4 for it; the graph pads to
  multiples of 4 (reflect) and crops, so any size runs (the same result where spandrel runs).
- **pro**: a ``pro`` tensor in the state dict; the input is mapped by ``x * 0.7 + 0.15``
  and the output back by ``(y - 0.15) / 0.7``.

All padding is in the graph (one reflect ``Pad`` per side, as upstream, then a crop to
``s*H x s*W``), so any input size (from :data:`MIN_SIZE`: 20, 18, 20 and 42 px) and tiles run.
``UNet2.forward``'s ``alpha`` (upstream's runtime denoise-strength knob, default 1)
is fixed at 1: what spandrel and every published file run. The networks read the
channels the weights say (3 for every catalogue record); an alpha channel is handled
by srzoo's pipeline as for every other network, not by the graph.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from srzoo.convert.arch import Arch, weight

SLOPE = 0.1
PRO_MUL, PRO_ADD = 0.7, 0.15
#: (reflect pad, multiple the sides are padded to) per variant
_PAD = {"2x": (18, 2), "3x": (14, 4), "4x": (19, 2), "2x-fast": (38, 4)}
#: smallest input side per variant: a reflection must stay inside the image, so the pad
#: plus the rounding up to the multiple stays below the side (spandrel states 32, fast 40)
MIN_SIZE = {v: next(n for n in range(p + 1, p + 2 * m + 1)
                   if all(p + (-k) % m <= k - 1 for k in range(n, n + m))) for v, (p, m) in _PAD.items()}
_NEED = ("unet1.conv1.conv.0.weight", "unet1.conv1.conv.2.weight", "unet1.conv1_down.weight",
         "unet1.conv2.conv.0.weight", "unet1.conv2.conv.2.weight", "unet1.conv2.seblock.conv1.weight",
         "unet1.conv2_up.weight", "unet1.conv_bottom.weight", "unet1.conv3.weight",
         "unet2.conv1.conv.0.weight", "unet2.conv1_down.weight", "unet2.conv2.conv.0.weight",
         "unet2.conv2.seblock.conv1.weight", "unet2.conv3.conv.0.weight", "unet2.conv3.seblock.conv1.weight",
         "unet2.conv3_up.weight", "unet2.conv4.conv.0.weight", "unet2.conv4_up.weight", "unet2.conv5.weight",
         "unet2.conv_bottom.weight", "unet2.conv2_down.weight")


def _shape(sd: Mapping[str, np.ndarray], key: str) -> tuple[int, ...] | None:
    v = sd.get(key)
    return None if v is None else tuple(int(d) for d in np.shape(v))


def _unet_shapes(cin: int, cout: int, bottom: tuple[int, int, int, int], deep: bool) -> dict[str, tuple]:
    """Every weight of ``unet1`` (``deep`` False) or ``unet2`` at the shapes the forward pass assumes."""
    def unetconv(p: str, i: int, m: int, o: int, se: bool) -> dict[str, tuple]:
        d = {f"{p}.conv.0.weight": (m, i, 3, 3), f"{p}.conv.0.bias": (m,),
             f"{p}.conv.2.weight": (o, m, 3, 3), f"{p}.conv.2.bias": (o,)}
        if se:
            d.update({f"{p}.seblock.conv1.weight": (o // 8, o, 1, 1), f"{p}.seblock.conv1.bias": (o // 8,),
                      f"{p}.seblock.conv2.weight": (o, o // 8, 1, 1), f"{p}.seblock.conv2.bias": (o,)})
        return d
    want = {**unetconv("conv1", cin, 32, 64, False), "conv1_down.weight": (64, 64, 2, 2), "conv1_down.bias": (64,),
            "conv_bottom.weight": bottom, "conv_bottom.bias": (cout,)}
    if deep:
        want.update({**unetconv("conv2", 64, 64, 128, True), "conv2_down.weight": (128, 128, 2, 2),
                     "conv2_down.bias": (128,), **unetconv("conv3", 128, 256, 128, True),
                     "conv3_up.weight": (128, 128, 2, 2), "conv3_up.bias": (128,),
                     **unetconv("conv4", 128, 64, 64, True), "conv4_up.weight": (64, 64, 2, 2),
                     "conv4_up.bias": (64,), "conv5.weight": (64, 64, 3, 3), "conv5.bias": (64,)})
    else:
        want.update({**unetconv("conv2", 64, 128, 64, True), "conv2_up.weight": (64, 64, 2, 2),
                     "conv2_up.bias": (64,), "conv3.weight": (64, 64, 3, 3), "conv3.bias": (64,)})
    return want


def detect(sd: Mapping[str, np.ndarray], scale: int | None) -> Arch | None:
    if not all(k in sd for k in _NEED):
        return None
    c1 = _shape(sd, "unet1.conv1.conv.0.weight")
    if c1 is None or len(c1) != 4:
        return None
    cin = c1[1]
    final = _shape(sd, "conv_final.weight")
    if final is not None:
        if len(final) != 4 or final[0] % 4:
            return None
        cout = final[0] // 4
        # a 4x with 4k input channels and a fast 2x with k have the same shapes; as spandrel,
        # read it as the fast 2x (every published 4x has 3 channels in)
        variant = "2x-fast" if cout * 4 == cin else "4x"
        if variant == "2x-fast":
            cin //= 4
        u_in, u_out, u2_in = c1[1], 64, 64
        bottom1 = (64, u_out, 4, 4)
        extra = {"conv_final.weight": (4 * cout, 64, 3, 3), "conv_final.bias": (4 * cout,)}
    else:
        b1 = _shape(sd, "unet1.conv_bottom.weight")
        b2 = _shape(sd, "unet2.conv_bottom.weight")
        if b1 is None or b2 is None or len(b1) != 4 or len(b2) != 4:
            return None
        variant = "3x" if b1[2] == 5 else "2x"
        cout = b2[0]
        if cout != cin:
            return None  # unet2 reads unet1's output with the input's channel count
        u_in, u_out, u2_in = cin, cout, cin
        bottom1 = (64, cout, 5, 5) if variant == "3x" else (64, cout, 4, 4)
        extra = {}
    s = {"2x": 2, "3x": 3, "4x": 4, "2x-fast": 2}[variant]
    if scale is not None and scale != s:
        return None
    want = {**{f"unet1.{k}": v for k, v in _unet_shapes(u_in, u_out, bottom1, False).items()},
            **{f"unet2.{k}": v for k, v in _unet_shapes(u2_in, u_out, (u_out, 64, 3, 3), True).items()}, **extra}
    if any(_shape(sd, k) != v for k, v in want.items()):
        return None
    pro = "pro" in sd
    if pro and variant == "2x-fast":
        return None  # spandrel's fast network has no pro mode
    return Arch("realcugan", s, in_channels=cin, out_channels=cout,
                min_size=MIN_SIZE[variant],
                params={"variant": variant, "pro": pro})


def _conv(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, **kw: Any) -> Any:
    return F.conv(x, weight(sd, f"{p}.weight"), weight(sd, f"{p}.bias"), pad=0, **kw)


def _up(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any, stride: int, pad: int = 0) -> Any:
    return F.conv_transpose(x, weight(sd, f"{p}.weight"), weight(sd, f"{p}.bias"), stride=stride, pad=pad)


def _unetconv(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any) -> Any:
    z = F.lrelu(_conv(F, sd, f"{p}.conv.0", x), SLOPE)
    z = F.lrelu(_conv(F, sd, f"{p}.conv.2", z), SLOPE)
    if f"{p}.seblock.conv1.weight" not in sd:
        return z
    a = F.relu(_conv(F, sd, f"{p}.seblock.conv1", F.global_mean(z)))
    return F.mul(z, F.sigmoid(_conv(F, sd, f"{p}.seblock.conv2", a)))


def _bottom(F: Any, sd: Mapping[str, np.ndarray], p: str, x: Any) -> Any:
    w = sd[f"{p}.weight"]
    if w.shape[2] == 3:                       # a plain conv (unet2, and no unet1 variant here)
        return _conv(F, sd, p, x)
    k = int(w.shape[2])                       # 4x4 stride 2 pad 3, or 5x5 stride 3 pad 2
    return _up(F, sd, p, x, 2 if k == 4 else 3, 3 if k == 4 else 2)


def _unet1(F: Any, sd: Mapping[str, np.ndarray], x: Any) -> Any:
    x1 = _unetconv(F, sd, "unet1.conv1", x)
    x2 = F.lrelu(_conv(F, sd, "unet1.conv1_down", x1, stride=2), SLOPE)
    x2 = _unetconv(F, sd, "unet1.conv2", x2)
    x2 = F.lrelu(_up(F, sd, "unet1.conv2_up", x2, 2), SLOPE)
    x3 = F.lrelu(_conv(F, sd, "unet1.conv3", F.add(F.crop_border(x1, 4), x2)), SLOPE)
    return _bottom(F, sd, "unet1.conv_bottom", x3)


def _unet2(F: Any, sd: Mapping[str, np.ndarray], x: Any) -> Any:
    x1 = _unetconv(F, sd, "unet2.conv1", x)
    x2 = F.lrelu(_conv(F, sd, "unet2.conv1_down", x1, stride=2), SLOPE)
    x2 = _unetconv(F, sd, "unet2.conv2", x2)
    x3 = F.lrelu(_conv(F, sd, "unet2.conv2_down", x2, stride=2), SLOPE)
    x3 = _unetconv(F, sd, "unet2.conv3", x3)
    x3 = F.lrelu(_up(F, sd, "unet2.conv3_up", x3, 2), SLOPE)
    x4 = _unetconv(F, sd, "unet2.conv4", F.add(F.crop_border(x2, 4), x3))   # alpha = 1
    x4 = F.lrelu(_up(F, sd, "unet2.conv4_up", x4, 2), SLOPE)
    x5 = F.lrelu(_conv(F, sd, "unet2.conv5", F.add(F.crop_border(x1, 16), x4)), SLOPE)
    return _conv(F, sd, "unet2.conv_bottom", x5)


def forward(F: Any, sd: Mapping[str, np.ndarray], arch: Arch, x: Any) -> Any:
    variant, s = arch.params["variant"], arch.scale
    if arch.params["pro"]:
        x = F.affine(x, PRO_MUL, PRO_ADD)
    x0 = x
    pad, multiple = _PAD[variant]
    h = F.pad_reflect_multiple(x, pad, multiple)
    if variant == "2x-fast":
        h = F.pixel_unshuffle(h, 2, arch.in_channels)
    u1 = _unet1(F, sd, h)
    y = F.add(_unet2(F, sd, u1), F.crop_border(u1, 20))
    if variant in ("4x", "2x-fast"):
        y = F.crop_border(_conv(F, sd, "conv_final", y), 1)
        y = F.pixel_shuffle(y, 2, channels=4 * arch.out_channels)
        y = F.add(F.crop_to(y, x0, s), F.up_nearest(x0, s))
    else:
        y = F.crop_to(y, x0, s)
    if arch.params["pro"]:
        y = F.affine(y, 1 / PRO_MUL, -PRO_ADD / PRO_MUL)
    return y
