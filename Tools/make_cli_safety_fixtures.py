"""Small inputs for Tests/WeightsCLITests/SafetyCLITests.swift (the CLI's output / terminal / file-system checks).

Made with Python 3.11.7, torch 2.15.0, safetensors 0.8.0 (the script prints the versions it used). Run from the
repository root:  /work/venv/bin/python Tools/make_cli_safety_fixtures.py
Writes into Tests/WeightsCLITests/Fixtures/:
  payload_beside_tensors_zip.pth     torch.save zip: real tensors plus an object whose pickle calls os.system
  payload_beside_tensors_legacy.pth  the same in the legacy (pre-1.6) format
  escapes.safetensors                tensor names and metadata holding ESC, CR, LF, BEL and a bidi override
"""
import os
import sys

import safetensors
import safetensors.torch
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "WeightsCLITests", "Fixtures")


class Payload:
    """Pickles as a call of os.system: what a malicious checkpoint carries beside real weights."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def main():
    print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, safetensors {safetensors.__version__}")
    torch.manual_seed(0)
    sd = {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "bias": torch.ones(2), "extra": Payload()}
    torch.save(sd, os.path.join(OUT, "payload_beside_tensors_zip.pth"))
    torch.save(sd, os.path.join(OUT, "payload_beside_tensors_legacy.pth"), _use_new_zipfile_serialization=False)

    names = {
        "plain.weight": torch.zeros(2),
        "\x1b[31mred\x1b[0m": torch.ones(1),
        "line\r\nfeed\x07bell": torch.ones(3),
        "bidi\u202eevil": torch.ones(1, dtype=torch.int64),
    }
    safetensors.torch.save_file(names, os.path.join(OUT, "escapes.safetensors"),
                                metadata={"note\x1b]0;title\x07": "first\nsecond\rthird\x1b[2J"})
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
