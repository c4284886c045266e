#!/usr/bin/env bash
# A whole study at paper scale, for accelerators: trains NUM_RUNS independent runs
# (default 5, the paper's; every epoch checkpointed), then runs every analysis on them:
#   similarity.py     weight cosine, disagreement, JS divergence, t-SNE (3 trajectories)
#   subspace.py       the diversity-accuracy plane around seed0 (the paper's scales),
#                     and the ensemble-preset samples around every run
#   ensemble.py       ensembles of runs and of subspace samples on the clean test set
#                     and every corrupted one (CIFAR-10-C / ImageNet-C; CIFAR-100 has no
#                     corrupted set in TFDS), with --compare_published
#   cross_section.py  the independent plane with a Bezier connector (not for ImageNet:
#                     it trains on one device), and the trajectory plane of seed0 and seed1
#
#   [STRATEGY=mirrored|multi_worker|tpu] [TPU=name] [NUM_RUNS=5] [DATA_DIR=..]
#   [MANUAL_DIR=..] [RUNS=..] [RESULTS=..] bash run_scripts/paper_scale.sh STUDY [train.py flags]
#
# STUDY       model on data (recipe: uncertainty/train/recipes.py) steps per run
# cifar10_small_cnn       SmallCNN, 10 epochs x 386 steps of 128            3,860
# cifar10_medium_cnn      MediumCNN, 40 epochs x 386 of 128                15,440
# cifar10_resnet20_v1     ResNet20v1, 200 epochs x 386 of 128              77,200
# cifar100_resnet20_v1    ResNet20v1 on CIFAR-100, as above                77,200
# imagenet2012_resnet50   ResNet-50, 90 epochs x 1,250 of 1,024           112,500
# mnist1d_cnn1d           (CPU check of this script) 30 x 27 of 128           810
# (steps per epoch: floor((training examples - 500 validation) / global batch)).
#
# Plan first: DRY_RUN=1 trains STEPS (default 100) steps twice under the same strategy
# (the first pass compiles), writes nothing, and prints the config it would train with
# (the global batch and the learning rate that follows it), the device line, the
# measured throughput and the study's training time at that rate:
#   DRY_RUN=1 STRATEGY=tpu TPU=my-tpu MANUAL_DIR=/data/imagenet \
#     bash run_scripts/paper_scale.sh imagenet2012_resnet50
# Data: CIFAR and SVHN download through TFDS (or DATA_DIR holds prepared copies, or
# MANUAL_DIR the official archives); ImageNet needs ILSVRC2012_img_{train,val}.tar in
# MANUAL_DIR (ImageNet-C is built from the validation archive plus TFDS's frost images,
# downloaded once). With STRATEGY=multi_worker run this script on every worker with its
# TF_CONFIG: all of them train; the chief (task 0) then runs the analyses, mirrored
# over its own accelerators. Re-running resumes training and reuses every cached
# prediction. PRINT_ONLY=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."
source run_scripts/setup.sh
if [ $# -lt 1 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
STUDY=$1
shift
case "$STUDY" in
  cifar10_small_cnn) DATASET=cifar10 MODEL=small_cnn CORRUPTIONS=all ;;
  cifar10_medium_cnn) DATASET=cifar10 MODEL=medium_cnn CORRUPTIONS=all ;;
  cifar10_resnet20_v1) DATASET=cifar10 MODEL=resnet20_v1 CORRUPTIONS=all ;;
  cifar100_resnet20_v1) DATASET=cifar100 MODEL=resnet20_v1 CORRUPTIONS=none ;;
  imagenet2012_resnet50) DATASET=imagenet2012 MODEL=resnet50 CORRUPTIONS=all ;;
  mnist1d_cnn1d) DATASET=mnist1d MODEL=cnn1d CORRUPTIONS=all ;;
  *) echo "$0: unknown study '$STUDY'; choose cifar10_small_cnn, cifar10_medium_cnn," \
       "cifar10_resnet20_v1, cifar100_resnet20_v1, imagenet2012_resnet50 or mnist1d_cnn1d" >&2
     exit 2 ;;
esac
STRATEGY=${STRATEGY:-mirrored} NUM_RUNS=${NUM_RUNS:-5}
RUNS=${RUNS:-runs/$DATASET/$MODEL} RESULTS=${RESULTS:-results/paper_scale/$STUDY}
DATA=()
[ -n "${DATA_DIR:-}" ] && DATA+=("--data_dir=$DATA_DIR")
[ -n "${MANUAL_DIR:-}" ] && DATA+=("--manual_dir=$MANUAL_DIR")
TRAIN=("--strategy=$STRATEGY")
[ -n "${TPU:-}" ] && TRAIN+=("--tpu=$TPU")
# The analyses run on one host: the TPU, or this machine's accelerators.
ANALYSE=("--strategy=$([ "$STRATEGY" = tpu ] && echo tpu || echo mirrored)")
[ "$STRATEGY" = tpu ] && [ -n "${TPU:-}" ] && ANALYSE+=("--tpu=$TPU")
# ImageNet: scoring the whole training split after each run is a pass over 1.28M images.
[ "$DATASET" = imagenet2012 ] && TRAIN+=("--noeval_train_split")

run() {
  if [ -n "${PRINT_ONLY:-}" ]; then printf '%q ' "$@"; echo; else "$@"; fi
}

if [ -n "${DRY_RUN:-}" ]; then
  REPORT=$(python baselines/train.py --dataset="$DATASET" --model="$MODEL" \
    --steps="${STEPS:-100}" "${TRAIN[@]}" "${DATA[@]}" "$@")  # its error line ends the script
  echo "$REPORT" | NUM_RUNS=$NUM_RUNS python -c '
import json, os, sys
r, runs = json.load(sys.stdin), int(os.environ["NUM_RUNS"])
def duration(hours):
    return (f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min" if hours >= 1 / 60
            else f"{hours * 3600:.0f} s")
print(json.dumps(r, indent=2, sort_keys=True))
c = r["config"]
print(r["devices"]["line"])
print("learning rate {learning_rate:g} at a global batch of {batch_size} (base "
      "{base_learning_rate:g} per {reference_batch_size} images)".format(**c))
print("{dataset} {model}: {runs} runs x {train_epochs} epochs x {steps_per_epoch} steps "
      "of {batch_size} = {all:,} steps; at the measured {steps_per_second:.2f} steps/s "
      "(replicas: {replicas}) about {eta} of training ({per_run} a run), plus "
      "per-epoch validation, checkpoints and the analyses".format(
          runs=runs, all=runs * r["total_steps"], eta=duration(runs * r["train_hours"]),
          per_run=duration(r["train_hours"]), **r))'
  exit
fi

for seed in $(seq 0 $((NUM_RUNS - 1))); do
  run python baselines/train.py --dataset="$DATASET" --model="$MODEL" --seed="$seed" \
    --output_dir="$RUNS/seed$seed" "${TRAIN[@]}" "${DATA[@]}" "$@"
done
is_chief() {  # TF_CONFIG's chief, or worker 0 of a cluster without one
  python -c 'import json, os, sys
c = json.loads(os.environ.get("TF_CONFIG") or "{}")
t = c.get("task", {})
sys.exit(0 if t.get("type") == "chief" or
         "chief" not in c.get("cluster", {}) and t.get("index", 0) == 0 else 1)'
}
if [ "$STRATEGY" = multi_worker ] && ! is_chief; then
  echo "trained; the chief runs the analyses"
  exit 0
fi

COMMON=("${ANALYSE[@]}" "${DATA[@]}")
run python baselines/similarity.py --runs="$RUNS" --split=test "${COMMON[@]}" \
  --output_dir="$RESULTS/similarity"
run python baselines/subspace.py --base_run="$RUNS/seed0" --other_runs="$RUNS" \
  --preset=plane --num_samples=40 --split=test "${COMMON[@]}" --output_dir="$RESULTS/plane"
for seed in $(seq 0 $((NUM_RUNS - 1))); do
  run python baselines/subspace.py --base_run="$RUNS/seed$seed" --preset=ensemble \
    --num_samples=10 "${COMMON[@]}" --output_dir="$RESULTS/subspace/seed$seed"
done
run python baselines/ensemble.py --runs="$RUNS" --subspace_dir="$RESULTS/subspace" \
  --corruptions="$CORRUPTIONS" --compare_published "${COMMON[@]}" \
  --output_dir="$RESULTS/ensemble"
PAIR=("--runs=$RUNS/seed0,$RUNS/seed1" --split=test "${COMMON[@]}")
# The Bezier connector trains on one device: not at ImageNet scale.
CONNECT=$([ "$DATASET" = imagenet2012 ] && echo --noconnect || echo --connect)
run python baselines/cross_section.py "${PAIR[@]}" --plane=independent "$CONNECT" \
  --output_dir="$RESULTS/cross_section/independent"
run python baselines/cross_section.py "${PAIR[@]}" --plane=trajectory \
  --output_dir="$RESULTS/cross_section/trajectory"
if [ -z "${PRINT_ONLY:-}" ]; then
  echo "results in $RESULTS: similarity, plane, subspace, ensemble (table.txt," \
    "published.txt), cross_section"
fi
