#!/usr/bin/env bash
# Sets up a fresh machine, then trains five SmallCNN trajectories on Fashion-MNIST
# (offline data, the paper's recipe: 10 epochs, one checkpoint per epoch), prints
# their metrics, compares three of them in weight and function space (similarity.py)
# and samples subspaces around seed0 for the diversity-accuracy plane (subspace.py).
# Re-running resumes, or just reports finished runs from the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
bash run_scripts/setup.sh
OUT=${OUT:-runs/fashion_mnist/small_cnn}
RESULTS=${RESULTS:-results/quickstart}
for seed in 0 1 2 3 4; do
  python baselines/train.py --dataset=fashion_mnist --model=small_cnn --seed=$seed \
    --output_dir="$OUT/seed$seed" > /dev/null
done
python - "$OUT" <<'PY'
import os, sys
from uncertainty import trajectory
root = sys.argv[1]
print(f"{'run':<38}{'epochs':>7}{'val acc':>9}{'test acc':>10}{'test nll':>10}{'test n':>8}")
for name in ("seed0", "seed1", "seed2", "seed3", "seed4"):
    m = trajectory.read_metrics(os.path.join(root, name))
    print(f"{os.path.join(root, name):<38}{m['epochs']:>7}{m['validation/accuracy']:>9.4f}"
          f"{m['test/accuracy']:>10.4f}{m['test/negative_log_likelihood']:>10.4f}{m['test/num_examples']:>8}")
PY
python baselines/similarity.py --runs="$OUT/seed0,$OUT/seed1,$OUT/seed2" --split=test \
  --output_dir="$RESULTS/similarity"
python baselines/subspace.py --base_run="$OUT/seed0" --other_runs="$OUT" --preset=plane \
  --uniform_scales=random,dropout,diagonal_gaussian,low_rank_gaussian --dropout_scale=0.5 \
  --num_samples=40 --split=test --output_dir="$RESULTS/subspace"
echo "figures and JSON in $RESULTS/similarity and $RESULTS/subspace"
