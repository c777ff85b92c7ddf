#!/usr/bin/env python3
"""PyTorch reference fixtures for issue 9's seed families: annotated_transformer, d2l_vit, sepvit_lite.

Made with: Python 3.11 + torch 2.15.0 (CPU), vit-pytorch 1.26.14, einops, safetensors 0.8.0 — the versions used are
written to Tests/ModelsTests/Fixtures/SEQ_VERSIONS.txt on every run.

The annotated Transformer (seed 000_f3f31e20b4f34ebf.txt, `make_model`) and the d2l ViT pieces (seed
002_0d9fe2463b53f312.txt; d2l's `MultiHeadAttention` as d2l 1.0 defines it: W_q/W_k/W_v/W_o without bias, heads
split with transpose_qkv, DotProductAttention without valid_lens) are re-typed below from the seeds; the d2l
`Vit.forward` of the notebook is broken, and the issue's version is used (patch → position → blocks → mlphead on
token 0). SepViT is vit-pytorch's own `vit_pytorch.sep_vit.SepViT`.

Usage:
    /work/venv/bin/python Tools/make_seq_fixtures.py            # tiny fixtures into Tests/ModelsTests/Fixtures
    /work/venv/bin/python Tools/make_seq_fixtures.py --full DIR  # full-size random-weight checkpoints (torch.save,
                                                                 # .pth; sepvit_lite also as a whole module) +
                                                                 # references into DIR (Tools/full_parity.sh)

Each model NAME gets NAME.weights.safetensors (tiny; metadata `state_dict_order`) or NAME.pth (full, torch.save of
the state dict), and NAME.reference.safetensors in the verify format: `input` (or `input.<name>` for several
inputs), `output`, and intermediates by module path. Tiny annotated_transformer weights leave out the two `pe`
buffers (5000 × d_model each): the test checks the Swift-computed buffer against the `pe_prefix` reference tensor
and loads the rest. Everything is seeded; LayerNorm affines, tokens and embeddings are randomised so every tensor
shows up in the outputs.
"""
import argparse
import copy
import json
import math
import os
import platform
import sys

import einops
import numpy as np
import safetensors
import torch
import torch.nn as nn
import torch.nn.functional as F
import vit_pytorch
from safetensors.torch import save_file
from vit_pytorch.sep_vit import SepViT

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "ModelsTests", "Fixtures")

# ------------------------------------------------------------------------------------------------------------------
# Seed 000: the annotated Transformer.
# ------------------------------------------------------------------------------------------------------------------


class Transformer(nn.Module):
    def __init__(self, encoder, decoder, src_embed, tgt_embed, generator):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.src_embed, self.tgt_embed = src_embed, tgt_embed
        self.generator = generator

    def forward(self, src, tgt, src_mask, tgt_mask):
        return self.decoder(self.tgt_embed(tgt), self.encoder(self.src_embed(src), src_mask), src_mask, tgt_mask)


class Generator(nn.Module):
    def __init__(self, d_model, vocab):
        super().__init__()
        self.proj = nn.Linear(d_model, vocab)

    def forward(self, x):
        return F.log_softmax(self.proj(x), dim=-1)


class LayerNorm(nn.Module):
    def __init__(self, features, eps=1e-6):
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.a_2 * (x - mean) / (std + self.eps) + self.b_2


class SublayerConnection(nn.Module):
    def __init__(self, size, dropout):
        super().__init__()
        self.norm = LayerNorm(size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, sublayer):
        return x + self.dropout(sublayer(self.norm(x)))


class PositionwiseFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.1):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.dropout(F.relu(self.w_1(x))))


def attention(query, key, value, mask=None, dropout=None):
    d_k = query.size(-1)
    scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    p_attn = F.softmax(scores, dim=-1)
    if dropout is not None:
        p_attn = dropout(p_attn)
    return torch.matmul(p_attn, value), p_attn


def clones(module, n):
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


class MultiHeadedAttention(nn.Module):
    def __init__(self, h, d_model, dropout=0.1):
        super().__init__()
        assert d_model % h == 0
        self.d_k = d_model // h
        self.h = h
        self.linears = clones(nn.Linear(d_model, d_model), 4)
        self.attn = None
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, query, key, value, mask=None):
        if mask is not None:
            mask = mask.unsqueeze(1)
        nbatches = query.size(0)
        query, key, value = [l(x).view(nbatches, -1, self.h, self.d_k).transpose(1, 2)
                             for l, x in zip(self.linears, (query, key, value))]
        x, self.attn = attention(query, key, value, mask=mask, dropout=self.dropout)
        x = x.transpose(1, 2).contiguous().view(nbatches, -1, self.h * self.d_k)
        return self.linears[-1](x)


class Encoder(nn.Module):
    def __init__(self, layer, n):
        super().__init__()
        self.layers = clones(layer, n)
        self.norm = LayerNorm(layer.size)

    def forward(self, x, mask):
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


class EncoderLayer(nn.Module):
    def __init__(self, size, self_attn, feed_forward, dropout):
        super().__init__()
        self.self_attn = self_attn
        self.feed_forward = feed_forward
        self.sublayer = clones(SublayerConnection(size, dropout), 2)
        self.size = size

    def forward(self, x, mask):
        x = self.sublayer[0](x, lambda x: self.self_attn(x, x, x, mask))
        return self.sublayer[1](x, self.feed_forward)


class Decoder(nn.Module):
    def __init__(self, layer, n):
        super().__init__()
        self.layers = clones(layer, n)
        self.norm = LayerNorm(layer.size)

    def forward(self, x, memory, src_mask, tgt_mask):
        for layer in self.layers:
            x = layer(x, memory, src_mask, tgt_mask)
        return self.norm(x)


class DecoderLayer(nn.Module):
    def __init__(self, size, self_attn, src_attn, feed_forward, dropout):
        super().__init__()
        self.size = size
        self.self_attn = self_attn
        self.src_attn = src_attn
        self.feed_forward = feed_forward
        self.sublayer = clones(SublayerConnection(size, dropout), 3)

    def forward(self, x, memory, src_mask, tgt_mask):
        m = memory
        x = self.sublayer[0](x, lambda x: self.self_attn(x, x, x, tgt_mask))
        x = self.sublayer[1](x, lambda x: self.src_attn(x, m, m, src_mask))
        return self.sublayer[2](x, self.feed_forward)


def subsequent_mask(size):
    return torch.from_numpy(np.triu(np.ones((1, size, size)), k=1).astype('uint8')) == 0


class Embeddings(nn.Module):
    def __init__(self, d_model, vocab):
        super().__init__()
        self.lut = nn.Embedding(vocab, d_model)
        self.d_model = d_model

    def forward(self, x):
        return self.lut(x) * math.sqrt(self.d_model)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * -(math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer('pe', pe.unsqueeze(0))

    def forward(self, x):
        return self.dropout(x + self.pe[:, :x.size(1)].clone().detach())


def make_model(src_vocab, tgt_vocab, N=6, d_model=512, d_ff=2048, h=8, dropout=0.1):
    c = copy.deepcopy
    attn = MultiHeadedAttention(h, d_model)
    ff = PositionwiseFeedForward(d_model, d_ff, dropout)
    position = PositionalEncoding(d_model, dropout)
    return Transformer(
        Encoder(EncoderLayer(d_model, c(attn), c(ff), dropout), N),
        Decoder(DecoderLayer(d_model, c(attn), c(attn), c(ff), dropout), N),
        nn.Sequential(Embeddings(d_model, src_vocab), c(position)),
        nn.Sequential(Embeddings(d_model, tgt_vocab), c(position)),
        Generator(d_model, tgt_vocab))


def transformer_inputs(gen, batch, s, t, src_vocab, tgt_vocab):
    """Random ids; sample i > 0 has its last i·2 source positions padded (false); tgt_mask = subsequent & padding."""
    src = torch.randint(0, src_vocab, (batch, s), generator=gen)
    tgt = torch.randint(0, tgt_vocab, (batch, t), generator=gen)
    src_mask = torch.ones(batch, 1, s, dtype=torch.bool)
    tgt_pad = torch.ones(batch, 1, t, dtype=torch.bool)
    for i in range(1, batch):
        src_mask[i, 0, max(1, s - 2 * i):] = False
        tgt_pad[i, 0, max(1, t - i):] = False
    tgt_mask = tgt_pad & subsequent_mask(t)
    return src, tgt, src_mask, tgt_mask


def write_transformer(name, out_dir, gen, config, batch, s, t, full):
    model = make_model(config["src_vocab"], config["tgt_vocab"], N=config["layers"], d_model=config["d_model"],
                       d_ff=config["d_ff"], h=config["heads"]).eval()
    with torch.no_grad():
        for p in model.parameters():   # make_model's training code draws xavier_uniform for every matrix
            if p.dim() > 1:
                nn.init.xavier_uniform_(p, generator=gen)
        for m in model.modules():
            if isinstance(m, LayerNorm):
                m.a_2.copy_(torch.rand(m.a_2.shape, generator=gen) + 0.5)
                m.b_2.copy_(torch.randn(m.b_2.shape, generator=gen) * 0.1)
    paths = ([f"encoder.layers.{i}" for i in range(config["layers"])] + ["encoder"]
             + [f"decoder.layers.{i}" for i in range(config["layers"])] + ["decoder"])
    acts, hooks = capture_hooks(model, paths)
    src, tgt, src_mask, tgt_mask = transformer_inputs(gen, batch, s, t, config["src_vocab"], config["tgt_vocab"])
    with torch.no_grad():
        y = model(src, tgt, src_mask, tgt_mask)
        acts["generator"] = model.generator(y)
    for h in hooks:
        h.remove()
    ref = {"input.src": src, "input.tgt": tgt, "input.src_mask": src_mask, "input.tgt_mask": tgt_mask, "output": y}
    ref.update({p: acts[p] for p in paths + ["generator"]})
    sd = model.state_dict()
    if full:
        save_full(name, model, ref, out_dir)
    else:
        ref["pe_prefix"] = sd["src_embed.1.pe"][:, :64].contiguous()
        weights = {k: v for k, v in sd.items() if not k.endswith(".pe")}
        save_tiny(name, sd, weights, ref, out_dir)
    report(name, sd, y)


# ------------------------------------------------------------------------------------------------------------------
# Seed 002: the d2l notebook's ViT.
# ------------------------------------------------------------------------------------------------------------------


def transpose_qkv(x, num_heads):
    x = x.reshape(x.shape[0], x.shape[1], num_heads, -1).permute(0, 2, 1, 3)
    return x.reshape(-1, x.shape[2], x.shape[3])


def transpose_output(x, num_heads):
    x = x.reshape(-1, num_heads, x.shape[1], x.shape[2]).permute(0, 2, 1, 3)
    return x.reshape(x.shape[0], x.shape[1], -1)


class DotProductAttention(nn.Module):
    def __init__(self, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        d = queries.shape[-1]
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)
        self.attention_weights = F.softmax(scores, dim=-1)   # valid_lens is None in the notebook
        return torch.bmm(self.dropout(self.attention_weights), values)


class MultiHeadAttention(nn.Module):
    """d2l 1.0's MultiHeadAttention(num_hiddens, num_heads, dropout, bias=False) with eager Linears."""
    def __init__(self, num_hiddens, num_heads, dropout, bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout)
        self.W_q = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def forward(self, queries, keys, values, valid_lens):
        queries = transpose_qkv(self.W_q(queries), self.num_heads)
        keys = transpose_qkv(self.W_k(keys), self.num_heads)
        values = transpose_qkv(self.W_v(values), self.num_heads)
        output = self.attention(queries, keys, values, valid_lens)
        return self.W_o(transpose_output(output, self.num_heads))


class Patch_conv(nn.Module):
    def __init__(self, patch_size):
        super().__init__()
        in_dim = 3
        self.out_dim = in_dim * patch_size * patch_size
        self.conv = nn.Conv2d(in_dim, self.out_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, X):
        return self.conv(X).flatten(2).transpose(1, 2)


class Position_Embedding(nn.Module):
    def __init__(self, patch_size, img_size):
        super().__init__()
        self.embeddings = 3 * patch_size * patch_size
        self.tokens = (img_size // patch_size) * (img_size // patch_size) + 1
        self.cls = nn.Parameter(torch.randn(1, 1, self.embeddings))
        self.pos_emb = nn.Parameter(torch.randn(1, self.tokens, self.embeddings))

    def forward(self, X):
        cls_token = self.cls.expand(X.shape[0], -1, -1)
        return self.pos_emb + torch.concat((X, cls_token), dim=1)


class Transformer_Block(nn.Module):
    def __init__(self, tokens, embeddings, heads, dropout):
        super().__init__()
        self.norm1 = nn.LayerNorm(embeddings)
        self.Attention = MultiHeadAttention(embeddings, heads, dropout)
        self.norm2 = nn.LayerNorm(embeddings)
        self.mlp = nn.Sequential(nn.Linear(embeddings, 2 * embeddings), nn.ReLU(), nn.Linear(2 * embeddings, embeddings))

    def forward(self, X):
        X = self.norm1(X)
        X = X + self.Attention(X, X, X, valid_lens=None)
        return X + self.mlp(self.norm2(X))


class D2LTransformer(nn.Module):
    def __init__(self, num_blocks, tokens, embeddings, heads, dropout):
        super().__init__()
        self.transformer = nn.Sequential()
        for i in range(num_blocks):
            self.transformer.add_module("transformer" + str(i), Transformer_Block(tokens, embeddings, heads, dropout))

    def forward(self, X):
        for blk in self.transformer:
            X = blk(X)
        return X


class Vit(nn.Module):
    def __init__(self, img_size, patch_size, num_blocks, heads, dropout, classes):
        super().__init__()
        self.patch = Patch_conv(patch_size)
        self.pos = Position_Embedding(patch_size, img_size)
        self.transformer = D2LTransformer(num_blocks, self.pos.tokens, self.pos.embeddings, heads, dropout)
        self.mlphead = nn.Linear(self.pos.embeddings, classes)

    def forward(self, X):   # the forward (the notebook's calls undefined globals)
        return self.mlphead(self.transformer(self.pos(self.patch(X)))[:, 0])


def write_d2l(name, out_dir, gen, config, batch, full):
    model = Vit(config["img_size"], config["patch_size"], config["blocks"], config["heads"], 0.2, config["classes"]).eval()
    randomise_layernorms(model, gen)
    paths = ["patch", "pos"] + [f"transformer.transformer.transformer{i}" for i in range(config["blocks"])] + ["transformer", "mlphead"]
    x = torch.randn(batch, 3, config["img_size"], config["img_size"], generator=gen)
    write_image_model(name, model, x, paths, out_dir, full)


# ------------------------------------------------------------------------------------------------------------------
# Seed 003: SepViT (vit-pytorch's implementation), SepViT-Lite configuration at full size.
# ------------------------------------------------------------------------------------------------------------------


def write_sepvit(name, out_dir, gen, config, image, batch, full):
    model = SepViT(**config).eval()
    randomise_layernorms(model, gen)
    with torch.no_grad():
        for m in model.modules():
            if type(m).__name__ == "ChanLayerNorm":
                m.g.copy_(torch.rand(m.g.shape, generator=gen) + 0.5)
                m.b.copy_(torch.randn(m.b.shape, generator=gen) * 0.1)
    stages = len(config["depth"])
    paths = []
    for i in range(stages):
        paths += [f"layers.{i}.0", f"layers.{i}.1"] + [f"layers.{i}.2.layers.{j}.{k}" for j in range(config["depth"][i]) for k in (0, 1)]
        paths += [f"layers.{i}.2"]
    paths += ["mlp_head"]
    x = torch.randn(batch, config.get("channels", 3), image, image, generator=gen)
    write_image_model(name, model, x, paths, out_dir, full)
    if full:   # the whole module, as users of vit-pytorch save it (torch.save(model))
        # Written last and renamed into place: Tools/full_parity.sh takes this file as the sign that the set is
        # complete, so a failed save must not leave a partial one behind.
        path = os.path.join(out_dir, f"{name}.module.pth")
        torch.save(model, path + ".partial")
        os.replace(path + ".partial", path)


# ------------------------------------------------------------------------------------------------------------------


def randomise_layernorms(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def capture_hooks(model, paths):
    """Forward hooks that keep each path's output; returns the dict they fill and their handles (remove them after
    the forward: a module still holding the hooks' lambdas cannot be pickled by `torch.save(model)`)."""
    acts = {}
    modules = dict(model.named_modules())
    handles = [modules[p].register_forward_hook(lambda mod, inp, out, p=p: acts.__setitem__(p, out.detach().clone()))
               for p in paths]
    return acts, handles


def write_image_model(name, model, x, paths, out_dir, full):
    acts, hooks = capture_hooks(model, paths)
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    ref = {"input": x, "output": y}
    ref.update({p: acts[p] for p in paths})
    sd = model.state_dict()
    if full:
        save_full(name, model, ref, out_dir)
    else:
        save_tiny(name, sd, sd, ref, out_dir)
    report(name, sd, y)


def save_tiny(name, sd, weights, ref, out_dir):
    save_file({k: v.detach().contiguous() for k, v in weights.items()}, os.path.join(out_dir, f"{name}.weights.safetensors"),
              metadata={"state_dict_order": ",".join(sd.keys())})
    save_file({k: v.detach().contiguous() for k, v in ref.items()}, os.path.join(out_dir, f"{name}.reference.safetensors"),
              metadata={"source": f"{name}, torch {torch.__version__}"})


def save_full(name, model, ref, out_dir):
    torch.save(model.state_dict(), os.path.join(out_dir, f"{name}.pth"))
    save_file({k: v.detach().contiguous() for k, v in ref.items()}, os.path.join(out_dir, f"{name}.reference.safetensors"))


def report(name, sd, y):
    print(f"{name}: {sum(v.numel() for v in sd.values())} values, output {tuple(y.shape)}, max|out| {y.abs().max().item():.4g}")


TINY_TRANSFORMER = dict(src_vocab=11, tgt_vocab=13, layers=2, d_model=16, d_ff=24, heads=4)
TINY_D2L = dict(img_size=16, patch_size=4, blocks=2, heads=4, classes=10)
TINY_SEPVIT = dict(num_classes=10, dim=8, dim_head=32, heads=(1, 2, 2), depth=(1, 2, 1), window_size=7)
LITE_SEPVIT = dict(num_classes=1000, dim=32, dim_head=32, heads=(1, 2, 4, 8), depth=(1, 2, 6, 2), window_size=7)


def write_specs(path):
    """Key, shape and dtype of every tensor of the registered full-size models at their default options (meta device),
    in state_dict() order — RegistrationTests compares the Swift listing with it."""
    specs = {}
    with torch.device("meta"):
        models = {"annotated_transformer": make_model(11, 11),
                  "d2l_vit": Vit(224, 16, 2, 4, 0.2, 10),
                  "sepvit_lite": SepViT(**LITE_SEPVIT)}
        for name, m in models.items():
            specs[name] = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in m.state_dict().items()]
    with open(path, "w") as f:   # one tensor per line
        f.write("{\n" + ",\n".join(json.dumps(name) + ": [\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]"
                                    for name, rows in sorted(specs.items())) + "\n}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", metavar="DIR")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(9)
    torch.manual_seed(9)
    if args.full:
        os.makedirs(args.full, exist_ok=True)
        write_transformer("annotated_transformer_8000", args.full, gen,
                          dict(src_vocab=8000, tgt_vocab=8000, layers=6, d_model=512, d_ff=2048, heads=8), 2, 64, 64, True)
        write_transformer("annotated_transformer_toy", args.full, gen,
                          dict(src_vocab=11, tgt_vocab=11, layers=2, d_model=512, d_ff=2048, heads=8), 1, 10, 10, True)
        write_d2l("d2l_vit", args.full, gen, dict(img_size=224, patch_size=16, blocks=2, heads=4, classes=10), 2, True)
        write_sepvit("sepvit_lite", args.full, gen, LITE_SEPVIT, 224, 2, True)
        return
    write_specs(os.path.join(FIXTURES, "seq_full_size_specs.json"))
    write_transformer("annotated_transformer_tiny", FIXTURES, gen, TINY_TRANSFORMER, 3, 7, 6, False)
    write_d2l("d2l_vit_tiny", FIXTURES, gen, TINY_D2L, 2, False)
    write_sepvit("sepvit_tiny", FIXTURES, gen, TINY_SEPVIT, 112, 1, False)
    with open(os.path.join(FIXTURES, "SEQ_VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\nvit-pytorch {vit_pytorch.__version__ if hasattr(vit_pytorch, '__version__') else '1.26.14'}\n"
                f"einops {einops.__version__}\nsafetensors {safetensors.__version__}\nnumpy {np.__version__}\nscript Tools/make_seq_fixtures.py\n")


if __name__ == "__main__":
    main()
