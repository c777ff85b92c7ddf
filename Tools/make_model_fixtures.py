#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for the Swift models (Tests/ModelsTests/Fixtures/).

Made with: Python 3 + torch 2.15.0 (CPU), torchvision 0.29.2, safetensors 0.8.0, numpy 2.4.6 — the exact
versions used are also written to Fixtures/VERSIONS.txt on every run.

Usage:
    /work/venv/bin/python Tools/make_model_fixtures.py            # tiny fixtures into Tests/ModelsTests/Fixtures
    /work/venv/bin/python Tools/make_model_fixtures.py --full DIR  # full-size random-weight parity set into DIR
                                                                   # (resnet18, resnet18_cbam, vit_base_patch16_224_in21k;
                                                                   #  ~0.9 GB, not committed; see ModelsTests' full-size test)
    ... --full DIR --models resnet50,resnet50_cbam_merge,senet18   # any subset of FULL_MODELS (Tools/full_parity.sh)

The architectures are our own PyTorch definitions written from the seed documents (CBAM-ResNet with BasicBlock and
Bottleneck, and SENet-18, from 000_f3f31e20b4f34ebf.txt; the timm-style VisionTransformer from
001_23d6956586912f6c.txt), at tiny configurations that run the same code paths with small widths. Plain ResNet uses
the seed's ResNet without attention, whose keys and shapes are checked here against torchvision's resnet18/34/50/
101/152 (the layout Swift registers); the full-size plain Bottleneck ResNets are torchvision's own models.

For each model NAME this writes:
    NAME.weights.safetensors    the state dict (contiguous; metadata `state_dict_order` = keys in state_dict() order)
    NAME.reference.safetensors  `input`, `output`, and intermediate activations named by module path
                                (e.g. `layer1`, `blocks.0`, `norm`), as the Swift capture callback reports them
and, for all, `full_size_specs.json`: key, shape and dtype of every tensor of the full-size named models
(built on the meta device), in state_dict() order.

Everything is seeded and the outputs are byte-for-byte reproducible (one metadata key per file, since safetensors
writes its metadata map in hash order); models are in eval mode with non-trivial BatchNorm statistics and LayerNorm affine values, so a
Swift bug in any of them shows up in the outputs. Weights are reproducible on any machine; reference activations only
on the same CPU (PyTorch's CPU kernels differ in the last bits between, e.g., AVX2 and AVX-512 machines), so when
adding a model, commit only its new files and keep the others as they were. Families added later draw from their
own generator (see `tiny`), so adding one does not change the earlier weights.
"""
import argparse
import json
import math
import os
import platform
import sys
import zlib
from collections import OrderedDict
from functools import partial

import numpy
import safetensors
import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file

import seed_cnn_models as seedcnn   # seed 000's STN and MobileViT (Tools/seed_cnn_models.py)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "ModelsTests", "Fixtures")


# ----------------------------------------------------------------------------------------------------------------
# CBAM-ResNet as in seed 000 (ChannelAttention / SpatialAttention / BasicBlock / ResNet), with configurable widths.
# ----------------------------------------------------------------------------------------------------------------

class ChannelAttention(nn.Module):
    def __init__(self, in_planes, ratio=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(in_planes, in_planes // ratio, 1, bias=False),
                                nn.ReLU(),
                                nn.Conv2d(in_planes // ratio, in_planes, 1, bias=False))
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return self.sigmoid(self.fc(self.avg_pool(x)) + self.fc(self.max_pool(x)))


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        return self.sigmoid(self.conv1(torch.cat([avg_out, max_out], dim=1)))


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None, cbam=False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.cbam = cbam
        if cbam:
            self.ca = ChannelAttention(planes)
            self.sa = SpatialAttention()
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.cbam:
            out = self.ca(out) * out
            out = self.sa(out) * out
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        return self.relu(out)


class Bottleneck(nn.Module):
    """The seed's Bottleneck (torchvision v1.5: stride on the 3×3 conv), expansion 4; with CBAM, ca then sa after
    bn3 and before the residual add."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, cbam=False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.cbam = cbam
        if cbam:
            self.ca = ChannelAttention(planes * 4)
            self.sa = SpatialAttention()
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.cbam:
            out = self.ca(out) * out
            out = self.sa(out) * out
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        return self.relu(out)


BasicBlock.expansion = 1


class ResNet(nn.Module):
    """The seed's ResNet (BasicBlock or Bottleneck); `widths` are the planes of layer1..4 (the stem has widths[0])."""
    def __init__(self, layers, widths=(64, 128, 256, 512), num_classes=1000, cbam=False, block=BasicBlock):
        super().__init__()
        self.inplanes = widths[0]
        self.cbam = cbam
        self.block = block
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(widths[0], layers[0])
        self.layer2 = self._make_layer(widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        out = planes * self.block.expansion
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, out, kernel_size=1, stride=stride, bias=False),
                                       nn.BatchNorm2d(out))
        layers = [self.block(self.inplanes, planes, stride, downsample, cbam=self.cbam)]
        self.inplanes = out
        for _ in range(1, blocks):
            layers.append(self.block(self.inplanes, planes, cbam=self.cbam))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ----------------------------------------------------------------------------------------------------------------
# SENet-18 as in seed 000 (SELayer / ResidualBlock / Model), with configurable stage widths (seed: 64, 128, 256, 512).
# Quirks kept exactly: SE after conv2-bn2-relu; a block whose channel count changes has stride 2 and a
# conv1x1-bn1x1-relu shortcut; no ReLU after the residual add.
# ----------------------------------------------------------------------------------------------------------------

class SELayer(nn.Module):
    def __init__(self, channel, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(in_features=channel, out_features=channel // reduction)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(in_features=channel // reduction, out_features=channel)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        identity = x
        n, c, _, _ = x.size()
        x = self.avg_pool(x).view(n, c)
        x = self.sigmoid(self.fc2(self.relu(self.fc1(x)))).view(n, c, 1, 1)
        return identity * x


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, outchannels):
        super().__init__()
        self.channel_equal_flag = True
        if in_channels == outchannels:
            self.conv1 = nn.Conv2d(in_channels, outchannels, kernel_size=3, padding=1, stride=1, bias=False)
        else:
            self.conv1x1 = nn.Conv2d(in_channels, outchannels, kernel_size=1, stride=2, bias=False)
            self.bn1x1 = nn.BatchNorm2d(num_features=outchannels)
            self.channel_equal_flag = False
            self.conv1 = nn.Conv2d(in_channels, outchannels, kernel_size=3, padding=1, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(num_features=outchannels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(outchannels, outchannels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(num_features=outchannels)
        self.selayer = SELayer(channel=outchannels)

    def forward(self, x):
        identity = x
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        if not self.channel_equal_flag:
            identity = self.relu(self.bn1x1(self.conv1x1(identity)))
        x = self.selayer(x)
        return identity + x


class SENet18(nn.Module):
    """The seed's `Model` (SENet-18)."""
    def __init__(self, num_classes=1000, widths=(64, 128, 256, 512)):
        super().__init__()
        w = widths
        self.conv1 = nn.Conv2d(3, w[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(num_features=w[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.conv2_1 = ResidualBlock(w[0], w[0])
        self.conv2_2 = ResidualBlock(w[0], w[0])
        self.conv3_1 = ResidualBlock(w[0], w[1])
        self.conv3_2 = ResidualBlock(w[1], w[1])
        self.conv4_1 = ResidualBlock(w[1], w[2])
        self.conv4_2 = ResidualBlock(w[2], w[2])
        self.conv5_1 = ResidualBlock(w[2], w[3])
        self.conv5_2 = ResidualBlock(w[3], w[3])
        self.avg_pool = nn.AdaptiveAvgPool2d(output_size=(1, 1))
        self.fc = nn.Linear(in_features=w[3], out_features=num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in ["conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv4_1", "conv4_2", "conv5_1", "conv5_2"]:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(self.avg_pool(x), 1))


# ----------------------------------------------------------------------------------------------------------------
# timm-style VisionTransformer as in seed 001 (PatchEmbed, Attention, Mlp, Block, VisionTransformer; no distillation).
# ----------------------------------------------------------------------------------------------------------------

class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_c, embed_dim):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.Identity()

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class Attention(nn.Module):
    def __init__(self, dim, num_heads, qkv_bias):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, norm_layer):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_c=3, num_classes=1000, embed_dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, qkv_bias=True, representation_size=None):
        super().__init__()
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.patch_embed = PatchEmbed(img_size, patch_size, in_c, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=0.0)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_layer) for _ in range(depth)])
        self.norm = norm_layer(embed_dim)
        if representation_size:
            self.pre_logits = nn.Sequential(OrderedDict([("fc", nn.Linear(embed_dim, representation_size)),
                                                         ("act", nn.Tanh())]))
            features = representation_size
        else:
            self.pre_logits = nn.Identity()
            features = embed_dim
        self.head = nn.Linear(features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.norm(self.blocks(x))
        return self.head(self.pre_logits(x[:, 0]))


VIT_CONFIGS = {  # the seed's named configurations
    "vit_base_patch16_224": dict(patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=1000),
    "vit_base_patch32_224": dict(patch_size=32, embed_dim=768, depth=12, num_heads=12, num_classes=1000),
    "vit_base_patch16_224_in21k": dict(patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=21843,
                                       representation_size=768),
    "vit_base_patch32_224_in21k": dict(patch_size=32, embed_dim=768, depth=12, num_heads=12, num_classes=21843,
                                       representation_size=768),
    "vit_large_patch16_224": dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16, num_classes=1000),
    "vit_large_patch16_224_in21k": dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16, num_classes=21843,
                                        representation_size=1024),
    "vit_large_patch32_224_in21k": dict(patch_size=32, embed_dim=1024, depth=24, num_heads=16, num_classes=21843,
                                        representation_size=1024),
    "vit_huge_patch14_224_in21k": dict(patch_size=14, embed_dim=1280, depth=32, num_heads=16, num_classes=21843,
                                       representation_size=1280),
}


# ----------------------------------------------------------------------------------------------------------------

def randomise_(model, gen):
    """Non-trivial values for everything that default init leaves constant (BN stats and affine, LN affine,
    tokens), so that each shows up in the outputs."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(int(torch.randint(1, 10**6, (1,), generator=gen)))
            elif isinstance(m, nn.LayerNorm):
                d = m.normalized_shape[0]
                m.weight.copy_(torch.rand(d, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(d, generator=gen) * 0.1)
            elif isinstance(m, VisionTransformer):
                m.cls_token.copy_(torch.randn(m.cls_token.shape, generator=gen) * 0.5)
                m.pos_embed.copy_(torch.randn(m.pos_embed.shape, generator=gen) * 0.5)


def capture_hooks(model, paths):
    acts = {}
    modules = dict(model.named_modules())
    for p in paths:
        modules[p].register_forward_hook(lambda mod, inp, out, p=p: acts.__setitem__(p, out.detach().clone()))
    return acts


def write_model(name, model, x, paths, out_dir):
    model.eval()
    acts = capture_hooks(model, paths)
    with torch.no_grad():
        y = model(x)
    outputs = {"output": y} if torch.is_tensor(y) else {f"output.{i}": t for i, t in enumerate(y)}
    sd = model.state_dict()
    order = list(sd.keys())
    save_file({k: v.detach().contiguous() for k, v in sd.items()}, os.path.join(out_dir, f"{name}.weights.safetensors"),
              metadata={"state_dict_order": ",".join(order)})
    ref = {"input": x.contiguous(), **{k: t.contiguous() for k, t in outputs.items()}}
    for p in paths:
        ref[p] = acts[p].contiguous()
    save_file(ref, os.path.join(out_dir, f"{name}.reference.safetensors"),
              metadata={"source": f"{name}, torch {torch.__version__}"})
    for k, t in outputs.items():
        print(f"{name}: {sum(v.numel() for v in sd.values())} values, {k} {tuple(t.shape)}, "
              f"max|out| {t.abs().max().item():.4g}, intermediates {paths}")


def spec_list(model):
    return [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]


# Bottleneck ResNets: torchvision's depths; the CBAM variants are the seed's ResNet(Bottleneck, ...) with attention.
BOTTLENECK_DEPTHS = {"resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3], "resnet152": [3, 8, 36, 3]}


def check_plain_resnet_matches_torchvision():
    """Our seed-style plain ResNet registers exactly torchvision's keys, shapes and order."""
    tv = {}
    with torch.device("meta"):
        for name, layers, block in [("resnet18", [2, 2, 2, 2], BasicBlock), ("resnet34", [3, 4, 6, 3], BasicBlock)] + \
                [(n, d, Bottleneck) for n, d in BOTTLENECK_DEPTHS.items()]:
            tv[name] = spec_list(getattr(torchvision.models, name)())
            assert spec_list(ResNet(layers, block=block)) == tv[name], f"plain {name} layout differs from torchvision"
    return tv


def full_size_specs():
    specs = check_plain_resnet_matches_torchvision()
    with torch.device("meta"):
        specs["resnet18_cbam"] = spec_list(ResNet([2, 2, 2, 2], cbam=True))
        specs["resnet34_cbam"] = spec_list(ResNet([3, 4, 6, 3], cbam=True))
        for name, depths in BOTTLENECK_DEPTHS.items():
            specs[name + "_cbam"] = spec_list(ResNet(depths, cbam=True, block=Bottleneck))
        specs["senet18"] = spec_list(SENet18())
        for name, cfg in VIT_CONFIGS.items():
            specs[name] = spec_list(VisionTransformer(**cfg))
        specs["stn"] = spec_list(seedcnn.STN(3, 32, 32))
        for name, cfg in seedcnn.MOBILEVIT_CONFIGS.items():
            specs[name] = spec_list(seedcnn.MobileViT((256, 256), num_classes=1000, **cfg))
    return specs


# Seed 000's STN and MobileViT (Tools/seed_cnn_models.py): tiny configurations, paths the Swift models report.
STN_PATHS = ["local_net", "conv"]
MOBILEVIT_PATHS = ["conv1", "stem.3", "trunk.0.1", "trunk.1.0", "trunk.2.1", "to_logits.0"]
MOBILEVIT_TINY = dict(dims=[16, 16, 24], channels=[8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 32], expansion=2, depths=(1, 2, 1))


def seed_cnn_tiny(out_dir, gen):
    # A non-square input: the seed's LocalNetwork swaps H and W, so the transformed image is 12 × 16.
    stn = seedcnn.STN(3, 16, 12, hidden=32, num_classes=10)
    randomise_(stn, gen)
    write_model("stn_tiny", stn, torch.randn(2, 3, 16, 12, generator=gen), STN_PATHS, out_dir)

    mvit = seedcnn.MobileViT((64, 64), num_classes=10, **MOBILEVIT_TINY)
    randomise_(mvit, gen)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    write_model("mobilevit_tiny", mvit, x, MOBILEVIT_PATHS, out_dir)
    # The same weights in today's vit-pytorch layout (LayerNorm inside Attention / FeedForward), loaded into
    # vit_pytorch.mobile_vit.MobileViT to prove the layouts compute the same function.
    write_vit_pytorch_layout("mobilevit_tiny", mvit, x, dict(image_size=(64, 64), num_classes=10, **MOBILEVIT_TINY), out_dir)


def write_vit_pytorch_layout(name, seed_model, x, kwargs, out_dir):
    from vit_pytorch.mobile_vit import MobileViT as VitPytorchMobileViT
    other = VitPytorchMobileViT(**kwargs).eval()
    other.load_state_dict({seedcnn.seed_to_vit_pytorch_key(k): v for k, v in seed_model.state_dict().items()}, strict=True)
    with torch.no_grad():
        assert torch.equal(other(x), seed_model.eval()(x)), "vit-pytorch layout computes something else"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, os.path.join(out_dir, f"{name}.vit-pytorch.safetensors"),
              metadata={"state_dict_order": ",".join(other.state_dict().keys())})
    print(f"{name}: vit-pytorch layout written ({len(other.state_dict())} tensors)")


def tiny(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)

    # Widths are small to keep the fixtures under ~1.5 MB in total; CBAM keeps the seed's ratio 16, so its
    # narrowest stage needs 16 channels (16 // 16 = 1 hidden channel).
    resnet = ResNet([2, 2, 2, 2], widths=(4, 8, 16, 32), num_classes=10)
    randomise_(resnet, gen)
    x = torch.randn(2, 3, 48, 48, generator=gen)
    write_model("resnet18_tiny", resnet, x, ["maxpool", "layer1", "layer2.0", "layer3", "layer4", "avgpool"], out_dir)

    cbam = ResNet([2, 2, 2, 2], widths=(16, 16, 32, 32), num_classes=10, cbam=True)
    randomise_(cbam, gen)
    x = torch.randn(2, 3, 48, 48, generator=gen)
    write_model("resnet18_cbam_tiny", cbam, x, ["maxpool", "layer1", "layer2.0", "layer3", "layer4", "avgpool"], out_dir)

    vit = VisionTransformer(img_size=32, patch_size=8, num_classes=10, embed_dim=32, depth=2, num_heads=4,
                            representation_size=16)
    randomise_(vit, gen)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    write_model("vit_tiny_patch8_32", vit, x, ["patch_embed", "blocks.0", "blocks.1", "norm", "pre_logits"], out_dir)

    seed_cnn_tiny(out_dir, gen)

    # Families added later use their own generator, so the fixtures above stay byte-for-byte as they were.
    gen = torch.Generator().manual_seed(5050)
    # ResNet-50 depths [3,4,6,3] with Bottleneck planes (8,12,16,20) (outputs 32,48,64,80; CBAM ratio 16 leaves
    # 2..5 hidden channels); layer1's 3×3 convolutions are wide enough for the Winograd path.
    paths = ["maxpool", "layer1", "layer2.0", "layer3", "layer4", "avgpool"]
    r50 = ResNet([3, 4, 6, 3], widths=(8, 12, 16, 20), num_classes=10, block=Bottleneck)
    randomise_(r50, gen)
    write_model("resnet50_tiny", r50, torch.randn(2, 3, 48, 48, generator=gen), paths, out_dir)
    r50c = ResNet([3, 4, 6, 3], widths=(8, 12, 16, 20), num_classes=10, block=Bottleneck, cbam=True)
    randomise_(r50c, gen)
    write_model("resnet50_cbam_tiny", r50c, torch.randn(2, 3, 48, 48, generator=gen), paths, out_dir)

    # SENet-18 with stage widths (16,20,24,32): every stage but the first changes width, as in the seed, so
    # conv3_1..conv5_1 take the stride-2 conv1x1/bn1x1 shortcut; SE reduction 16 leaves 1..2 hidden features.
    se = SENet18(num_classes=10, widths=(16, 20, 24, 32))
    randomise_(se, gen)
    write_model("senet18_tiny", se, torch.randn(2, 3, 48, 48, generator=gen),
                ["maxpool", "conv2_2", "conv3_1.selayer", "conv3_1", "conv4_2", "conv5_2", "avg_pool"], out_dir)

    with open(os.path.join(out_dir, "full_size_specs.json"), "w") as f:
        json.dump(full_size_specs(), f, separators=(",", ":"))
        f.write("\n")


def merge_onto_cbam(cbam, backbone):
    """The seed's way of loading torchvision weights onto CBAM-ResNet: sd = model.state_dict();
    sd.update(pretrained); model.load_state_dict(sd). Returns the attention-only state dict (the keys kept)."""
    sd = cbam.state_dict()
    pretrained = backbone.state_dict()
    assert set(pretrained) < set(sd), "backbone keys are not a subset of the CBAM model's"
    sd.update(pretrained)
    cbam.load_state_dict(sd)
    return OrderedDict((k, v) for k, v in cbam.state_dict().items() if k not in pretrained)


FULL_MODELS = {
    "resnet18": (lambda: ResNet([2, 2, 2, 2]), ["layer1", "layer4"]),
    "resnet18_cbam": (lambda: ResNet([2, 2, 2, 2], cbam=True), ["layer1", "layer4"]),
    "vit_base_patch16_224_in21k": (lambda: VisionTransformer(**VIT_CONFIGS["vit_base_patch16_224_in21k"]),
                                   ["blocks.0", "blocks.11", "norm"]),
    "senet18": (lambda: SENet18(), ["conv2_2", "conv3_1", "conv5_2"]),
}
for _name, _depths in BOTTLENECK_DEPTHS.items():
    FULL_MODELS[_name] = (getattr(torchvision.models, _name), ["layer1", "layer3", "layer4"])  # torchvision's own model
    FULL_MODELS[_name + "_cbam"] = (lambda d=_depths: ResNet(d, cbam=True, block=Bottleneck), ["layer1", "layer3", "layer4"])
# torchvision resnet50 weights merged onto the seed's CBAM-ResNet-50 (random attention), as the seed loads them.
FULL_MODELS["resnet50_cbam_merge"] = (None, ["layer1", "layer4"])
# Seed 000's STN (32×32) and MobileViTs (256×256): written by seed_cnn_full, with .pth copies.
SEED_CNN_FULL = ["stn", "mobilevit_xxs", "mobilevit_xs", "mobilevit_s"]
for _name in SEED_CNN_FULL:
    FULL_MODELS[_name] = (None, None)
FULL_DEFAULT = ["resnet18", "resnet18_cbam", "vit_base_patch16_224_in21k"]


def full(out_dir, names):
    """Full-size random-weight parity set (not committed). Each model has its own generator (seeded from its
    name), so any subset is reproducible."""
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        torch.manual_seed(zlib.crc32(name.encode()))
        gen = torch.Generator().manual_seed(4321 + zlib.crc32(name.encode()))
        make, paths = FULL_MODELS[name]
        if name in SEED_CNN_FULL:
            seed_cnn_full(out_dir, name, gen)
            continue
        x = torch.randn(1, 3, 224, 224, generator=gen)
        if name == "resnet50_cbam_merge":
            backbone = torchvision.models.resnet50()
            randomise_(backbone, gen)
            cbam = ResNet(BOTTLENECK_DEPTHS["resnet50"], cbam=True, block=Bottleneck)
            attention = merge_onto_cbam(cbam, backbone)
            torch.save(backbone.state_dict(), os.path.join(out_dir, f"{name}.backbone.pth"))
            save_file({k: v.contiguous() for k, v in attention.items()}, os.path.join(out_dir, f"{name}.attention.safetensors"))
            print(f"{name}: {len(attention)} attention tensors kept from the CBAM model")
            write_model(name, cbam, x, paths, out_dir)
            continue
        model = make()
        randomise_(model, gen)
        write_model(name, model, x, paths, out_dir)


def seed_cnn_full(out_dir, name, gen):
    """stn (the seed's STN(3, 32, 32)) or a MobileViT at 256 × 256; each MobileViT also in today's vit-pytorch
    layout (Tools/full_parity.sh adds the zip and legacy .pth copies of the state dict)."""
    if name == "stn":
        model, shape, paths = seedcnn.STN(3, 32, 32), (1, 3, 32, 32), STN_PATHS
    else:
        cfg = seedcnn.MOBILEVIT_CONFIGS[name]
        model, shape, paths = seedcnn.MobileViT((256, 256), num_classes=1000, **cfg), (1, 3, 256, 256), MOBILEVIT_PATHS
    randomise_(model, gen)
    x = torch.randn(*shape, generator=gen)
    write_model(name, model, x, paths, out_dir)
    if name.startswith("mobilevit"):
        write_vit_pytorch_layout(name, model, x, dict(image_size=(256, 256), num_classes=1000, **cfg), out_dir)


def write_versions(out_dir):
    with open(os.path.join(out_dir, "VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\ntorchvision {torchvision.__version__}\n"
                f"safetensors {safetensors.__version__}\nnumpy {numpy.__version__}\n"
                f"script Tools/make_model_fixtures.py\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", metavar="DIR", help="write the full-size parity set into DIR instead of the tiny fixtures")
    ap.add_argument("--models", default=",".join(FULL_DEFAULT),
                    help=f"with --full: comma-separated subset of {', '.join(FULL_MODELS)} (default: %(default)s)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.full:
        names = [n for n in args.models.split(",") if n]
        unknown = [n for n in names if n not in FULL_MODELS]
        if unknown:
            ap.error(f"unknown model(s) {unknown}; choose from {list(FULL_MODELS)}")
        full(args.full, names)
        write_versions(args.full)
    else:
        tiny(FIXTURES)
        write_versions(FIXTURES)


if __name__ == "__main__":
    main()
