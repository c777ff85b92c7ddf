#!/usr/bin/env bash
# Full-size parity: real-size random-weight resnet18, resnet18_cbam and vit_base_patch16_224_in21k written by
# PyTorch (Tools/make_model_fixtures.py --full), loaded by the release `weights` binary and compared with PyTorch's
# outputs (and intermediates). The ViT also goes through the user's path: a `torch.save`d
# jx_vit_base_patch16_224_in21k.pth converted with `weights convert`, then verified from the converted file.
#
# Needs a Python with torch, torchvision, safetensors and vit-pytorch (PYTHON, default /work/venv/bin/python); ~1.5 GB in DIR.
# Usage: Tools/full_parity.sh [DIR]      (default /tmp/weights-full-parity)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/weights-full-parity}
PYTHON=${PYTHON:-/work/venv/bin/python}

bash Tools/setup.sh
swift build -c release --static-swift-stdlib --product weights >/dev/null   # as `make release`
W=.build/release/weights

if [ ! -f "$DIR/vit_base_patch16_224_in21k.reference.safetensors" ]; then
  echo "writing the full-size parity set into $DIR ..."
  "$PYTHON" Tools/make_model_fixtures.py --full "$DIR"
fi
if [ ! -f "$DIR/jx_vit_base_patch16_224_in21k.pth" ]; then
  "$PYTHON" - "$DIR" <<'PY'
import sys, torch
from safetensors.torch import load_file
d = sys.argv[1]
torch.save(load_file(f"{d}/vit_base_patch16_224_in21k.weights.safetensors"), f"{d}/jx_vit_base_patch16_224_in21k.pth")
PY
fi

status=0
for m in resnet18 resnet18_cbam vit_base_patch16_224_in21k; do
  echo "== $m"
  $W verify --model "$m" --weights "$DIR/$m.weights.safetensors" --reference "$DIR/$m.reference.safetensors" | grep -v "^  " || status=1
done

echo "== vit_base_patch16_224_in21k from jx_vit_base_patch16_224_in21k.pth via weights convert"
$W convert "$DIR/jx_vit_base_patch16_224_in21k.pth" --force
$W verify --model vit_base_patch16_224_in21k --weights "$DIR/jx_vit_base_patch16_224_in21k.safetensors" \
          --reference "$DIR/vit_base_patch16_224_in21k.reference.safetensors" | grep -v "^  " || status=1

# Issue 9's vit-pytorch family at full size (Tools/make_lucidrains_fixtures.py --full): seed 000's configuration for
# both ViT layouts and SimpleViT, a ViT-B/16-sized lucidrains_vit, CRATE's defaults, and today's vit-pytorch files
# (state dict and whole pickled module) through the lucidrains_vit.vit-pytorch table.
L="$DIR/lucidrains"
if [ ! -f "$L/crate.reference.safetensors" ]; then
  echo "writing the full-size vit-pytorch set into $L ..."
  "$PYTHON" Tools/make_lucidrains_fixtures.py --full "$L"
fi
B16="--config image_size=224 --config patch_size=16 --config dim=768 --config depth=12 --config heads=12 --config mlp_dim=3072"
for m in lucidrains_vit lucidrains_vit_prenorm simple_vit crate; do
  echo "== $m"
  $W verify --model "$m" --weights "$L/$m.weights.safetensors" --reference "$L/$m.reference.safetensors" | grep -v "^  " || status=1
done
echo "== lucidrains_vit, ViT-B/16 size"
$W verify --model lucidrains_vit $B16 --weights "$L/lucidrains_vit_b16.weights.safetensors" \
          --reference "$L/lucidrains_vit_b16.reference.safetensors" | grep -v "^  " || status=1
for f in vit-pytorch vit-pytorch-module; do
  echo "== lucidrains_vit from today's vit-pytorch ($f.pth)"
  $W verify --model lucidrains_vit --weights "$L/lucidrains_vit.$f.pth" --reference "$L/lucidrains_vit.reference.safetensors" \
    | grep -v "^  " || status=1
done

[ $status -eq 0 ] && echo "full-size parity: PASS" || echo "full-size parity: FAIL"
exit $status
