#!/usr/bin/env bash
# Make the ONNX test fixtures with PyTorch: torchvision MobileNetV2 (the project's pretrained
# weights) and ResNet-18 (seeded random weights) exported to ONNX with every
# BatchNormalization kept as its own node, their PyTorch outputs, and the reference outputs of
# the PP-OCR text-direction classifier computed by onnx's reference evaluator.
#
#   bench/onnx_fixtures.sh OUT_DIR MOBILENET_V2_PTH PPOCR_CLS_ONNX
#
# The convbn-zoo ONNX tests run it by themselves (once, into $CONVBN_CACHE/onnx-fixtures) with
# the paths of the fetched assets. PyTorch comes from bench/setup_pytorch.sh (installed when
# missing); onnx is added to that environment, pinned by sha256. Nothing here is committed:
# the files are 60 MB.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1" mobilenet="$2" ppocr="$3"
cache="${CONVBN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/convbn}"
root="$cache/pytorch"
[ -x "$root/python" ] || bash "$here/setup_pytorch.sh" >&2
if ! "$root/python" -c 'import onnx' 2>/dev/null; then
    cat > "$root/onnx-requirements.txt" <<REQ
onnx==1.23.2 --hash=sha256:c03ecf6b835d136108eeaeeafbd0026fc7b3cf98661409fbc6b63d5a29361348
ml_dtypes==0.6.0 --hash=sha256:6c8e39b53e90afda8ce52859c93de4dba3e02b76d85dcf091cc469f9184c6dae
protobuf==7.36.2 --hash=sha256:bdb3a345d48db958e6ce1f18e508beb0cc981d64f24088427549c866cd039f1e
REQ
    "$root/venv/bin/pip" install --quiet --no-deps --require-hashes --only-binary=:all: \
        -r "$root/onnx-requirements.txt" >&2
fi
tmp="$(mktemp -d "${out%/}.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$root/python" "$here/onnx_fixtures.py" "$tmp" "$mobilenet" "$ppocr" >&2
# Publish whole or not at all.
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
