#!/usr/bin/env python3
"""Writes the PyTorch fixtures for issue 9's vit-pytorch family: `lucidrains_vit`, `lucidrains_vit_prenorm`,
`simple_vit` and `crate` (Tests/ModelsTests/Fixtures, Tests/VerificationTests/Fixtures).

Made with: Python 3.11, torch 2.15.0 (CPU), vit-pytorch 1.26.14, einops, safetensors 0.8.0 — the versions used
are written to Tests/ModelsTests/Fixtures/lucidrains.VERSIONS.txt on every run.

Usage:
    /work/venv/bin/python Tools/make_lucidrains_fixtures.py             # tiny fixtures (committed, ~0.5 MB in all)
    /work/venv/bin/python Tools/make_lucidrains_fixtures.py --full DIR  # full-size random-weight set (Tools/full_parity.sh)

The modules are the seeds' code as PyTorch runs it: seed 004's ViT (its Attention / FeedForward / Transformer are
today's vit-pytorch's, imported from the installed `vit_pytorch.vit`), seed 000's PreNorm ViT and SimpleViT
(written out below as the seed has them), and CRATE as Ma-Lab-Berkeley/CRATE's `model/crate.py` defines it
(written out below; vit-pytorch has no CRATE). Each model has non-trivial LayerNorm affine values and tokens so a
Swift bug anywhere shows in the outputs.

For each tiny NAME (ModelsTests/Fixtures):
    NAME.weights.safetensors    the state dict (metadata `state_dict_order`)
    NAME.reference.safetensors  `input`, `output` and the activations the Swift model reports, by module path
and lucidrains_full_size_specs.json: key, shape, dtype of every tensor of the full-size named models (meta device).
and in VerificationTests/Fixtures, today's vit-pytorch `ViT` holding the same weights as `lucidrains_vit_tiny`
(its cls_token [1, dim] and pos_embedding [n+1, dim]):
    lucidrains_vit_tiny.vit-pytorch.pth      torch.save(model.state_dict())
    lucidrains_vit_tiny.vit-pytorch-module.pth  torch.save(model) — the whole module, pickled
Both reproduce `lucidrains_vit_tiny.reference.safetensors` (checked here before writing).
"""
import argparse
import json
import os
import platform
import sys

import einops
import safetensors
import torch
import torch.nn as nn
import torch.nn.functional as F
import vit_pytorch
from einops import rearrange, repeat
from einops.layers.torch import Rearrange
from safetensors.torch import save_file
from vit_pytorch.vit import Transformer as CurrentTransformer
from vit_pytorch.vit import ViT as TodaysViT

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "Tests", "ModelsTests", "Fixtures")
VERIFICATION = os.path.join(HERE, "..", "Tests", "VerificationTests", "Fixtures")


def pair(t):
    return t if isinstance(t, tuple) else (t, t)


# --- seed 004: vit-pytorch's ViT with cls_token [1, 1, dim], pos_embedding [1, n+1, dim] -------------------------
class Seed004ViT(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, pool='cls', channels=3,
                 dim_head=64):
        super().__init__()
        ih, iw = pair(image_size)
        ph, pw = pair(patch_size)
        num_patches = (ih // ph) * (iw // pw)
        patch_dim = channels * ph * pw
        self.to_patch_embedding = nn.Sequential(
            Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=ph, p2=pw),
            nn.LayerNorm(patch_dim), nn.Linear(patch_dim, dim), nn.LayerNorm(dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(0.)
        self.transformer = CurrentTransformer(dim, depth, heads, dim_head, mlp_dim, 0.)
        self.pool = pool
        self.to_latent = nn.Identity()
        self.mlp_head = nn.Linear(dim, num_classes)

    def forward(self, img):
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        cls_tokens = repeat(self.cls_token, '1 1 d -> b 1 d', b=b)
        x = torch.cat((cls_tokens, x), dim=1)
        x += self.pos_embedding[:, :(n + 1)]
        x = self.dropout(x)
        x = self.transformer(x)
        x = x.mean(dim=1) if self.pool == 'mean' else x[:, 0]
        return self.mlp_head(self.to_latent(x))


# --- seed 000: the PreNorm ViT --------------------------------------------------------------------------------------
class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


class PreNormFeedForward(nn.Module):
    def __init__(self, dim, hidden_dim, dropout=0.):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class PreNormAttention(nn.Module):
    def __init__(self, dim, heads=8, dim_head=64, dropout=0.):
        super().__init__()
        inner_dim = dim_head * heads
        project_out = not (heads == 1 and dim_head == dim)
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.attend = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(dropout)) if project_out else nn.Identity()

    def forward(self, x):
        qkv = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = map(lambda t: rearrange(t, 'b n (h d) -> b h n d', h=self.heads), qkv)
        attn = self.dropout(self.attend(torch.matmul(q, k.transpose(-1, -2)) * self.scale))
        return self.to_out(rearrange(torch.matmul(attn, v), 'b h n d -> b n (h d)'))


class PreNormTransformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout=0.):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PreNorm(dim, PreNormAttention(dim, heads=heads, dim_head=dim_head, dropout=dropout)),
                PreNorm(dim, PreNormFeedForward(dim, mlp_dim, dropout=dropout))]))

    def forward(self, x):
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


class Seed000ViT(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, pool='cls', channels=3,
                 dim_head=64):
        super().__init__()
        ih, iw = pair(image_size)
        ph, pw = pair(patch_size)
        num_patches = (ih // ph) * (iw // pw)
        patch_dim = channels * ph * pw
        self.to_patch_embedding = nn.Sequential(
            Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=ph, p2=pw), nn.Linear(patch_dim, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(0.)
        self.transformer = PreNormTransformer(dim, depth, heads, dim_head, mlp_dim)
        self.pool = pool
        self.to_latent = nn.Identity()
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, img):
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        x = torch.cat((repeat(self.cls_token, '1 1 d -> b 1 d', b=b), x), dim=1)
        x += self.pos_embedding[:, :(n + 1)]
        x = self.transformer(self.dropout(x))
        x = x.mean(dim=1) if self.pool == 'mean' else x[:, 0]
        return self.mlp_head(self.to_latent(x))


# --- seed 000: SimpleViT ---------------------------------------------------------------------------------------------
def posemb_sincos_2d(patches, temperature=10000, dtype=torch.float32):
    _, h, w, dim, device, dtype = *patches.shape, patches.device, patches.dtype
    y, x = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing='ij')
    assert (dim % 4) == 0
    omega = torch.arange(dim // 4, device=device) / (dim // 4 - 1)
    omega = 1. / (temperature ** omega)
    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1).type(dtype)


class SimpleFeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, dim))

    def forward(self, x):
        return self.net(x)


class SimpleAttention(nn.Module):
    def __init__(self, dim, heads=8, dim_head=64):
        super().__init__()
        inner_dim = dim_head * heads
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.attend = nn.Softmax(dim=-1)
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

    def forward(self, x):
        x = self.norm(x)
        q, k, v = map(lambda t: rearrange(t, 'b n (h d) -> b h n d', h=self.heads), self.to_qkv(x).chunk(3, dim=-1))
        attn = self.attend(torch.matmul(q, k.transpose(-1, -2)) * self.scale)
        return self.to_out(rearrange(torch.matmul(attn, v), 'b h n d -> b n (h d)'))


class SimpleTransformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([SimpleAttention(dim, heads=heads, dim_head=dim_head),
                                              SimpleFeedForward(dim, mlp_dim)]))

    def forward(self, x):
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


class SimpleViT(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, channels=3, dim_head=64):
        super().__init__()
        ph, pw = pair(patch_size)
        patch_dim = channels * ph * pw
        self.to_patch_embedding = nn.Sequential(
            Rearrange('b c (h p1) (w p2) -> b h w (p1 p2 c)', p1=ph, p2=pw), nn.Linear(patch_dim, dim))
        self.transformer = SimpleTransformer(dim, depth, heads, dim_head, mlp_dim)
        self.to_latent = nn.Identity()
        self.linear_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, img):
        x = self.to_patch_embedding(img)
        pe = posemb_sincos_2d(x)
        x = rearrange(x, 'b ... d -> b (...) d') + pe
        x = self.transformer(x)
        return self.linear_head(self.to_latent(x.mean(dim=1)))


# --- CRATE (Ma-Lab-Berkeley/CRATE model/crate.py) ------------------------------------------------------------------
class ISTA(nn.Module):
    """One sparse-coding step against the dictionary `weight`: relu(x + η(xD − (xDᵀ)D) − ηλ)."""

    def __init__(self, dim, step_size=0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.kaiming_uniform_(self.weight)
        self.step_size = step_size
        self.lambd = 0.1

    def forward(self, x):
        x1 = F.linear(x, self.weight, bias=None)
        grad_1 = F.linear(x1, self.weight.t(), bias=None)
        grad_2 = F.linear(x, self.weight.t(), bias=None)
        grad_update = self.step_size * (grad_2 - grad_1) - self.step_size * self.lambd
        return F.relu(x + grad_update)


class MSSA(nn.Module):
    """Attention whose single projection `qkv` serves as query, key and value."""

    def __init__(self, dim, heads=8, dim_head=64):
        super().__init__()
        inner_dim = dim_head * heads
        project_out = not (heads == 1 and dim_head == dim)
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.attend = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(0.)
        self.qkv = nn.Linear(dim, inner_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(0.)) if project_out else nn.Identity()

    def forward(self, x):
        w = rearrange(self.qkv(x), 'b n (h d) -> b h n d', h=self.heads)
        attn = self.dropout(self.attend(torch.matmul(w, w.transpose(-1, -2)) * self.scale))
        return self.to_out(rearrange(torch.matmul(attn, w), 'b h n d -> b n (h d)'))


class CRATETransformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, ista=0.1):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([PreNorm(dim, MSSA(dim, heads=heads, dim_head=dim_head)),
                                              PreNorm(dim, ISTA(dim, step_size=ista))]))

    def forward(self, x):
        for attn, ff in self.layers:
            x = ff(attn(x) + x)
        return x


class CRATE(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, pool='cls', channels=3, dim_head=64,
                 ista=0.1):
        super().__init__()
        ih, iw = pair(image_size)
        ph, pw = pair(patch_size)
        num_patches = (ih // ph) * (iw // pw)
        patch_dim = channels * ph * pw
        self.to_patch_embedding = nn.Sequential(
            Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=ph, p2=pw),
            nn.LayerNorm(patch_dim), nn.Linear(patch_dim, dim), nn.LayerNorm(dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(0.)
        self.transformer = CRATETransformer(dim, depth, heads, dim_head, ista=ista)
        self.pool = pool
        self.to_latent = nn.Identity()
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, img):
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        x = torch.cat((repeat(self.cls_token, '1 1 d -> b 1 d', b=b), x), dim=1)
        x += self.pos_embedding[:, :(n + 1)]
        x = self.transformer(self.dropout(x))
        x = x.mean(dim=1) if self.pool == 'mean' else x[:, 0]
        return self.mlp_head(self.to_latent(x))


# --- fixtures ----------------------------------------------------------------------------------------------------------
TINY = dict(image_size=32, patch_size=8, num_classes=10, dim=32, depth=2, heads=4, dim_head=8)


def perturb(model, seed):
    """Non-trivial LayerNorm affine values (PyTorch initialises them to 1 and 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def activation_paths(model):
    names = dict(model.named_modules())
    paths = ["to_patch_embedding", "dropout", "transformer", "mlp_head", "linear_head"]
    return [p for p in paths if p in names]


def run(model, x):
    acts = {}
    modules = dict(model.named_modules())
    paths = activation_paths(model)
    hooks = [modules[p].register_forward_hook(lambda mod, inp, out, p=p: acts.__setitem__(p, out.detach().clone()))
             for p in paths]
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    return y, {p: acts[p] for p in paths}


def write(name, model, x, out_dir, intermediates=True):
    model.eval()
    y, acts = run(model, x)
    sd = model.state_dict()
    save_file({k: v.detach().contiguous() for k, v in sd.items()}, os.path.join(out_dir, f"{name}.weights.safetensors"),
              metadata={"state_dict_order": ",".join(sd.keys())})
    ref = {"input": x.contiguous(), "output": y.contiguous()}
    if intermediates:
        ref.update({p: a.contiguous() for p, a in acts.items()})
    save_file(ref, os.path.join(out_dir, f"{name}.reference.safetensors"),
              metadata={"source": f"{name}, torch {torch.__version__}, vit-pytorch {vit_pytorch_version()}"})
    print(f"{name}: {sum(v.numel() for v in sd.values())} values, output {tuple(y.shape)}, max|out| {y.abs().max().item():.4g}")
    return y


def vit_pytorch_version():
    try:
        from importlib.metadata import version
        return version("vit-pytorch")
    except Exception:
        return "?"


def todays_vit_from(seed_model, kwargs):
    """Today's vit-pytorch ViT holding `seed_model`'s weights (cls_token / pos_embedding without the batch axis)."""
    m = TodaysViT(**kwargs)
    sd = dict(seed_model.state_dict())
    sd["cls_token"] = sd["cls_token"].reshape(1, -1)
    sd["pos_embedding"] = sd["pos_embedding"].reshape(sd["pos_embedding"].shape[1], -1)
    m.load_state_dict(sd, strict=True)
    return m.eval()


def tiny():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 32, 32, generator=gen)

    vit_kwargs = dict(TINY, mlp_dim=48, pool="cls")
    vit = Seed004ViT(**vit_kwargs)
    perturb(vit, 10)
    y = write("lucidrains_vit_tiny", vit, x, MODELS)
    today = todays_vit_from(vit, vit_kwargs)
    with torch.no_grad():
        assert torch.equal(today(x), y), "today's vit-pytorch ViT and seed 004's ViT disagree"
    torch.save(today.state_dict(), os.path.join(VERIFICATION, "lucidrains_vit_tiny.vit-pytorch.pth"))
    torch.save(today, os.path.join(VERIFICATION, "lucidrains_vit_tiny.vit-pytorch-module.pth"))

    pre = Seed000ViT(**dict(TINY, mlp_dim=48, pool="mean"))
    perturb(pre, 11)
    write("lucidrains_vit_prenorm_tiny", pre, x, MODELS)

    simple = SimpleViT(**dict(TINY, mlp_dim=48))
    perturb(simple, 12)
    write("simple_vit_tiny", simple, x, MODELS)

    crate = CRATE(**TINY)
    perturb(crate, 13)
    write("crate_tiny", crate, x, MODELS)

    # Keys, shapes and dtypes of the full-size named models in state_dict() order (meta device: no weights).
    specs = {}
    with torch.device("meta"):
        for name, make in [("lucidrains_vit", lambda: Seed004ViT(**SEED000)), ("lucidrains_vit_prenorm", lambda: Seed000ViT(**SEED000)),
                           ("simple_vit", lambda: SimpleViT(**SEED000)), ("crate", lambda: CRATE(**CRATE_DEFAULT))]:
            specs[name] = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in make().state_dict().items()]
    with open(os.path.join(MODELS, "lucidrains_full_size_specs.json"), "w") as f:
        json.dump(specs, f, separators=(",", ":"))

    with open(os.path.join(MODELS, "lucidrains.VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\nvit-pytorch {vit_pytorch_version()}\n"
                f"einops {einops.__version__}\nsafetensors {safetensors.__version__}\n")


# Full-size: seed 000's configuration (image 256, patch 32, dim 1024, depth 6, 16 heads, mlp 2048) for the ViTs and
# SimpleViT, a ViT-B/16-sized lucidrains_vit, and CRATE's issue defaults (image 224, patch 32, dim 1024, depth 6).
SEED000 = dict(image_size=256, patch_size=32, num_classes=1000, dim=1024, depth=6, heads=16, mlp_dim=2048)
CRATE_DEFAULT = dict(image_size=224, patch_size=32, num_classes=1000, dim=1024, depth=6, heads=16)
B16 = dict(image_size=224, patch_size=16, num_classes=1000, dim=768, depth=12, heads=12, mlp_dim=3072)


def full(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    x256 = torch.randn(2, 3, 256, 256, generator=gen)
    x224 = torch.randn(2, 3, 224, 224, generator=gen)
    vit = Seed004ViT(**SEED000)
    perturb(vit, 20)
    write("lucidrains_vit", vit, x256, out_dir, intermediates=False)
    today = todays_vit_from(vit, SEED000)
    torch.save(today.state_dict(), os.path.join(out_dir, "lucidrains_vit.vit-pytorch.pth"))
    torch.save(today, os.path.join(out_dir, "lucidrains_vit.vit-pytorch-module.pth"))
    b16 = Seed004ViT(**B16)
    perturb(b16, 21)
    write("lucidrains_vit_b16", b16, x224, out_dir, intermediates=False)
    pre = Seed000ViT(**SEED000)
    perturb(pre, 22)
    write("lucidrains_vit_prenorm", pre, x256, out_dir, intermediates=False)
    simple = SimpleViT(**SEED000)
    perturb(simple, 23)
    write("simple_vit", simple, x256, out_dir, intermediates=False)
    crate = CRATE(**CRATE_DEFAULT)
    perturb(crate, 24)
    write("crate", crate, x224, out_dir, intermediates=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", metavar="DIR", help="write the full-size set into DIR instead of the tiny fixtures")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.full:
        full(a.full)
    else:
        tiny()


if __name__ == "__main__":
    sys.exit(main())
