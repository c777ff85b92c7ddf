#!/usr/bin/env python3
"""Writes the multi-input / multi-output verification fixture (Tests/VerificationTests/Fixtures/two_heads.*).

Made with: Python 3.11 + torch 2.15.0 (CPU), safetensors 0.8.0 — the versions used are written to
Fixtures/two_heads.VERSIONS.txt on every run.

The model (mirrored in Tests/VerificationTests/MultiIOTests.swift) takes three named inputs of three dtypes and
returns a tuple, so the reference uses the extended format:

    input.x     float32 [N, 4]        input.ids  int64 [N]        input.mask  bool [N, 4]
    output.0    fc(h)  [N, 3]         output.1   sigmoid(gate(h)) [N, 2]
    act         the ReLU module's output (a forward hook), an intermediate by module path

with h = relu(proj(x + embed(ids))).masked_fill(~mask, 0).

Usage: /work/venv/bin/python Tools/make_multi_io_fixtures.py [OUT_DIR]   (default Tests/VerificationTests/Fixtures)
"""
import os
import platform
import sys

import safetensors
import torch
from safetensors.torch import save_file
from torch import nn


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.proj = nn.Linear(4, 4)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 3)
        self.gate = nn.Linear(4, 2)

    def forward(self, x, ids, mask):
        h = self.act(self.proj(x + self.embed(ids)))
        h = h.masked_fill(~mask, 0.0)
        return self.fc(h), torch.sigmoid(self.gate(h))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "VerificationTests", "Fixtures")
    torch.manual_seed(8)
    model = TwoHeads().eval()
    captured = {}
    model.act.register_forward_hook(lambda m, i, o: captured.__setitem__("act", o.detach().clone()))
    x = torch.randn(5, 4)
    ids = torch.tensor([0, 6, 3, 3, 1], dtype=torch.int64)
    mask = torch.rand(5, 4) > 0.3
    with torch.no_grad():
        logits, gates = model(x, ids, mask)
    sd = model.state_dict()
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(out, "two_heads.weights.safetensors"),
              metadata={"state_dict_order": ",".join(sd.keys())})
    save_file({"input.x": x, "input.ids": ids, "input.mask": mask, "output.0": logits, "output.1": gates,
               "act": captured["act"]}, os.path.join(out, "two_heads.reference.safetensors"))
    with open(os.path.join(out, "two_heads.VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\nsafetensors {safetensors.__version__}\n"
                f"script Tools/make_multi_io_fixtures.py\n")


if __name__ == "__main__":
    main()
