#!/usr/bin/env bash
# Install CPU PyTorch for `convbn bench --compare-pytorch` from PyPI, without a GPU stack.
#
# PyPI's torch wheel is built against CUDA and would pull ~3 GB of NVIDIA wheels; on a CPU
# machine none of that code runs, so this script installs torch and torchvision with
# --no-deps (pinned by sha256), their small pure-Python dependencies, and stub CUDA libraries
# (bench/cuda_stubs.py) so that the wheel loads. Result: $CONVBN_CACHE/pytorch/python, a
# wrapper that `convbn bench` finds by itself. About 1.5 GB on disk, a few minutes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CONVBN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/convbn}"
root="$cache/pytorch"
mkdir -p "$root/wheels"

cat > "$root/requirements.txt" <<REQ
torch==2.15.0 --hash=sha256:48c2d861134c0b5697c7602cb5ffa68f62a2989fdcd1717e593356f67996ca1e
torchvision==0.29.2 --hash=sha256:0875f7a23bd298813240f716c56df44ce72ddb45146589442a38edd0e1f59637
REQ

python3 -m venv "$root/venv"
"$root/venv/bin/pip" download --quiet --no-deps --require-hashes -r "$root/requirements.txt" \
    --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$root/wheels"
"$root/venv/bin/pip" install --quiet --no-deps "$root"/wheels/torch-2.15.0-*.whl \
    "$root"/wheels/torchvision-0.29.2-*.whl
"$root/venv/bin/pip" install --quiet filelock==4.3.1 fsspec==2026.9.0 Jinja2==3.1.6 \
    MarkupSafe==3.0.4 mpmath==1.3.0 networkx==3.6.1 numpy==2.4.6 pillow==13.0.0 \
    sympy==1.14.0 typing_extensions==4.16.0
rm -rf "$root/wheels"

site="$("$root/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
python3 "$here/cuda_stubs.py" "$site" "$root/cuda-stubs"

cat > "$root/python" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$root/cuda-stubs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$root/venv/bin/python" "\$@"
WRAP
chmod +x "$root/python"
"$root/python" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "threads", torch.get_num_threads(), "cuda", torch.cuda.is_available())'
echo "installed: $root/python"
