#!/usr/bin/env bash
# Sets up a fresh machine (run_scripts/setup.sh), then runs the whole study at the
# quickstart scale: 3 CNN-1D runs on MNIST-1D (generated offline) with the full recipe,
# every analysis at its smallest useful size, and the report. Ends by printing where
# the report is (results/quickstart/report/index.html). Re-running skips finished work.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash run_scripts/reproduce.sh quickstart "$@"
