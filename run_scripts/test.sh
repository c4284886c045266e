#!/usr/bin/env bash
# Sets up a fresh machine and runs the test suite (what CI runs, < 15 minutes on 2
# cores). With --fast: only the unit and oracle tests (no training, no binaries end to
# end; < 3 minutes). Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash run_scripts/setup.sh
if [ "${1:-}" = "--fast" ]; then
  shift
  set -- -m "not slow" "$@"
fi
python -m pytest -q tests "$@"
