#!/usr/bin/env bash
# The Bayesian baselines beside deep ensembles: trains five deterministic and five
# variational (TFP Flipout) runs of the dataset's model, then
#   similarity.py  on the variational trajectories (their posterior means);
#   subspace.py    the diversity-accuracy plane around deterministic seed0 with the
#                  paper's samplers and MC dropout, and around variational seed0 with
#                  the paper's samplers and posterior draws (JS divergences in the
#                  summaries);
#   ensemble.py    deterministic runs with MC dropout, and the variational runs (each
#                  run's posterior predictive), on the clean and every corrupted test
#                  set: table.txt, shift figures, published.txt.
# Re-running resumes training and reuses every cached prediction.
#   [NUM_POSTERIOR_SAMPLES=10] bash run_scripts/bayesian_baselines.sh [fashion_mnist|mnist1d]
set -euo pipefail
cd "$(dirname "$0")/.."
source run_scripts/setup.sh
DATASET=${1:-fashion_mnist}
case "$DATASET" in
  fashion_mnist) MODEL=small_cnn ;;
  mnist1d) MODEL=cnn1d ;;
  *) echo "usage: $0 [fashion_mnist|mnist1d]" >&2; exit 2 ;;
esac
RUNS=${RUNS:-runs/$DATASET}
RESULTS=${RESULTS:-results/bayesian/$DATASET}
DET=$RUNS/$MODEL
VI=$RUNS/${MODEL}_variational
for seed in 0 1 2 3 4; do
  python baselines/train.py --dataset="$DATASET" --model=$MODEL --seed=$seed \
    --output_dir="$DET/seed$seed" > /dev/null
  python baselines/train.py --dataset="$DATASET" --model=$MODEL --method=variational \
    --seed=$seed --output_dir="$VI/seed$seed" > /dev/null
done
python baselines/similarity.py --runs="$VI" --output_dir="$RESULTS/similarity_variational"
PAPER=random,dropout,diagonal_gaussian,low_rank_gaussian
PLANE="--preset=plane --uniform_scales=$PAPER --dropout_scale=0.5 --num_samples=40"
python baselines/subspace.py --base_run="$DET/seed0" --other_runs="$DET" \
  --methods=$PAPER,mc_dropout $PLANE --output_dir="$RESULTS/plane_deterministic"
python baselines/subspace.py --base_run="$VI/seed0" --other_runs="$VI" \
  --methods=$PAPER,variational $PLANE --output_dir="$RESULTS/plane_variational"
# posterior draws of each variational run, MC-dropout passes of each deterministic one
SAMPLES="--num_posterior_samples=${NUM_POSTERIOR_SAMPLES:-10}"
python baselines/ensemble.py --runs="$DET" --methods=mc_dropout $SAMPLES --corruptions=all \
  --compare_published --output_dir="$RESULTS/ensemble_deterministic" > /dev/null
python baselines/ensemble.py --runs="$VI" $SAMPLES --corruptions=all --compare_published \
  --output_dir="$RESULTS/ensemble_variational" > /dev/null
for kind in deterministic variational; do
  echo "== $kind runs ($MODEL on $DATASET): $RESULTS/ensemble_$kind/table.txt"
  cat "$RESULTS/ensemble_$kind/table.txt"
done
