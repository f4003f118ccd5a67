"""Speed per megapixel of the converted new architectures on each engine, side by side.

Builds the ONNX of a randomly initialised network of the published shape (weights do
not change the speed) with srzoo's converter code, then runs it on ONNX Runtime (CPU),
OpenVINO (CPU) and cv2.dnn where each can import it, on the same input, in one run:

    python bench/arch_speed.py [--size 128] [--repeat 3] [--only omnisr] [--engines onnxruntime,openvino]

Prints a Markdown table: seconds per input megapixel (median of ``--repeat`` runs after
one warm-up) and each engine's time relative to ONNX Runtime. Numbers depend on the
machine and its load; compare the ratios, not the absolute times, between machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srzoo.convert import arch as archs  # noqa: E402
from srzoo.convert.check import build  # noqa: E402


def realplksr_sd(dim: int = 64, blocks: int = 28, kernel: int = 17, scale: int = 4, dysample: bool = False,
                 layer_norm: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """A RealPLKSR state dict with the published default shape (spandrel's key names)."""
    rng = np.random.default_rng(seed)

    def conv(cout: int, cin: int, k: int) -> np.ndarray:
        return (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)

    sd: dict[str, np.ndarray] = {"feats.0.weight": conv(dim, 3, 3), "feats.0.bias": np.zeros(dim, np.float32)}
    pdim = dim // 4
    for i in range(1, blocks + 1):
        p = f"feats.{i}"
        sd.update({f"{p}.channel_mixer.0.weight": conv(2 * dim, dim, 3),
                   f"{p}.channel_mixer.0.bias": np.zeros(2 * dim, np.float32),
                   f"{p}.channel_mixer.2.weight": conv(dim, 2 * dim, 3),
                   f"{p}.channel_mixer.2.bias": np.zeros(dim, np.float32),
                   f"{p}.lk.conv.weight": conv(pdim, pdim, kernel), f"{p}.lk.conv.bias": np.zeros(pdim, np.float32),
                   f"{p}.attn.f.0.weight": conv(dim, dim, 3), f"{p}.attn.f.0.bias": np.zeros(dim, np.float32),
                   f"{p}.refine.weight": conv(dim, dim, 1), f"{p}.refine.bias": np.zeros(dim, np.float32)})
        norm = "layer_norm" if layer_norm else "norm"
        sd[f"{p}.{norm}.weight"] = np.ones(dim, np.float32)
        sd[f"{p}.{norm}.bias"] = np.zeros(dim, np.float32)
    c = 3 * scale * scale
    sd[f"feats.{blocks + 2}.weight"] = conv(c, dim, 3)
    sd[f"feats.{blocks + 2}.bias"] = np.zeros(c, np.float32)
    if dysample:
        groups = 3 if scale % 2 else 4
        n = 2 * groups * scale * scale
        sd.update({"to_img.offset.weight": conv(n, c, 1), "to_img.offset.bias": np.zeros(n, np.float32),
                   "to_img.scope.weight": conv(n, c, 1), "to_img.init_pos": np.zeros((1, n, 1, 1), np.float32),
                   "to_img.end_conv.weight": conv(3, c, 1), "to_img.end_conv.bias": np.zeros(3, np.float32)})
    return sd


def omnisr_sd(num_feat: int = 64, res_num: int = 5, window: int = 8, scale: int = 4,
              seed: int = 0) -> dict[str, np.ndarray]:
    """An OmniSR state dict of the published shape (64nf, 5 groups of one block, window 8)."""
    from srzoo.convert.arch import omnisr

    rng = np.random.default_rng(seed)
    pr = {"num_feat": num_feat, "res_num": res_num, "block_num": 1, "window": window, "pe": True, "bias": True}
    sd = {}
    for k, shape in omnisr.layout(pr, 3, 3 * scale * scale).items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        sd[k] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
def swinir_sd(dim: int = 180, depths: tuple[int, ...] = (6,) * 6, heads: int = 6, ws: int = 8, scale: int = 4,
              upsampler: str = "pixelshuffle", mlp: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """A SwinIR state dict of a published shape (spandrel's key names; 1conv)."""
    rng = np.random.default_rng(seed)

    def rand(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    def conv(prefix: str, cout: int, cin: int, k: int = 3) -> None:
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = rand(cout, cin, k, k), np.zeros(cout, np.float32)

    def norm(prefix: str) -> None:
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = np.ones(dim, np.float32), np.zeros(dim, np.float32)

    def lin(prefix: str, cout: int, cin: int) -> None:
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = rand(cout, cin), np.zeros(cout, np.float32)

    sd: dict[str, np.ndarray] = {}
    conv("conv_first", dim, 3)
    norm("patch_embed.norm")
    for i, d in enumerate(depths):
        for j in range(d):
            p = f"layers.{i}.residual_group.blocks.{j}"
            norm(f"{p}.norm1")
            norm(f"{p}.norm2")
            lin(f"{p}.attn.qkv", 3 * dim, dim)
            lin(f"{p}.attn.proj", dim, dim)
            sd[f"{p}.attn.relative_position_bias_table"] = rand((2 * ws - 1) ** 2, heads)
            lin(f"{p}.mlp.fc1", mlp * dim, dim)
            lin(f"{p}.mlp.fc2", dim, mlp * dim)
        conv(f"layers.{i}.conv", dim, dim)
    norm("norm")
    conv("conv_after_body", dim, dim)
    if upsampler == "pixelshuffledirect":
        conv("upsample.0", 3 * scale * scale, dim)
    else:
        conv("conv_before_upsample.0", 64, dim)
        for k in range(scale.bit_length() - 1):
            conv(f"upsample.{2 * k}", 256, 64)
        conv("conv_last", 3, 64)
    return sd


def drct_sd(dim: int = 180, groups: int = 6, heads: int = 6, ws: int = 16, gc: int = 32, scale: int = 4,
            seed: int = 0) -> dict[str, np.ndarray]:
    """A DRCT state dict of the published shape (spandrel's key names; shifted windows)."""
    rng = np.random.default_rng(seed)
    sd = {k: v for k, v in swinir_sd(dim, (), heads, ws, scale, seed=seed).items()}

    def rand(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    for i in range(groups):
        for k in range(1, 6):
            c, p = dim + (k - 1) * gc, f"layers.{i}.swin{k}"
            h = heads - c % heads
            hidden = 2 * c if k < 4 else c
            for n in ("norm1", "norm2"):
                sd[f"{p}.{n}.weight"], sd[f"{p}.{n}.bias"] = np.ones(c, np.float32), np.zeros(c, np.float32)
            for n, (o, ii) in {"attn.qkv": (3 * c, c), "attn.proj": (c, c), "mlp.fc1": (hidden, c),
                               "mlp.fc2": (c, hidden)}.items():
                sd[f"{p}.{n}.weight"], sd[f"{p}.{n}.bias"] = rand(o, ii), np.zeros(o, np.float32)
            sd[f"{p}.attn.relative_position_bias_table"] = rand((2 * ws - 1) ** 2, h)
            out = gc if k < 5 else dim
            sd[f"layers.{i}.adjust{k}.weight"], sd[f"layers.{i}.adjust{k}.bias"] = rand(out, c, 1, 1), \
                np.zeros(out, np.float32)
        sd[f"layers.{i}.swin2.attn_mask"] = np.zeros((16, ws * ws, ws * ws), np.float32)  # marks: shifted
    return sd


def hat_sd(dim: int = 180, groups: int = 6, heads: int = 6, ws: int = 16, compress: int = 3, squeeze: int = 30,
           overlap: float = 0.5, scale: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A HAT state dict of a published shape (spandrel's key names): SwinIR's blocks with each
    block's channel-attention conv block and each group's overlapping cross-attention."""
    rng = np.random.default_rng(seed)
    sd = swinir_sd(dim, (6,) * groups, heads, ws, scale, seed=seed)
    ows = ws + int(ws * overlap)

    def rand(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    def put(prefix: str, *shape: int) -> None:
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = rand(*shape), np.zeros(shape[0], np.float32)
    cr, sq = dim // compress, dim // squeeze
    for i in range(groups):
        g = f"layers.{i}.residual_group"
        for j in range(6):
            c = f"{g}.blocks.{j}.conv_block.cab"
            put(f"{c}.0", cr, dim, 3, 3)
            put(f"{c}.2", dim, cr, 3, 3)
            put(f"{c}.3.attention.1", sq, dim, 1, 1)
            put(f"{c}.3.attention.3", dim, sq, 1, 1)
        o = f"{g}.overlap_attn"
        for n in ("norm1", "norm2"):
            sd[f"{o}.{n}.weight"], sd[f"{o}.{n}.bias"] = np.ones(dim, np.float32), np.zeros(dim, np.float32)
        put(f"{o}.qkv", 3 * dim, dim)
        put(f"{o}.proj", dim, dim)
        put(f"{o}.mlp.fc1", 2 * dim, dim)
        put(f"{o}.mlp.fc2", dim, 2 * dim)
        sd[f"{o}.relative_position_bias_table"] = rand((ws + ows - 1) ** 2, heads)
    return sd


def swin2sr_sd(dim: int = 180, depths: tuple[int, ...] = (6,) * 6, heads: int = 6, ws: int = 8, scale: int = 4,
               upsampler: str = "pixelshuffle", seed: int = 0) -> dict[str, np.ndarray]:
    """A Swin2SR state dict of a published shape (spandrel's key names; 1conv, shifted windows):
    SwinIR's layout with Swin V2 attention (q/v biases, logit scale, position-bias MLP) and the
    patch embeddings' 1x1 projections."""
    rng = np.random.default_rng(seed)
    sd = swinir_sd(dim, depths, heads, ws, scale, upsampler, seed=seed)
    n = ws * ws

    def rand(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"] = rand(dim, dim, 1, 1), np.zeros(dim, np.float32)
    for i, d in enumerate(depths):
        sd[f"layers.{i}.patch_embed.proj.weight"] = rand(dim, dim, 1, 1)
        sd[f"layers.{i}.patch_embed.proj.bias"] = np.zeros(dim, np.float32)
        for j in range(d):
            p = f"layers.{i}.residual_group.blocks.{j}.attn"
            del sd[f"{p}.relative_position_bias_table"], sd[f"{p}.qkv.bias"]
            sd[f"{p}.q_bias"], sd[f"{p}.v_bias"] = np.zeros(dim, np.float32), np.zeros(dim, np.float32)
            sd[f"{p}.logit_scale"] = np.full((heads, 1, 1), np.log(10.0), np.float32)
            sd[f"{p}.cpb_mlp.0.weight"], sd[f"{p}.cpb_mlp.0.bias"] = rand(512, 2), np.zeros(512, np.float32)
            sd[f"{p}.cpb_mlp.2.weight"] = rand(heads, 512)
            sd[f"{p}.relative_position_index"] = np.zeros((n, n), np.int64)  # its side gives the window
        sd[f"layers.{i}.residual_group.blocks.1.attn_mask"] = np.zeros((16, n, n), np.float32)  # marks: shifted
    return sd


def rcan_sd(feats: int = 64, groups: int = 10, blocks: int = 20, reduction: int = 16, scale: int = 2,
            unshuffle: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """An RCAN state dict of the published shape (spandrel's key names, MeanShift included)."""
    rng = np.random.default_rng(seed)

    def conv(prefix: str, cout: int, cin: int, k: int = 3) -> None:
        sd[f"{prefix}.weight"] = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        sd[f"{prefix}.bias"] = np.zeros(cout, np.float32)

    sd: dict[str, np.ndarray] = {}
    down = 4 // scale if unshuffle else 1
    conv("sub_mean", 3, 3, 1)
    conv("add_mean", 3, 3, 1)
    conv("head.1" if unshuffle else "head.0", feats, 3 * down * down)
    for g in range(groups):
        for b in range(blocks):
            p = f"body.{g}.body.{b}.body"
            conv(f"{p}.0", feats, feats)
            conv(f"{p}.2", feats, feats)
            conv(f"{p}.3.conv_du.0", feats // reduction, feats, 1)
            conv(f"{p}.3.conv_du.2", feats, feats // reduction, 1)
        conv(f"body.{g}.body.{blocks}", feats, feats)
    conv(f"body.{groups}", feats, feats)
    for i in range({2: 1, 4: 2}[scale * down]):
        conv(f"tail.0.{2 * i}", 4 * feats, feats)
    conv("tail.1", 3, feats)
    return sd


def safmn_sd(dim: int = 36, blocks: int = 8, ffn: float = 2.0, scale: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A SAFMN state dict of the published shape (36 dim, 8 blocks, x4; spandrel's key names)."""
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}

    def conv(prefix: str, cout: int, cin: int, k: int) -> None:
        sd[f"{prefix}.weight"] = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        sd[f"{prefix}.bias"] = np.zeros(cout, np.float32)

    hidden, c = int(dim * ffn), dim // 4
    conv("to_feat", dim, 3, 3)
    for b in range(blocks):
        p = f"feats.{b}"
        for n in ("norm1", "norm2"):
            sd[f"{p}.{n}.weight"], sd[f"{p}.{n}.bias"] = np.ones(dim, np.float32), np.zeros(dim, np.float32)
        for i in range(4):
            conv(f"{p}.safm.mfr.{i}", c, 1, 3)
        conv(f"{p}.safm.aggr", dim, dim, 1)
        conv(f"{p}.ccm.ccm.0", hidden, dim, 3)
        conv(f"{p}.ccm.ccm.2", dim, hidden, 1)
    conv("to_img.0", 3 * scale * scale, dim, 3)
    return sd


def spsr_sd(nf: int = 64, blocks: int = 23, gc: int = 32, scale: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """An SPSR state dict of the published shape (64nf, 23nb, upconv, x4; spandrel 0.2.2's key names)."""
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}

    def conv(prefix: str, cout: int, cin: int, k: int = 3) -> None:
        sd[f"{prefix}.weight"] = (0.5 * rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)
                                  ).astype(np.float32)
        sd[f"{prefix}.bias"] = np.zeros(cout, np.float32)

    def rrdb(p: str, n: int) -> None:
        for k in (1, 2, 3):
            for j in range(1, 6):
                conv(f"{p}.RDB{k}.conv{j}.0", gc if j < 5 else n, n + (j - 1) * gc)

    ups = int(np.log2(scale))
    conv("model.0", nf, 3)
    for i in range(blocks):
        rrdb(f"model.1.sub.{i}", nf)
    conv(f"model.1.sub.{blocks}", nf, nf)
    for i in range(ups):
        conv(f"model.{3 + 3 * i}", nf, nf)
        conv(f"b_module.{1 + 3 * i}", nf, nf)
    conv(f"model.{2 + 3 * ups}", nf, nf)
    sd["HR_conv0_new.0.weight"], sd["HR_conv0_new.0.bias"] = sd[f"model.{2 + 3 * ups}.weight"], \
        sd[f"model.{2 + 3 * ups}.bias"]
    conv("HR_conv1_new.0", nf, nf)
    conv("b_fea_conv.0", nf, 3)
    for k in (1, 2, 3, 4):
        rrdb(f"b_block_{k}", 2 * nf)
        conv(f"b_concat_{k}.0", nf, 2 * nf)
    conv("b_LR_conv.0", nf, nf)
    conv(f"b_module.{3 * ups}", nf, nf)
    conv(f"b_module.{3 * ups + 2}", nf, nf)
    rrdb("f_block", 2 * nf)
    conv("f_concat.0", nf, 2 * nf)
    conv("f_HR_conv0.0", nf, nf)
    conv("f_HR_conv1.0", 3, nf)
    return sd


def srformer_sd(dim: int = 180, depths: tuple[int, ...] = (6,) * 6, heads: int = 6, ws: int = 22, scale: int = 4,
                upsampler: str = "pixelshuffle", seed: int = 0) -> dict[str, np.ndarray]:
    """An SRFormer state dict of a published shape (spandrel-extra-arches' key names; mlp ratio 2,
    shifted windows): SwinIR's trunk with permuted self-attention (q, kv) and a ConvFFN."""
    rng = np.random.default_rng(seed + 1)
    sd = swinir_sd(dim, depths, heads, ws, scale, upsampler, seed=seed)

    def rand(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    for i, d in enumerate(depths):
        for j in range(d):
            p = f"layers.{i}.residual_group.blocks.{j}"
            del sd[f"{p}.attn.qkv.weight"], sd[f"{p}.attn.qkv.bias"]
            sd[f"{p}.attn.q.weight"], sd[f"{p}.attn.q.bias"] = rand(dim, dim), np.zeros(dim, np.float32)
            sd[f"{p}.attn.kv.weight"], sd[f"{p}.attn.kv.bias"] = rand(dim // 2, dim), np.zeros(dim // 2, np.float32)
            sd[f"{p}.attn.relative_position_bias_table"] = rand((ws - 1) ** 2, heads)
            sd[f"{p}.mlp.dwconv.depthwise_conv.0.weight"] = rand(2 * dim, 1, 5, 5)
            sd[f"{p}.mlp.dwconv.depthwise_conv.0.bias"] = np.zeros(2 * dim, np.float32)
    sd["layers.0.residual_group.blocks.1.attn_mask"] = np.zeros((9, ws * ws, ws * ws // 4), np.float32)  # shifted
    return sd


def realcugan_sd(variant: str = "2x", pro: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """A Real-CUGAN (UpCunet) state dict of 3 channels in and out, at the shapes
    srzoo.convert.arch.realcugan checks (the networks have no size options)."""
    from srzoo.convert.arch import realcugan

    rng = np.random.default_rng(seed)
    c = 12 if variant == "2x-fast" else 3
    wide = variant in ("4x", "2x-fast")
    bottom1 = (64, 64 if wide else 3, 5 if variant == "3x" else 4, 5 if variant == "3x" else 4)
    shapes = {**{f"unet1.{k}": v for k, v in realcugan._unet_shapes(c, 64 if wide else 3, bottom1, False).items()},
              **{f"unet2.{k}": v for k, v in realcugan._unet_shapes(64 if wide else 3, 64 if wide else 3,
                                                                      (64 if wide else 3, 64, 3, 3), True).items()}}
    if wide:
        shapes.update({"conv_final.weight": (12, 64, 3, 3), "conv_final.bias": (12,)})
    sd = {k: (rng.standard_normal(v) / np.sqrt(np.prod(v[1:]) if len(v) > 1 else 1) * (1 if len(v) > 1 else 0.01))
          .astype(np.float32) for k, v in shapes.items()}
    if pro:
        sd["pro"] = np.zeros(1, np.float32)
    return sd


def mosr_sd(dim: int = 64, blocks: int = 24, scale: int = 4, upsampler: str = "ps", kernel: int = 7,
            expansion: float = 1.5, conv_ratio: float = 1.0, seed: int = 0) -> dict[str, np.ndarray]:
    """A MoSR state dict (spandrel's key names; its defaults are the published shape)."""
    rng = np.random.default_rng(seed)
    hidden, cc = int(expansion * dim), int(conv_ratio * dim)
    shapes: dict[str, tuple[int, ...]] = {"gblocks.0.weight": (dim, 3, 3, 3), "gblocks.0.bias": (dim,)}
    for i in range(1, blocks + 1):
        p = f"gblocks.{i}"
        shapes.update({f"{p}.norm.weight": (dim,), f"{p}.norm.bias": (dim,), f"{p}.fc1.weight": (2 * hidden, dim, 3, 3),
                       f"{p}.fc1.bias": (2 * hidden,), f"{p}.conv.weight": (cc, 1, kernel, kernel), f"{p}.conv.bias": (cc,),
                       f"{p}.fc2.weight": (dim, hidden, 3, 3), f"{p}.fc2.bias": (dim,)})
    n = blocks
    shapes.update({f"gblocks.{n + 1}.weight": (2 * dim, dim, 3, 3), f"gblocks.{n + 1}.bias": (2 * dim,),
                   f"gblocks.{n + 3}.weight": (dim, 2 * dim, 3, 3), f"gblocks.{n + 3}.bias": (dim,),
                   f"gblocks.{n + 5}.weight": (dim, dim, 1, 1), f"gblocks.{n + 5}.bias": (dim,),
                   "shortcut.block.0.weight": (dim, 3, 3, 3), "shortcut.block.0.bias": (dim,),
                   "shortcut.block.2.weight": (dim, dim, 3, 3), "shortcut.block.2.bias": (dim,),
                   "shortcut.conv11.weight": (dim, 3, 1, 1), "shortcut.conv11.bias": (dim,)})
    if upsampler == "dys":
        m = 8 * scale * scale
        shapes.update({"upsampler.offset.weight": (m, dim, 1, 1), "upsampler.offset.bias": (m,),
                       "upsampler.scope.weight": (m, dim, 1, 1), "upsampler.init_pos": (1, m, 1, 1),
                       "upsampler.end_conv.weight": (3, dim, 1, 1), "upsampler.end_conv.bias": (3,)})
    else:
        shapes.update({"upsampler.0.weight": (3 * scale * scale, dim, 3, 3), "upsampler.0.bias": (3 * scale * scale,)})
    sd = {}
    for k, v in shapes.items():
        if len(v) == 4:
            sd[k] = (rng.standard_normal(v) / np.sqrt(np.prod(v[1:]))).astype(np.float32)
        else:
            sd[k] = (1.0 + 0.1 * rng.standard_normal(v) if k.endswith("norm.weight") else 0.01 * rng.standard_normal(v)
                     ).astype(np.float32)
    return sd


def swiftsrgan_sd(nf: int = 64, blocks: int = 16, scale: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A Swift-SRGAN generator state dict (the published shape: 64 nf, 16 blocks)."""
    rng = np.random.default_rng(seed)
    shapes: dict[str, tuple[int, ...]] = {}

    def sep(p: str, cin: int, cout: int, k: int, bias: bool) -> None:
        shapes.update({f"{p}.depthwise.weight": (cin, 1, k, k), f"{p}.pointwise.weight": (cout, cin, 1, 1)})
        if bias:
            shapes.update({f"{p}.depthwise.bias": (cin,), f"{p}.pointwise.bias": (cout,)})

    def bn(p: str) -> None:
        shapes.update({f"{p}.{n}": (nf,) for n in ("weight", "bias", "running_mean", "running_var")})
    sep("initial.cnn", 3, nf, 9, True)
    shapes["initial.act.weight"] = (nf,)
    for i in range(blocks):
        sep(f"residual.{i}.block1.cnn", nf, nf, 3, False)
        bn(f"residual.{i}.block1.bn")
        shapes[f"residual.{i}.block1.act.weight"] = (nf,)
        sep(f"residual.{i}.block2.cnn", nf, nf, 3, False)
        bn(f"residual.{i}.block2.bn")
    sep("convblock.cnn", nf, nf, 3, False)
    bn("convblock.bn")
    for j in range(int(np.log2(scale))):
        sep(f"upsampler.{j}.conv", nf, 4 * nf, 3, True)
        shapes[f"upsampler.{j}.act.weight"] = (nf,)
    sep("final_conv", nf, 3, 9, True)
    sd = {}
    for k, v in shapes.items():
        if len(v) == 4:
            sd[k] = (rng.standard_normal(v) / np.sqrt(np.prod(v[1:]))).astype(np.float32)
        elif k.endswith("running_var"):
            sd[k] = rng.uniform(0.5, 1.5, v).astype(np.float32)
        else:
            sd[k] = (0.25 + 0.05 * rng.standard_normal(v)).astype(np.float32)
    return sd


def atd_sd(dim: int = 210, depths: tuple[int, ...] = (6,) * 6, heads: int = 6, ws: int = 16, tokens: int = 128,
           rc: int = 20, hidden: int = 420, scale: int = 4, upsampler: str = "pixelshuffle",
           seed: int = 0) -> dict[str, np.ndarray]:
    """An ATD state dict of a published shape (spandrel's key names; ConvFFN kernel 5): ATD is
    210 dim, 6x6 layers, window 16, 128 tokens, reduced dim 20, pixelshuffle; ATD-light 48 dim,
    4x6 layers, 64 tokens, reduced dim 8, MLP ratio 1, pixelshuffledirect (category groups 128)."""
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}

    def put(key: str, *shape: int) -> None:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        sd[key] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    def conv(prefix: str, cout: int, cin: int, k: int = 3) -> None:
        put(f"{prefix}.weight", cout, cin, k, k)
        sd[f"{prefix}.bias"] = np.zeros(cout, np.float32)

    def norm(prefix: str, n: int = dim) -> None:
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = np.ones(n, np.float32), np.zeros(n, np.float32)

    def lin(prefix: str, cout: int, cin: int) -> None:
        put(f"{prefix}.weight", cout, cin)
        sd[f"{prefix}.bias"] = np.zeros(cout, np.float32)

    conv("conv_first", dim, 3)
    norm("patch_embed.norm")
    sd["relative_position_index_SA"] = np.zeros((ws * ws, ws * ws), np.int64)
    for i, d in enumerate(depths):
        g = f"layers.{i}.residual_group"
        put(f"{g}.td", tokens, dim)
        for j in range(d):
            p = f"{g}.layers.{j}"
            norm(f"{p}.norm1")
            norm(f"{p}.norm2")
            if j < d - 1:
                norm(f"{p}.norm3", tokens)
                sd[f"{p}.sigma"] = np.zeros((tokens, 1), np.float32)
            lin(f"{p}.wqkv", 3 * dim, dim)
            put(f"{p}.attn_win.relative_position_bias_table", (2 * ws - 1) ** 2, heads)
            lin(f"{p}.attn_win.proj", dim, dim)
            sd[f"{p}.attn_atd.scale"] = np.full(tokens, 0.5, np.float32)
            lin(f"{p}.attn_atd.wq", rc, dim)
            lin(f"{p}.attn_atd.wk", rc, dim)
            lin(f"{p}.attn_atd.wv", dim, dim)
            sd[f"{p}.attn_aca.logit_scale"] = np.full((1, 1), np.log(10.0), np.float32)
            lin(f"{p}.attn_aca.proj", dim, dim)
            lin(f"{p}.convffn.fc1", hidden, dim)
            conv(f"{p}.convffn.dwconv.depthwise_conv.0", hidden, 1, 5)
            lin(f"{p}.convffn.fc2", dim, hidden)
        conv(f"layers.{i}.conv", dim, dim)
    norm("norm")
    conv("conv_after_body", dim, dim)
    if upsampler == "pixelshuffle":
        conv("conv_before_upsample.0", 64, dim)
        for k in range(int(np.log2(scale))):
            conv(f"upsample.{2 * k}", 256, 64)
        conv("conv_last", 3, 64)
    else:
        conv("upsample.0", 3 * scale * scale, dim)
    return sd


MODELS = {
    "realplksr 64dim 28nb 17ks x4 (GroupNorm, pixel shuffle)": lambda: realplksr_sd(),
    "realplksr 64dim 28nb 17ks x4 (LayerNorm, DySample)": lambda: realplksr_sd(dysample=True, layer_norm=True),
    "omnisr 64nf 5nr w8 x4": lambda: omnisr_sd(),
    # SwinIR-M (classical SR: 180 dim, 6x6 blocks, 6 heads, window 8) and SwinIR-S (lightweight: 60 dim,
    # 4x6 blocks, pixelshuffledirect), x4
    "swinir-M 180dim 6x6 w8 x4 (pixelshuffle)": lambda: swinir_sd(),
    "swinir-S 60dim 4x6 w8 x4 (pixelshuffledirect)": lambda: swinir_sd(60, (6,) * 4, 6, 8, 4, "pixelshuffledirect"),
    # DRCT (180 dim, 6 groups of 5 blocks, growth 32, window 16), x4
    "drct 180dim 6 groups w16 x4": lambda: drct_sd(),
    # HAT-S (144 dim, 6 groups of 6 blocks, window 16, compress 24, squeeze 24) and HAT (180 dim,
    # compress 3, squeeze 30), overlap 0.5, x4 (HAT-L: 12 groups, twice HAT's time)
    "hat-S 144dim 6x6 w16 x4": lambda: hat_sd(144, compress=24, squeeze=24),
    "hat 180dim 6x6 w16 x4": lambda: hat_sd(),
    # Swin2SR classical (180 dim, 6x6 blocks, window 8, pixelshuffle) x4 and lightweight (60 dim, 4x6,
    # pixelshuffledirect) x2
    "swin2sr-M 180dim 6x6 w8 x4 (pixelshuffle)": lambda: swin2sr_sd(),
    "swin2sr-S 60dim 4x6 w8 x2 (pixelshuffledirect)": lambda: swin2sr_sd(60, (6,) * 4, 6, 8, 2, "pixelshuffledirect"),
    # RCAN (64 feats, 10 groups of 20 blocks, reduction 16: AnimeSharpV4), x2, and its PixelUnshuffle variant
    "rcan 64nf 10nrg 20nrb x2": lambda: rcan_sd(),
    "rcan 64nf 10nrg 20nrb x2 (PixelUnshuffle)": lambda: rcan_sd(unshuffle=True),
    # SAFMN (36 dim, 8 blocks: the paper's model), x4; SPSR (64nf, 23 RRDBs, upconv: the catalogue's files), x4
    "safmn 36dim 8nb x4": lambda: safmn_sd(),
    "spsr 64nf 23nb x4 (upconv)": lambda: spsr_sd(),
    # SRFormer (classical: 180 dim, 6x6 blocks, 6 heads, window 22, pixelshuffle) and SRFormer-light (60 dim,
    # 4x6 blocks, window 16, pixelshuffledirect), x4
    "srformer 180dim 6x6 w22 x4 (pixelshuffle)": lambda: srformer_sd(),
    "srformer-light 60dim 4x6 w16 x4 (pixelshuffledirect)": lambda: srformer_sd(60, (6,) * 4, 6, 16, 4,
                                                                                "pixelshuffledirect"),
    # Real-CUGAN (UpCunet: no size options), each scale and the fast 2x
    "realcugan 2x": lambda: realcugan_sd("2x"),
    "realcugan 3x": lambda: realcugan_sd("3x"),
    "realcugan 4x (pro)": lambda: realcugan_sd("4x", pro=True),
    "realcugan 2x fast": lambda: realcugan_sd("2x-fast"),
    # MoSR (spandrel's defaults: 64 dim, 24 blocks, kernel 7), x4 pixel shuffle and x2 DySample
    "mosr 64dim 24nb x4 (ps)": lambda: mosr_sd(),
    "mosr 64dim 24nb x2 (dys)": lambda: mosr_sd(scale=2, upsampler="dys"),
    # Swift-SRGAN (the published 64 nf, 16 blocks), x4
    "swiftsrgan 64nf 16nb x4": lambda: swiftsrgan_sd(),
    # ATD (210 dim, 6x6 layers, window 16, 128 tokens, category groups 256, pixelshuffle) and ATD-light (48 dim,
    # 4x6 layers, 64 tokens, groups 128, pixelshuffledirect), x4
    "atd 210dim 6x6 w16 x4 (pixelshuffle)": lambda: atd_sd(),
    "atd-light 48dim 4x6 w16 x4 (pixelshuffledirect)": lambda: atd_sd(48, (6,) * 4, 4, 16, 64, 8, 48,
                                                                      upsampler="pixelshuffledirect"),
}


def engines(onnx_bytes: bytes, path: Path) -> dict:
    out = {}
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        out["onnxruntime"] = lambda x: sess.run(None, {"input": x})[0]
    except ImportError:
        pass
    try:
        import openvino as ov

        # f32, as srzoo's openvino engine runs it (a CPU with bf16 would otherwise pick that)
        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        out["openvino"] = lambda x: compiled([x])[0]
    except ImportError:
        pass
    import cv2

    try:
        net = cv2.dnn.readNetFromONNX(str(path))

        def run_cv(x: np.ndarray) -> np.ndarray:
            net.setInput(x)
            return net.forward()
        out["cv2.dnn"] = run_cv
    except cv2.error as e:
        out["cv2.dnn"] = f"cannot import ({str(e).strip().splitlines()[-1][:60]})"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="only the models whose name contains this (e.g. omnisr)")
    ap.add_argument("--engines", default="", help="only these engines, comma-separated (onnxruntime,openvino,cv2.dnn)")
    args = ap.parse_args(argv)
    x = np.random.default_rng(1).random((1, 3, args.size, args.size), dtype=np.float32)
    mp = args.size * args.size / 1e6
    import cv2

    print(f"input {args.size}x{args.size}; OpenCV {cv2.__version__}; seconds per input megapixel "
          f"(median of {args.repeat}), ratio to ONNX Runtime\n")
    print("| model | engine | s/MP | vs onnxruntime |")
    print("|---|---|---:|---:|")
    for name, make in MODELS.items():
        if args.only not in name:
            continue
        sd = make()
        a = archs.detect(sd)
        onnx_bytes, _ = build(a.forward, sd, a, a.name)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            path.write_bytes(onnx_bytes)
            base = None
            for eng, fn in engines(onnx_bytes, path).items():
                if args.engines and eng not in args.engines.split(","):
                    continue
                if isinstance(fn, str):
                    print(f"| {name} | {eng} | {fn} | |")
                    continue
                fn(x)  # warm-up
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    fn(x)
                    times.append(time.perf_counter() - t)
                s = statistics.median(times) / mp
                base = base or s
                print(f"| {name} | {eng} | {s:.1f} | {s / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
