#!/usr/bin/env bash
# GPU check for an NVIDIA machine: install the gpu extra, train resnet8 on CIFAR-10 on the GPU,
# print images/s and the accuracy reached, then export and benchmark with the CUDA provider.
# (TensorFlow's CUDA build must install there; on a machine with JAX and no TensorFlow, use
# bench/gpu_train.py, which trains with Keras 3 on JAX.)
#
#   bench/gpu_check.sh --data-dir DIR_WITH_cifar10.npz          (on the GPU machine, ~5-8 min)
#   bench/gpu_check.sh --dry-run                                 (anywhere: tiny, CPU is fine)
#
# --dry-run skips the install, uses the current environment's edgesmith, trains 1 epoch on the
# embedded digits data with --accelerator auto, and benchmarks briefly: it checks the script runs
# end to end and that a missing GPU or CUDA provider is reported, not hidden. Both modes augment in
# the training step (--augment-on device: on the GPU there, on the CPU in the dry run), so the dry
# run exercises the path the GPU run takes; the manifest's input_pipeline says where it ran.
set -euo pipefail

dry_run=0
data_dir=""
epochs=20
out="${TMPDIR:-/tmp}/edgesmith-gpu-check"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --data-dir) data_dir="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

here="$(cd "$(dirname "$0")/.." && pwd)"
rm -rf "$out" "$out".partial "$out"/train.partial
mkdir -p "$out"

if [ "$dry_run" = 1 ]; then
  edgesmith="${EDGESMITH:-edgesmith}"
  data="digits"
  train_flags=(--epochs 1 --accelerator auto --augment-on device)
  bench_flags=(--min-runs 50 --min-seconds 0.2)
  provider=auto   # the best present: CPU here; an explicit cuda would fail without a GPU
else
  if [ -z "$data_dir" ] || [ ! -f "$data_dir/cifar10.npz" ]; then
    echo "gpu_check: --data-dir must hold cifar10.npz (arrays x_train, y_train, x_test, y_test)" >&2
    exit 2
  fi
  python3 -m venv "$out/venv"
  "$out/venv/bin/pip" install -q -e "$here[gpu]"
  edgesmith="$out/venv/bin/edgesmith"
  export EDGESMITH_DATA_DIR="$data_dir"
  data="cifar10"
  # Large batch, mixed precision, augmentation on the GPU with batches prefetched to it: the GPU
  # recipe (the learning rate scales linearly with the batch: 0.2 x 512/128 = 0.8, after warm-up).
  train_flags=(--epochs "$epochs" --batch-size 512 --precision mixed_float16 --accelerator gpu
               --augment-on device)
  bench_flags=(--min-runs 1000 --min-seconds 10)
  provider=cuda   # fails, rather than running on the CPU, if the CUDA provider cannot serve
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
fi

start=$(date +%s)
"$edgesmith" train --data "$data" --model resnet8 "${train_flags[@]}" --out "$out/train"
echo "training wall time: $(( $(date +%s) - start )) s"
"$edgesmith" info "$out/train" | grep -E "accuracy|training|device" || true
"$edgesmith" info --json "$out/train" | grep -A6 '"input_pipeline"' || true
"$edgesmith" export --from "$out/train" --format onnx,tflite-int8 --out "$out/export"
"$edgesmith" bench "$out/export/onnx" --data "$data" --provider "$provider" "${bench_flags[@]}" \
  --json-out "$out/bench-gpu.json"
"$edgesmith" bench "$out/export/onnx" "$out/export/tflite-int8" --data "$data" \
  "${bench_flags[@]}" --json-out "$out/bench-cpu.json"
echo "gpu_check: done; results in $out"
