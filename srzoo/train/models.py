"""Compact super-resolution networks on the Y channel, as PyTorch modules.

Two families from the literature, chosen by name (``ARCHS``), so the choice of
the built-in models is a measured option rather than folklore:

* **post-upsampling** (ESPCN / FSRCNN style, Shi et al. 2016, Dong et al. 2016):
  every convolution runs at the low resolution and the last one makes
  ``scale**2`` phases that a depth-to-space step interleaves. A global skip
  (a learnable 5x5 convolution initialised to the exact MATLAB-bicubic phases)
  makes the body learn only the residual over bicubic (Kim et al., VDSR 2016).
  ``blocks`` plain 3x3 layers or residual blocks (EDSR-style, no batch norm).
* **pre-upsampling** (SRCNN style, Dong et al. 2014): the input is already
  bicubic-upscaled (the manifest says ``io.pre_upsample = "bicubic"``) and every
  convolution runs at the high resolution, ``scale**2`` times the cost.

All of them export to ONNX graphs of Conv / Relu / PRelu / Add / DepthToSpace
that ``cv2.dnn`` runs (:mod:`srzoo.train.export`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from srzoo.resample import cubic_kernel

__all__ = ["ArchSpec", "ARCHS", "build_model", "bicubic_phase_kernels", "macs_per_lr_pixel",
           "PostUpsampleNet", "PreUpsampleNet"]


@dataclass(frozen=True)
class ArchSpec:
    """Hyper-parameters of one architecture (saved in checkpoints)."""

    kind: str                 # "post" (depth-to-space at the end) or "pre" (bicubic input)
    channels: int = 32        # width of the body
    blocks: int = 4           # 3x3 layers (plain) or residual blocks in the body
    residual_blocks: bool = False
    head_kernel: int = 5
    act: str = "relu"         # relu | prelu
    skip: bool = True         # global bicubic skip (post) / input skip (pre)
    shrink: int = 0           # FSRCNN-style 1x1 shrink to this width around the body (0: none)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


#: named architectures; ``srzoo train --arch NAME``
ARCHS: dict[str, ArchSpec] = {
    # ESPCN-like, wider/deeper, global bicubic skip: the built-in models
    "espcn-res": ArchSpec("post", channels=32, blocks=4),
    # the same budget spent on residual blocks (2 convs each)
    "resblock": ArchSpec("post", channels=24, blocks=3, residual_blocks=True),
    # FSRCNN-like: 5x5 1->48, shrink 1x1 to 16, 3x3 body at 16, expand back to 48
    "fsrcnn-res": ArchSpec("post", channels=48, blocks=6, shrink=16),
    # plain ESPCN (Shi et al.): 5x5 64, 3x3 32, no skip -- for reference
    "espcn": ArchSpec("post", channels=64, blocks=1, skip=False, extra={"mid": 32}),
    # SRCNN-style pre-upsampling 9-5-5 with a global skip, channels 32/16
    "srcnn": ArchSpec("pre", channels=32, blocks=1, head_kernel=9),
    # a tiny network for tests
    "tiny": ArchSpec("post", channels=8, blocks=1),
}


def bicubic_phase_kernels(scale: int, size: int = 5) -> np.ndarray:
    """``scale**2 x size x size`` kernels: phase ``(py, px)`` of MATLAB-bicubic
    upscaling by ``scale`` as a convolution of the low-resolution image.

    Output pixel ``s*j + p`` sits at input coordinate ``j + (p + 0.5)/s - 0.5``;
    its taps are ``cubic(d - t)`` for offsets ``t = -size//2 .. size//2``. In the
    image interior ``depth_to_space(conv(x, k))`` equals MATLAB ``imresize(x, s)``.
    """
    r = size // 2
    t = np.arange(-r, r + 1, dtype=np.float64)
    taps = []
    for p in range(scale):
        d = (p + 0.5) / scale - 0.5
        w = cubic_kernel(d - t)
        taps.append(w / w.sum())
    k = np.zeros((scale * scale, size, size))
    for py in range(scale):
        for px in range(scale):
            # conv is correlation: weight at kernel offset t multiplies x[j + t]
            k[py * scale + px] = np.outer(taps[py], taps[px])
    return k


def _act(name: str, channels: int) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "prelu":
        return nn.PReLU(channels, init=0.1)
    raise ValueError(f"unknown activation {name!r} (relu, prelu)")


class _ResBlock(nn.Module):
    def __init__(self, c: int, act: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.act = _act(act, c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def _body(spec: ArchSpec, c: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for _ in range(spec.blocks):
        if spec.residual_blocks:
            layers.append(_ResBlock(c, spec.act))
        else:
            layers += [nn.Conv2d(c, c, 3, padding=1), _act(spec.act, c)]
    return layers


class PostUpsampleNet(nn.Module):
    """LR Y (N,1,h,w) in [0,1] -> SR Y (N,1,h*s,w*s): convolutions at low
    resolution, depth-to-space at the end, optional global bicubic skip."""

    def __init__(self, spec: ArchSpec, scale: int) -> None:
        super().__init__()
        self.spec, self.scale = spec, int(scale)
        c, s2 = spec.channels, self.scale ** 2
        layers: list[nn.Module] = [nn.Conv2d(1, c, spec.head_kernel, padding=spec.head_kernel // 2),
                                   _act(spec.act, c)]
        width = c
        if spec.shrink:
            layers += [nn.Conv2d(c, spec.shrink, 1), _act(spec.act, spec.shrink)]
            width = spec.shrink
        if "mid" in spec.extra:
            mid = int(spec.extra["mid"])
            layers += [nn.Conv2d(width, mid, 3, padding=1), _act(spec.act, mid)]
            width = mid
        else:
            layers += _body(spec, width)
        if spec.shrink:
            layers += [nn.Conv2d(width, c, 1), _act(spec.act, c)]
            width = c
        self.features = nn.Sequential(*layers)
        self.tail = nn.Conv2d(width, s2, 3, padding=1)
        with torch.no_grad():  # start near the skip: a small residual
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()
        self.skip = None
        if spec.skip:
            self.skip = nn.Conv2d(1, s2, 5, padding=2, bias=False)
            with torch.no_grad():
                k = bicubic_phase_kernels(self.scale, 5)
                self.skip.weight.copy_(torch.from_numpy(k).float()[:, None])
        self.shuffle = nn.PixelShuffle(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tail(self.features(x))
        if self.skip is not None:
            y = y + self.skip(x)
        return self.shuffle(y)


class PreUpsampleNet(nn.Module):
    """SRCNN-style: input already upscaled to the output size (bicubic)."""

    def __init__(self, spec: ArchSpec, scale: int) -> None:
        super().__init__()
        self.spec, self.scale = spec, int(scale)
        c = spec.channels
        k = spec.head_kernel
        self.features = nn.Sequential(nn.Conv2d(1, c, k, padding=k // 2), _act(spec.act, c),
                                      nn.Conv2d(c, c // 2, 5, padding=2), _act(spec.act, c // 2))
        self.tail = nn.Conv2d(c // 2, 1, 5, padding=2)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tail(self.features(x))
        return x + y if self.spec.skip else y


def build_model(arch: str | ArchSpec, scale: int) -> nn.Module:
    """A fresh network of architecture ``arch`` (a name in :data:`ARCHS` or a spec)."""
    spec = ARCHS[arch] if isinstance(arch, str) else arch
    if isinstance(arch, str) and arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    if spec.kind == "post":
        return PostUpsampleNet(spec, scale)
    if spec.kind == "pre":
        return PreUpsampleNet(spec, scale)
    raise ValueError(f"unknown architecture kind {spec.kind!r}")


def macs_per_lr_pixel(model: nn.Module, scale: int) -> float:
    """Multiply-adds per *low-resolution* input pixel (convolutions only)."""
    pre = getattr(model, "spec", None) is not None and model.spec.kind == "pre"
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total += kh * kw * (m.in_channels // m.groups) * m.out_channels
    return float(total * (scale * scale if pre else 1))
