#!/usr/bin/env bash
# The whole study at one scale, then its report (report/index.html and report.md):
#
#   bash run_scripts/reproduce.sh [SCALE] [reproduce.py flags] [-- flags for every binary]
#
# SCALE (default fmnist): quickstart, mnist1d, fmnist, or the paper's
# cifar10_small_cnn, cifar10_medium_cnn, cifar10_resnet20 (GPU/TPU and CIFAR-10 data:
# add e.g. `-- --strategy=mirrored` or `-- --strategy=tpu --tpu=NAME --data_dir=gs://...`);
# tiny is the smoke test (`--list_stages` prints a scale's commands). The study goes to results/SCALE (--output_dir=... elsewhere).
# Re-running skips finished stages.
set -euo pipefail
cd "$(dirname "$0")/.."
source run_scripts/setup.sh
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then set -- --scale="$1" "${@:2}"; fi
exec python baselines/reproduce.py "$@"
