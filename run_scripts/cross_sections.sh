#!/usr/bin/env bash
# Weight-space cross-sections and a low-loss connector (paper Fig. 4 and v2).
#
# CPU scale (default): SmallCNN runs seed0 and seed1 on Fashion-MNIST (5 trained if
# missing), 21 x 21 grids on the test set: the independent plane (seed0's initialisation
# and both solutions) with a 10-epoch Bezier connector, the trajectory plane (seed0 at
# epoch 5 and 10, seed1) and a filter-normalised random plane around seed0.
#   bash run_scripts/cross_sections.sh
# Paper scale (GPU/TPU): DATASET=cifar10 MODEL=small_cnn bash run_scripts/cross_sections.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source run_scripts/setup.sh
DATASET=${DATASET:-fashion_mnist} MODEL=${MODEL:-small_cnn}
RUNS=${RUNS:-runs/$DATASET/$MODEL} OUT=${OUT:-results/cross_section/${DATASET}_${MODEL}}
OUT=$RUNS bash run_scripts/train_runs.sh "$DATASET" "$MODEL" 5 > /dev/null
PAIR="--runs=$RUNS/seed0,$RUNS/seed1 --split=test --grid_points=21"
python baselines/cross_section.py $PAIR --plane=independent --connect \
  --output_dir="$OUT/independent"
python baselines/cross_section.py $PAIR --plane=trajectory --output_dir="$OUT/trajectory"
python baselines/cross_section.py $PAIR --plane=random --output_dir="$OUT/random"
echo "cross_section.json and figures in $OUT/{independent,trajectory,random}"
