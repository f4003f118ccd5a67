#!/usr/bin/env python3
"""Record the golden outputs of every .pth/.safetensors architecture srzoo converts
(srzoo/convert/arch/) with PyTorch, into tests/data/golden/<name>.npz.

Run once, by hand, when an architecture is added (or a golden must change, which
needs a reason in the commit message):

    python tools/record_golden.py [NAME...]  # needs torch; SPAN, PLKSR, OmniSR, SwinIR, DRCT, DAT, RGT, HAT, Swin2SR,
                                             # RCAN, SAFMN, Real-CUGAN, MoSR, Swift-SRGAN and ATD also need
                                             # pip install --no-deps spandrel==0.4.2 einops;
                                             # SRFormer also spandrel-extra-arches==0.2.0;
                                             # SPSR downloads spandrel 0.2.2's wheel with pip (not installed)

Each network is small and random: the parameters come from tests/golden.py's
``weights`` (NumPy PCG64, so the torch-free test regenerates the very same values
from the key names and shapes stored in the file); buffers are stored as they are.
The forward pass is the PyTorch module of tests/torch_archs.py (written after the
papers' reference code, independent of srzoo's graph code) or spandrel's SPAN.
tests/convert/test_golden.py then checks srzoo's conversion against these outputs
with no PyTorch installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import golden  # noqa: E402
import torch_archs as ta  # noqa: E402


def spandrel_span():
    """spandrel's SPAN class, its one file executed on its own (as tests/hub/test_omdb.py does)."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("spandrel")
    if spec is None or spec.origin is None:
        raise SystemExit("SPAN needs spandrel: pip install --no-deps spandrel==0.4.2 einops")
    path = Path(spec.origin).parent / "architectures" / "SPAN" / "__arch" / "span.py"
    src = re.sub(r"^from \S*util import store_hyperparameters$", "store_hyperparameters = lambda: (lambda c: c)",
                 path.read_text(), flags=re.M).replace(".cuda()", "")
    ns: dict = {"__name__": "spandrel_span_reference"}
    exec(compile(src, str(path), "exec"), ns)
    return ns["SPAN"]


def cases():
    """(name, module, forward extra args, input channels, input side[, weight gain])."""
    yield "rrdbnet_x4", ta.RRDBNet(scale=4, nf=8, nb=2, gc=4), (), 3, 12
    yield "rrdbnet_x2", ta.RRDBNet(scale=2, nf=8, nb=1, gc=4), (), 3, 12
    yield "rrdbnet_x1", ta.RRDBNet(scale=1, nf=8, nb=1, gc=4), (), 3, 16
    yield "srvgg_x4", ta.SRVGGNetCompact(nf=8, num_conv=3, upscale=4), (), 3, 12
    yield "srvgg_x2", ta.SRVGGNetCompact(nf=8, num_conv=2, upscale=2), (), 3, 16
    carn = ta.CARNM()
    for s in (2, 3, 4):
        yield f"carn-m_x{s}", carn, (s,), 3, 12
    yield "rfdn_x4", ta.RFDN(nf=8, upscale=4), (), 3, 16
    yield "vdsr", ta.VDSR(), (), 1, 16
    yield "span_x2", spandrel_span()(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2), (), 3, 12, 0.25
    # RealPLKSR (OpenModelDB's realplksr / realplksr-dysample), spandrel's module
    import spandrel_src

    dys = spandrel_src.load("__arch_helpers/dysample.py")["DySample"]
    real = spandrel_src.load("PLKSR/__arch/RealPLKSR.py", DySample=dys)["RealPLKSR"]
    yield ("plksr_real-ln-x2", real(dim=8, n_blocks=2, upscaling_factor=2, kernel_size=7, layer_norm=True),
           (), 3, 13, 0.5)
    yield ("plksr_real-gn-dys-x3", real(dim=8, n_blocks=1, upscaling_factor=3, kernel_size=5, dysample=True),
           (), 3, 11, 0.5)
    # (SPAN's input is scaled by 255 and every block multiplies: a smaller gain keeps it finite)
    # OmniSR, spandrel's module (its helper files served by tests/spandrel_src.py); odd sides
    # that the graph pads to the window (4: 13 -> 16; 8 without position bias: 11 -> 16)
    from convert.test_arch_omnisr import omnisr_class

    omni = omnisr_class()
    yield "omnisr_w4-x2", omni(num_feat=8, block_num=1, window_size=4, res_num=1, up_scale=2), (), 3, 13
    yield ("omnisr_w8-nope-nobias-x3", omni(num_feat=8, block_num=1, window_size=8, res_num=2, up_scale=3, pe=False,
                                            bias=False), (), 3, 11)
    # SwinIR, spandrel's module: every upsampler, 1conv/3conv, windows 4, 7 (img_range 255) and 8
    import swin_refs

    sw = swin_refs.swinir_class()
    base = dict(embed_dim=12, depths=[2], num_heads=[2], mlp_ratio=2.0)
    yield "swinir_ps-x2-w4", sw(**base, img_size=8, window_size=4, upscale=2, upsampler="pixelshuffle"), (), 3, 13
    yield ("swinir_psd-x3-3conv-w8", sw(**base, img_size=16, window_size=8, upscale=3, upsampler="pixelshuffledirect",
                                        resi_connection="3conv"), (), 3, 11)
    yield ("swinir_nc-x4-w4", sw(embed_dim=12, depths=[2, 1], num_heads=[2, 3], mlp_ratio=2.0, img_size=8,
                                 window_size=4, upscale=4, upsampler="nearest+conv"), (), 3, 9)
    yield ("swinir_none-x1-w7", sw(**base, img_size=14, window_size=7, upscale=1, upsampler="", img_range=255.0),
           (), 3, 13, 0.5)
    # DRCT, spandrel's module (no padding upstream: input sides multiples of the window)
    dr = swin_refs.drct_class()
    dbase = dict(embed_dim=12, depths=[6], num_heads=[2], window_size=4, mlp_ratio=2.0, gc=4, upsampler="pixelshuffle")
    yield "drct_shift-x2", dr(**dbase, img_size=8, upscale=2), (), 3, 12
    yield "drct_noshift-x3-identity", dr(**dbase, img_size=4, upscale=3, resi_connection="identity"), (), 3, 8
    # DAT (OpenModelDB's dat), spandrel's module; DropPath is the identity at inference; embed_dim 96 gives
    # the position-bias MLP three features (with one, its LayerNorm makes the bias a constant)
    import einops  # noqa: F401  (spandrel's DAT imports it)

    class DropPath(torch.nn.Module):
        def __init__(self, p=0.0):
            super().__init__()

        def forward(self, x):
            return x
    dat = spandrel_src.load("DAT/__arch/DAT.py", DropPath=DropPath, trunc_normal_=torch.nn.init.trunc_normal_)["DAT"]
    yield ("dat_2x4-ps-x2", dat(embed_dim=96, split_size=[2, 4], depth=[3, 1], num_heads=[2, 2], expansion_factor=2.0,
                                upscale=2, img_size=16), (), 3, 13)
    yield ("dat_8x16-psd-x3-3conv", dat(embed_dim=32, split_size=[8, 16], depth=[1, 2], num_heads=[2, 2],
                                        expansion_factor=2.0, upscale=3, upsampler="pixelshuffledirect",
                                        resi_connection="3conv", img_size=16), (), 3, 11)
    # RGT (OpenModelDB's rgt), spandrel's module (inputs of 16 px and more)
    rgt = spandrel_src.load("RGT/__arch/rgt.py", DropPath=DropPath)["RGT"]
    yield ("rgt_2x4-x2", rgt(embed_dim=96, split_size=[2, 4], depth=[3, 2], num_heads=[2, 2], mlp_ratio=2.0,
                             upscale=2, img_size=16), (), 3, 19)
    # HAT (OpenModelDB's hat), spandrel's module: hybrid attention blocks and overlapping cross-attention;
    # pixelshuffle x2 (window 4, overlap 0.5), and x1 with identity residuals, no patch norm, window 8, overlap 1
    hat = swin_refs.hat_class()
    hbase = dict(embed_dim=12, compress_ratio=3, squeeze_factor=4, mlp_ratio=2.0)
    yield ("hat_ps-x2-w4", hat(**hbase, depths=[2], num_heads=[2], window_size=4, overlap_ratio=0.5, img_size=8,
                               upscale=2), (), 3, 13)
    yield ("hat_x1-identity-w8-r1", hat(**hbase, depths=[2, 1], num_heads=[2, 3], window_size=8, overlap_ratio=1.0,
                                        img_size=16, upscale=1, resi_connection="identity", patch_norm=False),
           (), 3, 11)
    # Swin2SR, spandrel's module: Swin V2 blocks; pixelshuffle x2 (window 4, shifted), pixelshuffle_aux x3
    # (the bicubic branch, 3conv), and x1 with window 7 (img_range 255)
    s2 = swin_refs.swin2sr_class()
    sbase = dict(embed_dim=12, depths=[2], num_heads=[2], mlp_ratio=2.0)
    yield "swin2sr_ps-x2-w4", s2(**sbase, img_size=8, window_size=4, upscale=2, upsampler="pixelshuffle"), (), 3, 13
    yield ("swin2sr_aux-x3-3conv-w4", s2(**sbase, img_size=8, window_size=4, upscale=3, upsampler="pixelshuffle_aux",
                                         resi_connection="3conv"), (), 3, 11)
    yield ("swin2sr_none-x1-w7", s2(**sbase, img_size=14, window_size=7, upscale=1, upsampler="", img_range=255.0),
           (), 3, 13, 0.5)
    # RCAN (OpenModelDB's rcan), spandrel's module: MeanShift-normalised x3, and the PixelUnshuffle
    # variant at x1 on an odd side (padded to the unshuffle factor 4 in the graph: 13 -> 16)
    from convert.test_arch_rcan import rcan_class

    rc = rcan_class()
    yield "rcan_norm-x3", rc(scale=3, n_resgroups=2, n_resblocks=2, n_feats=8, reduction=2), (), 3, 12
    yield ("rcan_unshuffle-x1", rc(scale=1, n_resgroups=1, n_resblocks=2, n_feats=8, reduction=2, unshuffle_mod=True),
           (), 3, 13)
    # SAFMN and SAFMN-BCIE, spandrel's modules, at multiples of spandrel's size requirement (8; 16)
    from convert.test_arch_safmn import classes as safmn_classes

    safmn, bcie = safmn_classes()
    yield "safmn_x2", safmn(dim=8, n_blocks=2, upscaling_factor=2), (), 3, 16
    yield "safmn_bcie-u2", bcie(dim=8, n_blocks=1, num_layers=2, upscaling_factor=2), (), 3, 16
    # SPSR, spandrel 0.2.2's module (its last release with SPSR; pip downloads the wheel into a
    # temporary folder), upconv x2 and pixelshuffle x4, odd sides
    import tempfile

    from convert.test_arch_spsr import RELEASE, spsr_from

    spsr = spsr_from(spandrel_src.old_release(RELEASE, Path(tempfile.mkdtemp(prefix="srzoo-spandrel-"))))
    yield "spsr_upconv-x2", spsr(in_nc=3, out_nc=3, num_filters=8, num_blocks=20, upscale=2), (), 3, 11, 0.5
    yield ("spsr_pixelshuffle-x4", spsr(in_nc=3, out_nc=3, num_filters=8, num_blocks=20, upscale=4,
                                        upsample_mode="pixelshuffle"), (), 3, 9, 0.5)
    # SRFormer, spandrel-extra-arches' module (pip install --no-deps spandrel-extra-arches==0.2.0): every
    # upsampler, 1conv/3conv, windows 4, 6 (odd half-shift) and 8, shifted and unshifted (img_size <= window)
    sf = swin_refs.srformer_class()
    fbase = dict(embed_dim=12, depths=[2], num_heads=[2], mlp_ratio=2.0)
    yield "srformer_ps-x2-w4", sf(**fbase, img_size=8, window_size=4, upscale=2, upsampler="pixelshuffle"), (), 3, 13
    yield ("srformer_psd-x3-3conv-w6", sf(**fbase, img_size=12, window_size=6, upscale=3,
                                          upsampler="pixelshuffledirect", resi_connection="3conv"), (), 3, 11)
    yield ("srformer_nc-x4-w4-nobias", sf(embed_dim=12, depths=[2, 1], num_heads=[2, 3], mlp_ratio=2.0, img_size=8,
                                          window_size=4, upscale=4, upsampler="nearest+conv", qkv_bias=False),
           (), 3, 9)
    yield ("srformer_none-x1-w8-unshifted", sf(**fbase, img_size=8, window_size=8, upscale=1, upsampler=""),
           (), 3, 13, 0.5)
    # Real-CUGAN (OpenModelDB's real-cugan / cugan), spandrel's module: 2x, 3x (pro), 4x and the fast
    # 2x; odd sides, which the graph reflect-pads (and rounds up to the variant's multiple) and crops
    cu = spandrel_src.load("RealCUGAN/__arch/upcunet_v3.py")
    yield "realcugan_2x", cu["UpCunet2x"](in_channels=3, out_channels=3), (), 3, 21
    yield "realcugan_3x-pro", cu["UpCunet3x"](in_channels=3, out_channels=3, pro=True), (), 3, 19
    yield "realcugan_4x", cu["UpCunet4x"](in_channels=3, out_channels=3), (), 3, 23
    yield "realcugan_2x-fast", cu["UpCunet2x_fast"](in_channels=3, out_channels=3), (), 3, 44
    # MoSR (OpenModelDB's mosr), spandrel's module: each upsampler (pixel shuffle, geo-ensemble, DySample)
    mosr_ns = spandrel_src.load("MoSR/__arch/mosr_arch.py", DropPath=DropPath, DySample=dys)
    yield "mosr_ps-x2", mosr_ns["MoSR"](upscale=2, n_block=2, dim=16, upsampler="ps"), (), 3, 13
    yield ("mosr_gps-x4-k5", mosr_ns["MoSR"](upscale=4, n_block=1, dim=16, upsampler="gps", kernel_size=5), (), 3, 11)
    yield ("mosr_dys-x3-e2", mosr_ns["MoSR"](upscale=3, n_block=2, dim=16, upsampler="dys", expansion_ratio=2.0,
                                             conv_ratio=0.5), (), 3, 12)
    # Swift-SRGAN (OpenModelDB's swift-srgan), spandrel's module; BatchNorm statistics away from 0 / 1
    swift = spandrel_src.load("SwiftSRGAN/__arch/SwiftSRGAN.py")["Generator"]
    for name, kw, side in (("swiftsrgan_x4", dict(num_channels=8, num_blocks=2, upscale_factor=4), 11),
                           ("swiftsrgan_x2-gray", dict(in_channels=1, num_channels=8, num_blocks=1, upscale_factor=2),
                            13)):
        net = swift(**kw)
        with torch.no_grad():
            for b_name, b in net.named_buffers():
                if b_name.endswith("running_mean"):
                    b.uniform_(-0.1, 0.1)
                elif b_name.endswith("running_var"):
                    b.uniform_(0.5, 1.5)
        yield name, net, (), kw.get("in_channels", 3), side
    # ATD, spandrel's module with its one torch.sort made stable (tests/swin_refs.py::atd_class): pixelshuffle x2
    # (window 4, 17 -> 20: 400 tokens, two category groups of 256, the second filled by mirrored tokens), and
    # ATD-light (dim 48, pixelshuffledirect x4, groups of 128: 13 -> 16 with window 8, 256 tokens), 3conv, no mean
    atd = swin_refs.atd_class()
    yield ("atd_ps-x2-w4", atd(embed_dim=12, depths=[2, 2], num_heads=[2, 3], window_size=4, num_tokens=8,
                               reducted_dim=4, mlp_ratio=2.0, img_size=8, upscale=2, upsampler="pixelshuffle",
                               category_size=256), (), 3, 17)
    yield ("atd_light-psd-x4-w8-3conv", atd(embed_dim=48, depths=[3], num_heads=[4], window_size=8, num_tokens=16,
                                            reducted_dim=4, mlp_ratio=1.0, img_size=16, upscale=4,
                                            upsampler="pixelshuffledirect", category_size=128,
                                            resi_connection="3conv", convffn_kernel_size=3, norm=False),
           (), 3, 13, 0.5)


def record(name: str, module: torch.nn.Module, extra: tuple, channels: int, size: int,
           gain: float = 1.0) -> Path:
    module.eval()
    params = {k for k, _ in module.named_parameters()}
    sd = module.state_dict()
    spec = [(k, list(v.shape)) for k, v in sd.items() if k in params]
    w = golden.weights(spec, gain=gain)
    # a parameter registered under two names (SPSR's HR_conv0_new is also model.<n>) is one
    # weight: its second name is stored with the first's new value, not as a buffer of its own
    named = {v.data_ptr(): k for k, v in sd.items() if k in params}
    alias = {k: named[v.data_ptr()] for k, v in sd.items() if k not in params and v.data_ptr() in named}
    buffers = {k: v.numpy() for k, v in sd.items() if k not in params and k not in alias}
    module.load_state_dict({**{k: torch.from_numpy(v) for k, v in w.items()},
                            **{k: torch.from_numpy(w[a]) for k, a in alias.items()},
                            **{k: torch.from_numpy(v) for k, v in buffers.items()}}, strict=True)
    x = golden.probe(channels, size)
    with torch.no_grad():
        # (a copy: RCAN's forward scales its input in place)
        y = module(torch.from_numpy(x.copy()), *extra).numpy().astype(np.float32)
    meta = {"scale": int(extra[0]) if extra else None, "torch": torch.__version__,
            "module": type(module).__name__, "buffers": sorted(buffers), "gain": gain}
    if alias:
        meta["alias"] = alias
    out = golden.GOLDEN / f"{name}.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, spec=np.array(json.dumps(spec)), meta=np.array(json.dumps(meta)), x=x, y=y,
                        **{f"buffer:{k}": v for k, v in buffers.items()})
    print(f"{out.relative_to(ROOT)}: {len(spec)} tensors, in {x.shape} -> out {y.shape}, "
          f"out range [{y.min():.3f}, {y.max():.3f}], {out.stat().st_size} bytes")
    return out


def main() -> None:
    """``python tools/record_golden.py [NAME...]``: every case, or only the named ones
    (e.g. a newly added architecture's, leaving the committed files alone)."""
    only = set(sys.argv[1:])
    torch.manual_seed(0)
    for case in cases():
        if not only or case[0] in only:
            record(*case)


if __name__ == "__main__":
    main()
