#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for the Swift models (Tests/ModelsTests/Fixtures/).

Made with: Python 3 + torch 2.15.0 (CPU), torchvision 0.29.2, safetensors 0.8.0, numpy 2.4.6 — the exact
versions used are also written to Fixtures/VERSIONS.txt on every run.

Usage:
    /work/venv/bin/python Tools/make_model_fixtures.py            # tiny fixtures into Tests/ModelsTests/Fixtures
    /work/venv/bin/python Tools/make_model_fixtures.py --full DIR  # full-size random-weight parity set into DIR
                                                                   # (resnet18, resnet18_cbam, vit_base_patch16_224_in21k;
                                                                   #  ~0.9 GB, not committed; see ModelsTests' full-size test)

The architectures are our own PyTorch definitions written from the seed documents (CBAM-ResNet from
000_f3f31e20b4f34ebf.txt, the timm-style VisionTransformer from 001_23d6956586912f6c.txt), at tiny configurations that
run the same code paths with small widths. Plain ResNet uses the seed's ResNet without attention, whose keys and
shapes are checked here against torchvision's `resnet18` (the layout Swift registers).

For each model NAME this writes:
    NAME.weights.safetensors    the state dict (contiguous; metadata `state_dict_order` = keys in state_dict() order)
    NAME.reference.safetensors  `input`, `output`, and intermediate activations named by module path
                                (e.g. `layer1`, `blocks.0`, `norm`), as the Swift capture callback reports them
and, for all, `full_size_specs.json`: key, shape and dtype of every tensor of the full-size named models
(built on the meta device), in state_dict() order.

Everything is seeded and the outputs are byte-for-byte reproducible (one metadata key per file, since safetensors
writes its metadata map in hash order); models are in eval mode with non-trivial BatchNorm statistics and LayerNorm affine values, so a
Swift bug in any of them shows up in the outputs.
"""
import argparse
import json
import math
import os
import platform
import sys
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


class ResNet(nn.Module):
    def __init__(self, layers, widths=(64, 128, 256, 512), num_classes=1000, cbam=False):
        super().__init__()
        self.inplanes = widths[0]
        self.cbam = cbam
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(widths[0], layers[0])
        self.layer2 = self._make_layer(widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, cbam=self.cbam)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes, cbam=self.cbam))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


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


def check_plain_resnet_matches_torchvision():
    """Our seed-style plain ResNet registers exactly torchvision's keys, shapes and order."""
    with torch.device("meta"):
        ours = spec_list(ResNet([2, 2, 2, 2]))
        tv = spec_list(torchvision.models.resnet18())
        ours34 = spec_list(ResNet([3, 4, 6, 3]))
        tv34 = spec_list(torchvision.models.resnet34())
    assert ours == tv, "plain ResNet-18 layout differs from torchvision"
    assert ours34 == tv34, "plain ResNet-34 layout differs from torchvision"
    return tv, tv34


def full_size_specs():
    tv18, tv34 = check_plain_resnet_matches_torchvision()
    specs = {"resnet18": tv18, "resnet34": tv34}
    with torch.device("meta"):
        specs["resnet18_cbam"] = spec_list(ResNet([2, 2, 2, 2], cbam=True))
        specs["resnet34_cbam"] = spec_list(ResNet([3, 4, 6, 3], cbam=True))
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

    with open(os.path.join(out_dir, "full_size_specs.json"), "w") as f:
        json.dump(full_size_specs(), f, separators=(",", ":"))
        f.write("\n")


def full(out_dir):
    """Full-size random-weight parity set (not committed)."""
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(4321)
    models = {
        "resnet18": (ResNet([2, 2, 2, 2]), ["layer1", "layer4"]),
        "resnet18_cbam": (ResNet([2, 2, 2, 2], cbam=True), ["layer1", "layer4"]),
        "vit_base_patch16_224_in21k": (VisionTransformer(**VIT_CONFIGS["vit_base_patch16_224_in21k"]),
                                       ["blocks.0", "blocks.11", "norm"]),
    }
    for name, (model, paths) in models.items():
        randomise_(model, gen)
        write_model(name, model, torch.randn(1, 3, 224, 224, generator=gen), paths, out_dir)
    seed_cnn_full(out_dir, gen)


def seed_cnn_full(out_dir, gen, names=None):
    """stn (the seed's STN(3, 32, 32)) and the three MobileViTs at 256 × 256, also as torch.save zip and legacy
    .pth files, and each MobileViT in today's vit-pytorch layout."""
    models = {"stn": (lambda: seedcnn.STN(3, 32, 32), (1, 3, 32, 32), STN_PATHS)}
    for n, cfg in seedcnn.MOBILEVIT_CONFIGS.items():
        models[n] = (lambda cfg=cfg: seedcnn.MobileViT((256, 256), num_classes=1000, **cfg), (1, 3, 256, 256), MOBILEVIT_PATHS)
    for name, (make, shape, paths) in models.items():
        if names and name not in names:
            continue
        model = make()
        randomise_(model, gen)
        x = torch.randn(*shape, generator=gen)
        write_model(name, model, x, paths, out_dir)
        sd = model.state_dict()
        torch.save(sd, os.path.join(out_dir, f"{name}.pth"))
        torch.save(sd, os.path.join(out_dir, f"{name}.legacy.pth"), _use_new_zipfile_serialization=False)
        if name.startswith("mobilevit"):
            cfg = seedcnn.MOBILEVIT_CONFIGS[name]
            write_vit_pytorch_layout(name, model, x, dict(image_size=(256, 256), num_classes=1000, **cfg), out_dir)


def write_versions(out_dir):
    with open(os.path.join(out_dir, "VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\ntorchvision {torchvision.__version__}\n"
                f"safetensors {safetensors.__version__}\nnumpy {numpy.__version__}\n"
                f"script Tools/make_model_fixtures.py\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", metavar="DIR", help="write the full-size parity set into DIR instead of the tiny fixtures")
    ap.add_argument("--only", metavar="NAMES", help="with --full: only these of stn, mobilevit_xxs/xs/s (comma-separated)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.full and args.only:
        os.makedirs(args.full, exist_ok=True)
        seed_cnn_full(args.full, torch.Generator().manual_seed(4321), names=args.only.split(","))
        write_versions(args.full)
    elif args.full:
        full(args.full)
        write_versions(args.full)
    else:
        tiny(FIXTURES)
        write_versions(FIXTURES)


if __name__ == "__main__":
    main()
