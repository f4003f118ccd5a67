"""spandrel's Swin-family modules for parity tests (SwinIR; SRFormer, DRCT, HAT to come),
loaded through :mod:`spandrel_src` with stand-ins for spandrel's timm helpers, and the
unit-scale random initialisation those tests use. Needs torch and spandrel (callers skip
without them)."""

from __future__ import annotations

from typing import Any

import spandrel_src


def _common() -> dict[str, Any]:
    import torch

    nn = torch.nn
    return {"pad_to_multiple": spandrel_src.load("__arch_helpers/padding.py")["pad_to_multiple"],
            "DropPath": lambda p: nn.Identity(),
            "to_2tuple": lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v),
            "trunc_normal_": nn.init.trunc_normal_}


def swinir_class() -> Any:
    return spandrel_src.load("SwinIR/__arch/SwinIR.py", **_common())["SwinIR"]


def randomise(net: Any, seed: int) -> Any:
    """Unit-scale weights (fan-in scaled), LayerNorm scales and biases away from 1 and 0,
    relative position bias tables of order 1; eval mode."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim >= 2 and "relative_position_bias_table" not in name:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            elif name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return net.eval()


def drct_class() -> Any:
    return spandrel_src.load("DRCT/__arch/drct_arch.py", **_common())["DRCT"]


def hat_class() -> Any:
    import einops  # noqa: F401  (spandrel's HAT imports it)

    return spandrel_src.load("HAT/__arch/HAT.py", **_common())["HAT"]


def swin2sr_class() -> Any:
    return spandrel_src.load("Swin2SR/__arch/Swin2SR.py", **_common())["Swin2SR"]


def srformer_class() -> Any:
    """SRFormer, from spandrel-extra-arches (not in spandrel 0.4.2 itself)."""
    c = _common()
    return spandrel_src.load_extra("SRFormer/__arch/SRFormer.py", to_2tuple=c["to_2tuple"],
                                   trunc_normal_=c["trunc_normal_"])["SRFormer"]


class _StableSortTorch:
    """``torch`` with ``sort`` always stable, for spandrel's ATD: its AC-MSA sorts category
    ids (nearly all tied) with ``stable=False``, and the order torch gives ties there is
    implementation-defined (on torch 2.13's CPU it equals the stable order only up to 16
    tokens); srzoo's graph sorts stably."""

    def __init__(self, torch: Any) -> None:
        self._torch = torch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)

    def sort(self, *args: Any, **kw: Any) -> Any:
        kw["stable"] = True
        return self._torch.sort(*args, **kw)


def atd_class() -> Any:
    """spandrel's ATD with its one ``torch.sort`` made stable (see :class:`_StableSortTorch`)."""
    import torch

    c = _common()
    ns = spandrel_src.load("ATD/__arch/atd_arch.py", to_2tuple=c["to_2tuple"], trunc_normal_=c["trunc_normal_"])
    ns["torch"] = _StableSortTorch(torch)
    return ns["ATD"]
