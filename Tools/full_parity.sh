#!/usr/bin/env bash
# Full-size parity: real-size random-weight models written by PyTorch (Tools/make_model_fixtures.py --full), loaded
# by the release `weights` binary and compared with PyTorch's outputs (and intermediates).
# - resnet18, resnet18_cbam, vit_base_patch16_224_in21k from their safetensors state dicts; the ViT also through the
#   user's path: a `torch.save`d jx_vit_base_patch16_224_in21k.pth converted with `weights convert`, then verified.
# - resnet50/101/152 (torchvision's models), resnet50/101/152_cbam (the seed's CBAM Bottleneck ResNet) and senet18
#   (the seed's SENet-18), each from three files of the same state dict: safetensors, `torch.save` zip and legacy .pth.
# - stn (the seed's STN(3, 32, 32), two outputs) and mobilevit_xxs/xs/s (the seed's MobileViT at 256×256) from
#   safetensors, zip and legacy .pth; each MobileViT also from today's vit-pytorch layout (Mappings/mobilevit.vit-pytorch.yaml).
# - resnet50_cbam_merge: torchvision resnet50 weights (zip .pth) merged onto CBAM-ResNet-50 as the seed does, plus the
#   attention weights as a second file, with --policy merge.
# - annotated_transformer (vocab 8000, and the seed's toy), d2l_vit, sepvit_lite (issue 9; see SEQ_MODELS below).
#
# Needs a Python with torch, torchvision and safetensors (PYTHON, default /work/venv/bin/python); several GB in DIR.
# Usage: Tools/full_parity.sh [DIR]      (default /tmp/weights-full-parity)
#        MODELS="resnet50 resnet50_cbam_merge senet18" Tools/full_parity.sh DIR     (a subset)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/weights-full-parity}
PYTHON=${PYTHON:-/work/venv/bin/python}
MODELS=${MODELS:-"resnet18 resnet18_cbam vit_base_patch16_224_in21k resnet50 resnet50_cbam resnet50_cbam_merge senet18 resnet101 resnet101_cbam resnet152 resnet152_cbam stn mobilevit_xxs mobilevit_xs mobilevit_s"}

bash Tools/setup.sh
swift build -c release --static-swift-stdlib --product weights >/dev/null   # as `make release`
W=.build/release/weights
mkdir -p "$DIR"

missing=()
for m in $MODELS; do [ -f "$DIR/$m.reference.safetensors" ] || missing+=("$m"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "writing the full-size parity set (${missing[*]}) into $DIR ..."
  "$PYTHON" Tools/make_model_fixtures.py --full "$DIR" --models "$(IFS=,; echo "${missing[*]}")"
fi

# The same state dict as torch.save zip and legacy files (legacy without num_batches_tracked, as torchvision's
# pre-1.0 files are).
"$PYTHON" - "$DIR" $MODELS <<'PY'
import os, sys, torch
from collections import OrderedDict
from safetensors import safe_open
from safetensors.torch import load_file
d, names = sys.argv[1], sys.argv[2:]
for n in names:
    src = f"{d}/{n}.weights.safetensors"
    if n == "resnet50_cbam_merge" or not os.path.exists(src):
        continue
    with safe_open(src, "pt") as f:
        order = f.metadata()["state_dict_order"].split(",")
    sd = load_file(src)
    sd = OrderedDict((k, sd[k]) for k in order)
    if n == "vit_base_patch16_224_in21k":
        if not os.path.exists(f"{d}/jx_{n}.pth"):
            torch.save(sd, f"{d}/jx_{n}.pth")
        continue
    if not os.path.exists(f"{d}/{n}.zip.pth"):
        torch.save(sd, f"{d}/{n}.zip.pth")
    if not os.path.exists(f"{d}/{n}.legacy.pth"):
        torch.save(OrderedDict((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked")),
                   f"{d}/{n}.legacy.pth", _use_new_zipfile_serialization=False)
PY

status=0
check() {  # label, verify arguments...
  echo "== $1"; shift
  $W verify "$@" | grep -v "^  " || status=1
}
for m in $MODELS; do
  ref="$DIR/$m.reference.safetensors"
  case $m in
    resnet18|resnet18_cbam)
      check "$m (safetensors)" --model "$m" --weights "$DIR/$m.weights.safetensors" --reference "$ref" ;;
    vit_base_patch16_224_in21k)
      check "$m (safetensors)" --model "$m" --weights "$DIR/$m.weights.safetensors" --reference "$ref"
      echo "== $m from jx_$m.pth via weights convert"
      $W convert "$DIR/jx_$m.pth" --force
      check "$m (converted)" --model "$m" --weights "$DIR/jx_$m.safetensors" --reference "$ref" ;;
    resnet50_cbam_merge)
      check "resnet50_cbam: torchvision resnet50 .pth merged, attention weights as a second file" --model resnet50_cbam \
        --weights "$DIR/$m.backbone.pth" --weights "$DIR/$m.attention.safetensors" --policy merge --reference "$ref" ;;
    mobilevit_*)
      for f in weights.safetensors zip.pth legacy.pth vit-pytorch.safetensors; do
        check "$m ($f)" --model "$m" --weights "$DIR/$m.$f" --reference "$ref"
      done ;;
    *)
      for f in weights.safetensors zip.pth legacy.pth; do
        check "$m ($f)" --model "$m" --weights "$DIR/$m.$f" --reference "$ref"
      done ;;
  esac
done

# Issue 9's seed-layout models (Tools/make_seq_fixtures.py --full): torch.save'd state dicts of the seed's
# make_model (src/tgt vocab 8000, and the seed's toy 11/11 with N=2), the d2l notebook ViT, and vit-pytorch's
# SepViT-Lite (also saved as a whole module). SEQ_MODELS="" skips them.
SEQ_MODELS=${SEQ_MODELS-"annotated_transformer d2l_vit sepvit_lite"}
if [ -n "$SEQ_MODELS" ]; then
  SEQ="$DIR/seq"
  [ -f "$SEQ/sepvit_lite.module.pth" ] || { echo "writing the seed-transformer set into $SEQ ..."; "$PYTHON" Tools/make_seq_fixtures.py --full "$SEQ"; }
  for m in $SEQ_MODELS; do
    case $m in
      annotated_transformer)
        check "$m src/tgt vocab 8000 (.pth)" --model "$m" --config src_vocab=8000 --config tgt_vocab=8000 \
          --weights "$SEQ/annotated_transformer_8000.pth" --reference "$SEQ/annotated_transformer_8000.reference.safetensors"
        check "$m toy 11/11, N=2 (.pth)" --model "$m" --config src_vocab=11 --config tgt_vocab=11 --config layers=2 \
          --weights "$SEQ/annotated_transformer_toy.pth" --reference "$SEQ/annotated_transformer_toy.reference.safetensors" ;;
      sepvit_lite)
        check "$m (.pth)" --model "$m" --weights "$SEQ/$m.pth" --reference "$SEQ/$m.reference.safetensors"
        check "$m (whole module)" --model "$m" --weights "$SEQ/$m.module.pth" --reference "$SEQ/$m.reference.safetensors" ;;
      *)
        check "$m (.pth)" --model "$m" --weights "$SEQ/$m.pth" --reference "$SEQ/$m.reference.safetensors" ;;
    esac
  done
fi

[ $status -eq 0 ] && echo "full-size parity: PASS" || echo "full-size parity: FAIL"
exit $status
