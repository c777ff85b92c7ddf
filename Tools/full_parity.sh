#!/usr/bin/env bash
# Full-size parity: real-size random-weight resnet18, resnet18_cbam, vit_base_patch16_224_in21k, stn and
# mobilevit_xxs/xs/s written by
# PyTorch (Tools/make_model_fixtures.py --full), loaded by the release `weights` binary and compared with PyTorch's
# outputs (and intermediates). The ViT also goes through the user's path: a `torch.save`d
# jx_vit_base_patch16_224_in21k.pth converted with `weights convert`, then verified from the converted file.
#
# Needs a Python with torch, torchvision and safetensors (PYTHON, default /work/venv/bin/python); ~1.5 GB in DIR.
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

# Seed 000's STN and MobileViTs (Tools/seed_cnn_models.py): each from safetensors, a torch.save zip and a legacy
# .pth, and each MobileViT also from today's vit-pytorch layout (through Mappings/mobilevit.vit-pytorch.yaml).
# SEED_CNN="stn mobilevit_xs" limits the set (default all four; "" skips them).
SEED_CNN=${SEED_CNN-stn mobilevit_xxs mobilevit_xs mobilevit_s}
for m in $SEED_CNN; do
  if [ ! -f "$DIR/$m.legacy.pth" ]; then
    "$PYTHON" Tools/make_model_fixtures.py --full "$DIR" --only "$m"
  fi
  files="$m.weights.safetensors $m.pth $m.legacy.pth"
  case $m in mobilevit_*) files="$files $m.vit-pytorch.safetensors";; esac
  for f in $files; do
    echo "== $m from $f"
    $W verify --model "$m" --weights "$DIR/$f" --reference "$DIR/$m.reference.safetensors" | grep -v "^  " || status=1
  done
done

[ $status -eq 0 ] && echo "full-size parity: PASS" || echo "full-size parity: FAIL"
exit $status
