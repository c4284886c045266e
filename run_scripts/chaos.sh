#!/usr/bin/env bash
# The study killed N times at random moments, then compared with an uninterrupted one:
#   bash run_scripts/chaos.sh [SCALE] [N] [extra run_scripts/chaos.py flags]
# (default: tiny, 20 kills; writes /tmp/chaos-SCALE/chaos.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-tiny}"
kills="${2:-20}"
shift $(( $# < 2 ? $# : 2 ))
source run_scripts/setup.sh
python run_scripts/chaos.py --scale="$scale" --kills="$kills" \
  --work_dir="/tmp/chaos-$scale" "$@"
