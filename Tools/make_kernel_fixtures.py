#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for the TensorCore kernels (Tests/TensorCoreTests/Fixtures/kernels.safetensors).

Made with: Python 3 + torch 2.15.0 (CPU), einops, safetensors 0.8.0, numpy 2.4.6 — the exact versions used are
written into the file's metadata (`versions`) on every run.

Usage:
    /work/venv/bin/python Tools/make_kernel_fixtures.py

Every case is a group of tensors named `CASE.NAME` (inputs and PyTorch's output `CASE.out`), computed by the real
PyTorch functional ops at their defaults unless stated:
    dw_s1_silu      depthwise 3x3, stride 1, padding 1, bias, then SiLU (MobileViT's MV2Block dw conv + SiLU)
    dw_s2_silu      depthwise 3x3, stride 2, padding 1, bias, then SiLU; odd sizes
    dw_mult2        depthwise with channel multiplier 2 (groups = Cin, Cout = 2·Cin), no bias
    grouped         groups 4, 2 input channels per group, stride 2, padding 1, bias, with a residual added
    grouped_dil     groups 2, 3×3 dilation 2 padding 2
    dw_bn_silu      depthwise conv (no bias) + BatchNorm2d (eval, non-trivial statistics) + SiLU: the folded path
    act             SiLU, sigmoid, tanh of values over [−30, 30] plus edge values
    stn             F.affine_grid(theta, (N, C, H, W)) and F.grid_sample (bilinear, zeros, align_corners=False);
                    theta scaled so part of the grid falls outside the image
    patch           einops rearrange 'b d (h ph) (w pw) -> b (ph pw) (h w) d' and back (ph = pw = 2)
    cat             torch.cat((a, b), dim=1)
Seeded; the file is byte-for-byte reproducible. Small (a few tens of KB).
"""
import json
import os
import platform

import einops
import numpy
import safetensors
import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "TensorCoreTests", "Fixtures", "kernels.safetensors")


def main():
    torch.set_grad_enabled(False)
    g = torch.Generator().manual_seed(20261204)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).float()

    t = {}

    def case(name, **tensors):
        for k, v in tensors.items():
            t[f"{name}.{k}"] = v.contiguous()

    x = randn(2, 6, 11, 13); w = randn(6, 1, 3, 3, scale=0.5); b = randn(6)
    case("dw_s1_silu", x=x, w=w, b=b, out=F.silu(F.conv2d(x, w, b, stride=1, padding=1, groups=6)))

    x = randn(1, 5, 12, 9); w = randn(5, 1, 3, 3, scale=0.5); b = randn(5)
    case("dw_s2_silu", x=x, w=w, b=b, out=F.silu(F.conv2d(x, w, b, stride=2, padding=1, groups=5)))

    x = randn(1, 3, 10, 17); w = randn(6, 1, 3, 3, scale=0.5)
    case("dw_mult2", x=x, w=w, out=F.conv2d(x, w, None, stride=1, padding=1, groups=3))

    x = randn(2, 8, 9, 7); w = randn(12, 2, 3, 3, scale=0.3); b = randn(12)
    out = F.conv2d(x, w, b, stride=2, padding=1, groups=4)
    r = randn(*out.shape)
    case("grouped", x=x, w=w, b=b, residual=r, out=out + r)

    x = randn(1, 4, 12, 12); w = randn(6, 2, 3, 3, scale=0.3)
    case("grouped_dil", x=x, w=w, out=F.conv2d(x, w, None, padding=2, dilation=2, groups=2))

    x = randn(2, 8, 16, 16); w = randn(8, 1, 3, 3, scale=0.5)
    bn = torch.nn.BatchNorm2d(8).eval()
    bn.weight.copy_(randn(8).abs() + 0.5); bn.bias.copy_(randn(8))
    bn.running_mean.copy_(randn(8) * 0.3); bn.running_var.copy_(randn(8).abs() + 0.5)
    case("dw_bn_silu", x=x, w=w, bn_weight=bn.weight, bn_bias=bn.bias, bn_mean=bn.running_mean,
         bn_var=bn.running_var, out=F.silu(bn(F.conv2d(x, w, None, stride=2, padding=1, groups=8))))

    edge = torch.tensor([0.0, -0.0, 1e-20, -1e-20, 88.0, -88.0, 100.0, -100.0, 1e-3, -1e-3])
    xs = torch.cat([torch.linspace(-30, 30, 1001), randn(300, scale=4.0), edge]).float()
    case("act", x=xs, silu=F.silu(xs), sigmoid=torch.sigmoid(xs), tanh=torch.tanh(xs))

    img = randn(2, 3, 7, 9)
    theta = torch.tanh(randn(2, 2, 3)) * 1.3
    grid = F.affine_grid(theta, torch.Size((2, 3, 6, 10)), align_corners=False)
    case("stn", x=img, theta=theta, grid=grid, out=F.grid_sample(img, grid, align_corners=False))

    x = randn(2, 5, 4, 6)
    unfolded = rearrange(x, "b d (h ph) (w pw) -> b (ph pw) (h w) d", ph=2, pw=2)
    y = randn(*unfolded.shape)
    case("patch", x=x, unfolded=unfolded, y=y,
         folded=rearrange(y, "b (ph pw) (h w) d -> b d (h ph) (w pw)", h=2, w=3, ph=2, pw=2))

    a = randn(2, 3, 4, 5); c = randn(2, 2, 4, 5)
    case("cat", a=a, b=c, out=torch.cat((a, c), 1))

    versions = (f"python {platform.python_version()}, torch {torch.__version__}, einops {einops.__version__}, "
                f"safetensors {safetensors.__version__}, numpy {numpy.__version__}; script Tools/make_kernel_fixtures.py")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(dict(sorted(t.items())), OUT, metadata={"versions": versions})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes): {versions}")


if __name__ == "__main__":
    main()
