#!/usr/bin/env bash
# Sets up a fresh machine and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash run_scripts/setup.sh
python -m pytest -q tests "$@"
