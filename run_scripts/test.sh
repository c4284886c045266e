#!/usr/bin/env bash
# Sets up a fresh machine (with Chromium for the report's browser test) and runs the
# test suite on two pytest-xdist workers (what CI runs: 9-23 minutes on 2 cores, with
# the machine's speed, see docs/testing.md). With --fast: only the unit and oracle tests (no training, no
# binaries end to end; < 3 minutes). Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source run_scripts/setup.sh test
if [ "${1:-}" = "--fast" ]; then
  shift
  set -- -m "not slow" "$@"
fi
# two workers (one per core); idle ones take tests from busy ones, so the long tests
# (the ResNet-50 pipeline, the tiny study) run beside the rest; the 25 slowest are listed
python -m pytest -q tests -n 2 --dist worksteal --durations=25 "$@"
