#!/usr/bin/env bash
# Trains NUM_RUNS independent runs (seeds 0..NUM_RUNS-1) of MODEL on DATASET with the
# model's recipe; extra arguments go to every train.py call. Runs land in
# ${OUT:-runs/DATASET/MODEL}/seedN and resume if interrupted.
#
#   Paper scale (GPU/TPU), e.g.:
#     bash run_scripts/train_runs.sh cifar10 medium_cnn 5 --strategy=mirrored
#     bash run_scripts/train_runs.sh cifar10 small_cnn 5
#     bash run_scripts/train_runs.sh cifar10 resnet20_v1 5 --strategy=tpu --tpu=NAME
#     bash run_scripts/train_runs.sh cifar100 resnet20_v1 5
#   CPU scale:
#     bash run_scripts/train_runs.sh fashion_mnist small_cnn 5
#     bash run_scripts/train_runs.sh mnist1d cnn1d 5
set -euo pipefail
cd "$(dirname "$0")/.."
source run_scripts/setup.sh
if [ $# -lt 3 ]; then
  echo "usage: $0 DATASET MODEL NUM_RUNS [train.py flags...]" >&2
  exit 2
fi
DATASET=$1 MODEL=$2 NUM_RUNS=$3
shift 3
OUT=${OUT:-runs/${DATASET//\//_}/$MODEL}
for seed in $(seq 0 $((NUM_RUNS - 1))); do
  python baselines/train.py --dataset="$DATASET" --model="$MODEL" --seed="$seed" \
    --output_dir="$OUT/seed$seed" "$@"
done
