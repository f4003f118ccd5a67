"""Training losses: pixel L1 / L2, MS-SSIM (Wang et al. 2003) and L1 + MS-SSIM
(Zhao et al., Loss Functions for Image Restoration with Neural Networks, 2017).

MS-SSIM here is the differentiable twin of :func:`srzoo.evaluate.metrics.ms_ssim` for
training patches: Gaussian 11x11 window (sigma 1.5), 'valid' statistics, 2x2
average pooling between scales, the standard weights. A patch too small for
five scales uses as many scales as fit (each needs the 11x11 window), with the
weights of those scales renormalised -- documented, and a warning-free default
for 64..160 px patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "make_loss", "ms_ssim_torch", "MS_SSIM_WEIGHTS"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gauss(size: int = 11, sigma: float = 1.5, dtype=torch.float32) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def _filt(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    gx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    gy = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    return F.conv2d(F.conv2d(x, gx, groups=c), gy, groups=c)


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, c1: float, c2: float):
    mx, my = _filt(x, g), _filt(y, g)
    sxx = _filt(x * x, g) - mx * mx
    syy = _filt(y * y, g) - my * my
    sxy = _filt(x * y, g) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(dim=(1, 2, 3)), cs.mean(dim=(1, 2, 3))


def ms_ssim_torch(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0,
                  scales: int = 5) -> torch.Tensor:
    """Per-image MS-SSIM of N x C x H x W tensors (fewer scales if they do not fit)."""
    g = _gauss(dtype=x.dtype).to(x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n = 1
    h, w = x.shape[-2:]
    while n < scales and min(h, w) // (2 ** n) >= 11:
        n += 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:n], dtype=x.dtype, device=x.device)
    if n < len(MS_SSIM_WEIGHTS):  # fewer scales fit: renormalise the ones used
        weights = weights / weights.sum()
    vals = []
    for i in range(n):
        full, cs = _ssim_terms(x, y, g, c1, c2)
        vals.append(F.relu(cs) if i < n - 1 else F.relu(full))
        if i < n - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(vals, dim=0)  # n x N
    return torch.prod(stacked ** weights[:, None], dim=0)


def _l1(a, b):
    return F.l1_loss(a, b)


def _l2(a, b):
    return F.mse_loss(a, b)


def _msssim(a, b):
    return 1.0 - ms_ssim_torch(a, b).mean()


def _l1_msssim(a, b, alpha: float = 0.84):
    # Zhao et al.: alpha * (1 - MS-SSIM) + (1 - alpha) * L1
    return alpha * _msssim(a, b) + (1.0 - alpha) * _l1(a, b)


LOSSES = {"l1": _l1, "l2": _l2, "ms-ssim": _msssim, "l1+ms-ssim": _l1_msssim}


def make_loss(name: str):
    """The loss function named ``name`` (one of :data:`LOSSES`)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
