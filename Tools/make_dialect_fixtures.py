#!/usr/bin/env python3
"""Writes the tiny models' weights in every checkpoint dialect the mapping tables cover
(Tests/VerificationTests/Fixtures/), for the end-to-end parity tests.

Made with: Python 3 + torch 2.15.0 (CPU), h5py 3.16.0, numpy 2.4.6, safetensors 0.8.0 — the versions used are
written to Fixtures/VERSIONS.txt on every run.

Input: the PyTorch state dicts written by Tools/make_model_fixtures.py (Tests/ModelsTests/Fixtures/NAME.weights.safetensors);
the reference outputs stay there. Each dialect below is produced the way its ecosystem writes it:

  resnet18_tiny.zip.pth            torch.save(state_dict)                      (zip format)
  resnet18_tiny.legacy.pth         torch.save(..., _use_new_zipfile_serialization=False), without num_batches_tracked,
                                   like torchvision's pre-1.0 resnet18-5c106cde.pth
  resnet18_tiny.checkpoint.pth     a training checkpoint {'epoch', 'arch', 'state_dict': {'module.'+key: ...},
                                   'optimizer': ...} as DataParallel training scripts save it
  resnet18_tiny.groups.h5          h5py nested groups (/layer1/0/conv1/weight), no num_batches_tracked
  resnet18_cbam_tiny.backbone.pth  the CBAM model's state dict minus every ca.* / sa.* key: a plain-ResNet-shaped file
  resnet18_cbam_tiny.attention.safetensors   only the ca.* / sa.* keys (the second, partial file)
  resnet50_cbam_tiny.backbone.legacy.pth  the Bottleneck CBAM model's state dict minus ca.* / sa.* and
                                   num_batches_tracked, in the legacy format (like torchvision's resnet50-19c8e357.pth)
  resnet50_cbam_tiny.attention.safetensors   only its ca.* / sa.* keys
  senet18_tiny.legacy.pth          the seed SENet-18's state dict, legacy format, without num_batches_tracked
  vit_tiny_patch8_32.timm.pth      torch.save(state_dict) with timm keys
  vit_tiny_patch8_32.jax.npz       Google's JAX/Flax layout (HWIO conv, [in, out] kernels, per-head q/k/v)
  vit_tiny_patch8_32.hf.safetensors   Hugging Face ViTModel+classifier keys (vit. prefix, split q/k/v, pooler)
  vit_tiny_patch8_32.hf.bin        the same without the vit. prefix, as torch.save
"""
import os
import platform
from collections import OrderedDict

import h5py
import numpy as np
import safetensors
import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "Tests", "ModelsTests", "Fixtures")
OUT = os.path.join(HERE, "..", "Tests", "VerificationTests", "Fixtures")


def state_dict(name):
    path = os.path.join(MODELS, f"{name}.weights.safetensors")
    sd = load_file(path)
    with safetensors.safe_open(path, "pt") as f:
        order = (f.metadata() or {}).get("state_dict_order")
    keys = order.split(",") if order else list(sd)
    return OrderedDict((k, sd[k]) for k in keys)


def out(name):
    return os.path.join(OUT, name)


def resnet():
    sd = state_dict("resnet18_tiny")
    torch.save(sd, out("resnet18_tiny.zip.pth"))
    old = OrderedDict((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    torch.save(old, out("resnet18_tiny.legacy.pth"), _use_new_zipfile_serialization=False)
    wrapped = OrderedDict(("module." + k, v) for k, v in sd.items())
    opt = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": list(range(len(sd)))}]}
    torch.save({"epoch": 90, "arch": "resnet18", "best_acc1": 69.76, "state_dict": wrapped, "optimizer": opt},
               out("resnet18_tiny.checkpoint.pth"))
    with h5py.File(out("resnet18_tiny.groups.h5"), "w") as f:
        f.attrs["arch"] = "resnet18_tiny"
        for k, v in old.items():
            f.create_dataset("/" + k.replace(".", "/"), data=v.numpy())

    cbam = state_dict("resnet18_cbam_tiny")
    attention = lambda k: ".ca." in k or ".sa." in k
    torch.save(OrderedDict((k, v) for k, v in cbam.items() if not attention(k)), out("resnet18_cbam_tiny.backbone.pth"))
    save_file({k: v.contiguous() for k, v in cbam.items() if attention(k)}, out("resnet18_cbam_tiny.attention.safetensors"))

    cbam50 = state_dict("resnet50_cbam_tiny")
    torch.save(OrderedDict((k, v) for k, v in cbam50.items() if not attention(k) and not k.endswith("num_batches_tracked")),
               out("resnet50_cbam_tiny.backbone.legacy.pth"), _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in cbam50.items() if attention(k)}, out("resnet50_cbam_tiny.attention.safetensors"))

    se = state_dict("senet18_tiny")
    torch.save(OrderedDict((k, v) for k, v in se.items() if not k.endswith("num_batches_tracked")),
               out("senet18_tiny.legacy.pth"), _use_new_zipfile_serialization=False)


def vit():
    sd = state_dict("vit_tiny_patch8_32")
    torch.save(sd, out("vit_tiny_patch8_32.timm.pth"))
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    dim = sd["cls_token"].shape[-1]
    heads = 4  # the tiny config's num_heads (Tools/make_model_fixtures.py)
    hd = dim // heads
    n = lambda t: t.detach().numpy()

    jax = {"cls": n(sd["cls_token"]),
           "embedding/kernel": n(sd["patch_embed.proj.weight"].permute(2, 3, 1, 0)),  # OIHW -> HWIO
           "embedding/bias": n(sd["patch_embed.proj.bias"]),
           "Transformer/posembed_input/pos_embedding": n(sd["pos_embed"]),
           "Transformer/encoder_norm/scale": n(sd["norm.weight"]),
           "Transformer/encoder_norm/bias": n(sd["norm.bias"]),
           "pre_logits/kernel": n(sd["pre_logits.fc.weight"].t()),
           "pre_logits/bias": n(sd["pre_logits.fc.bias"]),
           "head/kernel": n(sd["head.weight"].t()),
           "head/bias": n(sd["head.bias"])}
    for i in range(depth):
        b, e = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        a = e + "MultiHeadDotProductAttention_1/"
        q, k, v = sd[b + "attn.qkv.weight"].chunk(3, dim=0)
        qb, kb, vb = sd[b + "attn.qkv.bias"].chunk(3, dim=0)
        for name, w, bias in (("query", q, qb), ("key", k, kb), ("value", v, vb)):
            jax[a + name + "/kernel"] = n(w.t().reshape(dim, heads, hd))
            jax[a + name + "/bias"] = n(bias.reshape(heads, hd))
        jax[a + "out/kernel"] = n(sd[b + "attn.proj.weight"].t().reshape(heads, hd, dim))
        jax[a + "out/bias"] = n(sd[b + "attn.proj.bias"])
        jax[e + "LayerNorm_0/scale"] = n(sd[b + "norm1.weight"])
        jax[e + "LayerNorm_0/bias"] = n(sd[b + "norm1.bias"])
        jax[e + "LayerNorm_2/scale"] = n(sd[b + "norm2.weight"])
        jax[e + "LayerNorm_2/bias"] = n(sd[b + "norm2.bias"])
        jax[e + "MlpBlock_3/Dense_0/kernel"] = n(sd[b + "mlp.fc1.weight"].t())
        jax[e + "MlpBlock_3/Dense_0/bias"] = n(sd[b + "mlp.fc1.bias"])
        jax[e + "MlpBlock_3/Dense_1/kernel"] = n(sd[b + "mlp.fc2.weight"].t())
        jax[e + "MlpBlock_3/Dense_1/bias"] = n(sd[b + "mlp.fc2.bias"])
    np.savez(out("vit_tiny_patch8_32.jax.npz"), **{k: np.ascontiguousarray(v) for k, v in jax.items()})

    hf = OrderedDict()
    hf["vit.embeddings.cls_token"] = sd["cls_token"]
    hf["vit.embeddings.position_embeddings"] = sd["pos_embed"]
    hf["vit.embeddings.patch_embeddings.projection.weight"] = sd["patch_embed.proj.weight"]
    hf["vit.embeddings.patch_embeddings.projection.bias"] = sd["patch_embed.proj.bias"]
    for i in range(depth):
        b, l = f"blocks.{i}.", f"vit.encoder.layer.{i}."
        for name, w, bias in zip(("query", "key", "value"), sd[b + "attn.qkv.weight"].chunk(3, 0), sd[b + "attn.qkv.bias"].chunk(3, 0)):
            hf[l + f"attention.attention.{name}.weight"] = w
            hf[l + f"attention.attention.{name}.bias"] = bias
        pairs = (("attention.output.dense", "attn.proj"), ("layernorm_before", "norm1"), ("layernorm_after", "norm2"),
                 ("intermediate.dense", "mlp.fc1"), ("output.dense", "mlp.fc2"))
        for h, t in pairs:
            hf[l + h + ".weight"] = sd[b + t + ".weight"]
            hf[l + h + ".bias"] = sd[b + t + ".bias"]
    hf["vit.layernorm.weight"] = sd["norm.weight"]
    hf["vit.layernorm.bias"] = sd["norm.bias"]
    hf["vit.pooler.dense.weight"] = sd["pre_logits.fc.weight"]
    hf["vit.pooler.dense.bias"] = sd["pre_logits.fc.bias"]
    hf["classifier.weight"] = sd["head.weight"]
    hf["classifier.bias"] = sd["head.bias"]
    save_file({k: v.contiguous() for k, v in hf.items()}, out("vit_tiny_patch8_32.hf.safetensors"))
    torch.save(OrderedDict((k[4:] if k.startswith("vit.") else k, v.clone()) for k, v in hf.items()),
               out("vit_tiny_patch8_32.hf.bin"))


def main():
    os.makedirs(OUT, exist_ok=True)
    resnet()
    vit()
    with open(out("VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\nh5py {h5py.__version__}\n"
                f"numpy {np.__version__}\nsafetensors {safetensors.__version__}\n")
    total = sum(os.path.getsize(out(x)) for x in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1024:.0f} KiB, into {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
