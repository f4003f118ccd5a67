"""PyTorch modules of the converted architectures, written after the upstream
papers' reference code, for the tests only: they load the real state dicts
with ``load_state_dict(strict=True)`` (so key names and shapes must match the
checkpoint exactly) and give the source framework's forward pass that the
converted ONNX is compared with. Independent of srzoo.convert's own graph code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# --- RRDBNet (BasicSR layout) -------------------------------------------------
class RDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = RDB(nf, gc), RDB(nf, gc), RDB(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    def __init__(self, scale: int = 4, nf: int = 64, nb: int = 23, gc: int = 32, ch: int = 3) -> None:
        super().__init__()
        self.scale = scale
        cin = ch * {4: 1, 2: 4, 1: 16}[scale]
        self.conv_first = nn.Conv2d(cin, nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = F.pixel_unshuffle(x, 4)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def old_esrgan_keys(sd: dict) -> dict:
    """The ESRGAN paper's key layout (model.0, model.1.sub.N.RDBk.convj.0, ...) of a BasicSR x4 state dict."""
    nb = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "body":
            out[f"model.1.sub.{p[1]}.RDB{p[2][-1]}.{p[3]}.0.{p[4]}"] = v
        else:
            idx = {"conv_first": 0, "conv_up1": 3, "conv_up2": 6, "conv_hr": 8, "conv_last": 10}.get(p[0])
            out[f"model.1.sub.{nb}.{p[1]}" if p[0] == "conv_body" else f"model.{idx}.{p[1]}"] = v
    return out


# --- SRVGGNetCompact ---------------------------------------------------------------
class SRVGGNetCompact(nn.Module):
    def __init__(self, ch: int = 3, nf: int = 64, num_conv: int = 16, upscale: int = 4) -> None:
        super().__init__()
        self.upscale = upscale
        body = [nn.Conv2d(ch, nf, 3, 1, 1), nn.PReLU(num_parameters=nf)]
        for _ in range(num_conv):
            body += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(num_parameters=nf)]
        body.append(nn.Conv2d(nf, ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(body)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for m in self.body:
            out = m(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


# --- VDSR ------------------------------------------------------------------------------
class ConvReLUBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(64, 64, 3, 1, 1, bias=False)

    def forward(self, x):
        return F.relu(self.conv(x))


class VDSR(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.residual_layer = nn.Sequential(*[ConvReLUBlock() for _ in range(18)])
        self.input = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
        self.output = nn.Conv2d(64, 1, 3, 1, 1, bias=False)

    def forward(self, x):
        return self.output(self.residual_layer(F.relu(self.input(x)))) + x


# --- CARN-M -----------------------------------------------------------------------------
class MeanShift(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shifter = nn.Conv2d(3, 3, 1, 1, 0)

    def forward(self, x):
        return self.shifter(x)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 1, 1, 0), nn.ReLU())

    def forward(self, x):
        return self.body(x)


class EResidualBlock(nn.Module):
    def __init__(self, n: int, group: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n, n, 3, 1, 1, groups=group), nn.ReLU(),
                                  nn.Conv2d(n, n, 3, 1, 1, groups=group), nn.ReLU(),
                                  nn.Conv2d(n, n, 1, 1, 0))

    def forward(self, x):
        return F.relu(self.body(x) + x)


class CarnBlock(nn.Module):
    def __init__(self, group: int) -> None:
        super().__init__()
        self.b1 = EResidualBlock(64, group)
        self.c1, self.c2, self.c3 = BasicBlock(128, 64), BasicBlock(192, 64), BasicBlock(256, 64)

    def forward(self, x):
        c0 = o0 = x
        c1 = torch.cat([c0, self.b1(o0)], 1)
        o1 = self.c1(c1)
        c2 = torch.cat([c1, self.b1(o1)], 1)
        o2 = self.c2(c2)
        c3 = torch.cat([c2, self.b1(o2)], 1)
        return self.c3(c3)


class _Up(nn.Module):
    def __init__(self, n: int, scale: int, group: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        if scale in (2, 4):
            for _ in range({2: 1, 4: 2}[scale]):
                mods += [nn.Conv2d(n, 4 * n, 3, 1, 1, groups=group), nn.ReLU(), nn.PixelShuffle(2)]
        else:
            mods += [nn.Conv2d(n, 9 * n, 3, 1, 1, groups=group), nn.ReLU(), nn.PixelShuffle(3)]
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        return self.body(x)


class CarnUpsample(nn.Module):
    def __init__(self, group: int) -> None:
        super().__init__()
        self.up2, self.up3, self.up4 = _Up(64, 2, group), _Up(64, 3, group), _Up(64, 4, group)

    def forward(self, x, scale):
        return {2: self.up2, 3: self.up3, 4: self.up4}[scale](x)


class CARNM(nn.Module):
    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.sub_mean, self.add_mean = MeanShift(), MeanShift()
        self.entry = nn.Conv2d(3, 64, 3, 1, 1)
        self.b1, self.b2, self.b3 = CarnBlock(group), CarnBlock(group), CarnBlock(group)
        self.c1, self.c2, self.c3 = BasicBlock(128, 64), BasicBlock(192, 64), BasicBlock(256, 64)
        self.upsample = CarnUpsample(group)
        self.exit = nn.Conv2d(64, 3, 3, 1, 1)

    def forward(self, x, scale):
        x = self.entry(self.sub_mean(x))
        c0 = o0 = x
        c1 = torch.cat([c0, self.b1(o0)], 1)
        o1 = self.c1(c1)
        c2 = torch.cat([c1, self.b2(o1)], 1)
        o2 = self.c2(c2)
        c3 = torch.cat([c2, self.b3(o2)], 1)
        o3 = self.c3(c3)
        return self.add_mean(self.exit(self.upsample(o3, scale)))


# --- RFDN -------------------------------------------------------------------------------
class ESA(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        f = n // 4
        self.conv1 = nn.Conv2d(n, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv3_ = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, n, 1)

    def forward(self, x):
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        v_range = F.relu(self.conv_max(F.max_pool2d(c1, kernel_size=7, stride=3)))
        c3 = self.conv3_(F.relu(self.conv3(v_range)))
        c3 = F.interpolate(c3, (x.size(2), x.size(3)), mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))


class RFDB(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        d = n // 2
        self.c1_d, self.c1_r = nn.Conv2d(n, d, 1), nn.Conv2d(n, n, 3, padding=1)
        self.c2_d, self.c2_r = nn.Conv2d(n, d, 1), nn.Conv2d(n, n, 3, padding=1)
        self.c3_d, self.c3_r = nn.Conv2d(n, d, 1), nn.Conv2d(n, n, 3, padding=1)
        self.c4 = nn.Conv2d(n, d, 3, padding=1)
        self.c5 = nn.Conv2d(4 * d, n, 1)
        self.esa = ESA(n)

    def forward(self, x):
        a = lambda t: F.leaky_relu(t, 0.05)  # noqa: E731
        d1 = a(self.c1_d(x))
        r1 = a(self.c1_r(x) + x)
        d2 = a(self.c2_d(r1))
        r2 = a(self.c2_r(r1) + r1)
        d3 = a(self.c3_d(r2))
        r3 = a(self.c3_r(r2) + r2)
        r4 = a(self.c4(r3))
        return self.esa(self.c5(torch.cat([d1, d2, d3, r4], 1)))


class RFDN(nn.Module):
    def __init__(self, nf: int = 50, upscale: int = 4) -> None:
        super().__init__()
        self.fea_conv = nn.Conv2d(3, nf, 3, padding=1)
        self.B1, self.B2, self.B3, self.B4 = RFDB(nf), RFDB(nf), RFDB(nf), RFDB(nf)
        self.c = nn.Sequential(nn.Conv2d(4 * nf, nf, 1), nn.LeakyReLU(0.05))
        self.LR_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.upsampler = nn.Sequential(nn.Conv2d(nf, 3 * upscale * upscale, 3, padding=1), nn.PixelShuffle(upscale))

    def forward(self, x):
        fea = self.fea_conv(x)
        b1 = self.B1(fea)
        b2 = self.B2(b1)
        b3 = self.B3(b2)
        b4 = self.B4(b3)
        lr = self.LR_conv(self.c(torch.cat([b1, b2, b3, b4], 1))) + fea
        return self.upsampler(lr)
