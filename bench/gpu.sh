#!/usr/bin/env bash
# The GPU run, as one script: build with the CUDA feature, run the GPU test suites on the GPU,
# run the bench grid there, and write docs/performance-gpu.md (the figures, the GPU, the
# driver, the commit and how long each part took).
#
#   bench/gpu.sh                      # CUDA device 0 (needs an NVIDIA GPU and its driver)
#   DEVICE=cuda:1 bench/gpu.sh        # another GPU
#   DEVICE=wgpu FEATURES=wgpu bench/gpu.sh      # the same on burn's wgpu backend
#   DEVICE=wgpu:cpu FEATURES=wgpu QUICK=1 OUT=/tmp/gpu.md bench/gpu.sh   # a dry run, no GPU
#
# On one modern GPU the tests and the grid take a few minutes; the first build of the CUDA
# stack takes longer on few cores (it is not counted in the 10-minute budget of a warm run:
# build once, then run). Assets must be cached or fetchable (`convbn fetch all`).
set -euo pipefail
cd "$(dirname "$0")/.."

device="${DEVICE:-cuda:0}"
features="${FEATURES:-cuda}"
out="${OUT:-docs/performance-gpu.md}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/convbn/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export CONVBN_TEST_GPU="$device"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -n "${QUICK:-}" ]; then
    models="mobilenet_v2"; batches="8"; sizes="64"; steps=2
else
    models="resnet50,mobilenet_v2,vgg16_bn,resnext50_32x4d,regnet_x_400mf,efficientnet_lite0"
    batches="8,32"; sizes="224"; steps=5
fi

t0=$(date +%s)
echo "== build (features: $features)"
cargo build --release --locked --bin convbn --features "convbn-cli/$features"
# The GPU suites are compiled with the wgpu feature (they also run on CUDA via CONVBN_TEST_GPU).
test_features="convbn-cli/$features"
[ "$features" = wgpu ] || test_features="$test_features,convbn-cli/wgpu"
cargo test --release --locked --workspace --features "$test_features" --no-run
t1=$(date +%s)

echo "== GPU test suites on $device"
cargo test --release --locked --workspace --features "$test_features" \
    --test wgpu --test wgpu_memory -- --nocapture > "$work/tests.txt" 2>&1 || true
cat "$work/tests.txt"
t2=$(date +%s)

echo "== bench grid on $device"
"$CARGO_TARGET_DIR/release/convbn" bench --device "$device" --models "$models" \
    --modes eval,tune,deploy --batch "$batches" --size "$sizes" --steps "$steps" \
    --out "$work/bench" --format table | tee "$work/bench.md"
t3=$(date +%s)

# burn's Learner: two workers on the device (multi-device strategy), and DDP on CUDA.
: > "$work/learner.txt"
if [ -z "${QUICK:-}" ]; then
    learner_run() {
        "$CARGO_TARGET_DIR/release/convbn" finetune --mode tune --size 64 --batch-size 32 \
            --train-limit 3200 --test-limit 1000 --lr 0.002 --schedule constant \
            --out "$work/learner-$1" --format json "${@:2}" 2>/dev/null \
            | tr -d '\n' | sed 's/$/\n/' >> "$work/learner.txt" || echo "$1: failed" >> "$work/learner.txt"
    }
    echo "== burn's Learner on $device"
    learner_run multi --devices "$device,$device"
    [[ "$device" == cuda* ]] && learner_run ddp --devices "$device" --ddp
fi
t4=$(date +%s)

gpu="$device"
if command -v nvidia-smi >/dev/null && [[ "$device" == cuda* ]]; then
    gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
fi
count() { grep -o "[0-9]* $1" "$work/tests.txt" | awk '{n += $1} END {print n + 0}'; }
passed=$(count passed)
failed=$(count failed)
[ "$passed" -gt 0 ] || failed="${failed} (no test ran)"
tmp="$out.tmp.$$"
{
    echo "# Performance on a GPU"
    echo
    echo "Written by \`bench/gpu.sh\` (DEVICE=$device, FEATURES=$features${QUICK:+, QUICK=1})"
    echo "on $(date -u +%Y-%m-%d) from commit $(git rev-parse --short HEAD)."
    echo
    echo "- Device: $gpu; host: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)."
    echo "- Build $((t1 - t0)) s, GPU test suites $((t2 - t1)) s ($passed passed, $failed failed),"
    echo "  bench grid $((t3 - t2)) s, Learner runs $((t4 - t3)) s."
    echo "- Memory is the device's own (cubecl's pool: bytes in use after forward, before"
    echo "  backward, beyond those in use before it); times are medians of $steps steps."
    echo
    echo "## Bench grid"
    echo
    cat "$work/bench.md"
    echo
    if [ -s "$work/learner.txt" ]; then
        echo "## burn's Learner (MobileNetV2, Tune, 3,200 Fashion-MNIST images at 64x64, batch 32)"
        echo
        echo '```json'
        cat "$work/learner.txt"
        echo '```'
        echo
    fi
    echo "## GPU test suites"
    echo
    echo '```text'
    grep -E '(^test |wgpu |image [01]:|per-iteration|^iteration|test result)' "$work/tests.txt" || true
    echo '```'
} > "$tmp"
mv "$tmp" "$out"
echo "wrote $out"
[ "$failed" = 0 ]
