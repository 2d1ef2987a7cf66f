#!/usr/bin/env bash
# Train the CIFAR-10 files of cifar10-best.yaml on one GPU machine (Keras 3 on JAX, no TensorFlow)
# in one sitting, and pack each finished artifact as soon as it is done:
#
#   1. ResNet-8 time to 85% twice, 30 epochs each: with an empty JAX compilation cache, then with
#      the cache the first run filled (what a second training on the same machine pays);
#   2. the recipe's ResNet-20 teacher;
#   3. its three students side by side on the one GPU: the dense ResNet-8 at seeds 0 and 1 and the
#      thin ResNet-8 (the recipe's widths).
#
#   bench/gpu_zoo.sh --data npz:/tmp/cifar10.npz --work /tmp/zoo --pack-to "$OUT"
#   bench/gpu_zoo.sh --dry-run --work /tmp/zoo-dry --pack-to /tmp/zoo-dry/packed   (anywhere)
#
# --pack-to receives main.tar.gz, teacher.tar.gz and one .tar.gz per student (each artifact with
# its gpu_train.py JSON) plus log.txt: six files, so that a run stopped at a time limit still
# hands back every artifact that finished. --dry-run trains on the embedded digits for 1-2 epochs
# (CPU is fine): it checks the whole sequence before device time is spent on it.
set -euo pipefail

data=""
work="${TMPDIR:-/tmp}/edgesmith-gpu-zoo"
pack_to=""
dry=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift ;;
    --work) work="$2"; shift ;;
    --pack-to) pack_to="$2"; shift ;;
    --dry-run) dry=(--dry-run) ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu_zoo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$pack_to" ]; then
  echo "gpu_zoo: --pack-to DIR is required (where the packed artifacts go)" >&2
  exit 2
fi
if [ ${#dry[@]} -eq 0 ] && [ -z "$data" ]; then
  echo "gpu_zoo: --data SPEC is required (e.g. npz:/tmp/cifar10.npz), or --dry-run" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")/.." && pwd)"
recipe="$here/src/edgesmith/recipes/train/cifar10-best.yaml"
runs="$work/runs"
mkdir -p "$runs" "$pack_to"
log="$pack_to/log.txt"
data_flags=()
[ -n "$data" ] && data_flags=(--data "$data")
export PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR="$work/jax-cache"

train() {  # gpu_train.py with this run's data; every line also goes to the log
  python3 "$here/bench/gpu_train.py" "${data_flags[@]}" "${dry[@]}" "$@" 2>&1 | tee -a "$log"
}

pack() {  # pack NAME FOLDER...: FOLDERs (relative to $work) into $pack_to/NAME.tar.gz
  local name="$1"; shift
  tar -czf "$pack_to/$name.tar.gz.partial" -C "$work" "$@"
  mv "$pack_to/$name.tar.gz.partial" "$pack_to/$name.tar.gz"
  echo "gpu_zoo: packed $name ($(du -h "$pack_to/$name.tar.gz" | cut -f1))" | tee -a "$log"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$log" || true
start=$(date +%s)
rm -rf "$work/jax-cache" "$work/cold" "$work/warm"  # the first run must find the cache empty
echo "== main ResNet-8, empty compilation cache" | tee -a "$log"
train --epochs 30 --out "$work/cold" --json-out "$work/cold/main.json"
echo "== main ResNet-8, warm compilation cache" | tee -a "$log"
train --epochs 30 --out "$work/warm" --json-out "$work/warm/main.json"
pack main cold warm

echo "== teacher" | tee -a "$log"
train --skip-main --out "$runs" --also "$recipe" --only teacher-resnet20 \
  --json-out "$runs/teacher.json"
pack teacher runs/teacher.json runs/cifar10-best/teacher-resnet20

echo "== three students side by side" | tee -a "$log"
pids=()
for student in resnet8-kd-seed0 resnet8-kd-seed1 resnet8-thin-kd-seed0; do
  (
    # each JAX process would take 75% of the GPU's memory up front; three share it in quarters
    export XLA_PYTHON_CLIENT_MEM_FRACTION=0.25
    train --skip-main --out "$runs" --also "$recipe" --only "$student" \
      --json-out "$runs/$student.json" > /dev/null
    pack "$student" "runs/$student.json" "runs/cifar10-best/$student"
  ) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "gpu_zoo: done in $(( $(date +%s) - start )) s (status $status)" | tee -a "$log"
exit $status
