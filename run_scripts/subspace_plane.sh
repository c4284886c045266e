#!/usr/bin/env bash
# The diversity-accuracy plane (paper Fig. 5) and the t-SNE with subspace samples.
#
# CPU scale (default): 5 SmallCNN runs on Fashion-MNIST (trained if missing), base seed0.
# The paper's plane scales are kept as maxima; on this network (weight norm ~10) every
# method's scale is drawn uniformly up to them, and dropout goes up to p = 0.5, so that
# every method covers the accuracies from chance to the base's (docs/subspace.md).
#   bash run_scripts/subspace_plane.sh
# Paper scale (GPU/TPU): DATASET=cifar10 MODEL=medium_cnn PAPER_SCALES=1 bash run_scripts/subspace_plane.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source run_scripts/setup.sh
DATASET=${DATASET:-fashion_mnist} MODEL=${MODEL:-small_cnn}
RUNS=${RUNS:-runs/$DATASET/$MODEL} OUT=${OUT:-results/subspace/${DATASET}_${MODEL}}
OUT=$RUNS bash run_scripts/train_runs.sh "$DATASET" "$MODEL" 5 > /dev/null
COVER="--uniform_scales=random,dropout,diagonal_gaussian,low_rank_gaussian --dropout_scale=0.5"
[ -n "${PAPER_SCALES:-}" ] && COVER=""
python baselines/subspace.py --base_run="$RUNS/seed0" --other_runs="$RUNS" --preset=plane \
  $COVER --num_samples=40 --split=test --output_dir="$OUT/plane"
python baselines/subspace.py --base_run="$RUNS/seed0" --other_runs="$RUNS" \
  --preset=ensemble --num_samples=10 --split=test --tsne --output_dir="$OUT/ensemble_scales"
echo "figures and subspace.json in $OUT/plane and $OUT/ensemble_scales"
