#!/usr/bin/env bash
# Sourced by every run script (`source run_scripts/setup.sh [test]`): puts the project's
# Python environment on PATH and installs what a fresh machine needs into it.
#
# - Inside an active virtualenv or conda environment it uses that one; otherwise it
#   creates and activates `.venv/` in the repository, so the system Python is never
#   touched (PEP 668 "externally managed" systems refuse pip there) and a machine with
#   only `python3` works.
# - Debian's `dataset-fashion-mnist` through apt-get if its files are missing; with the
#   argument `test`, also Debian's `chromium` and `chromium-driver` (the report's
#   browser test).
# - `pip install -e ".[test]"` (pinned versions in setup.py), skipped when setup.py is
#   unchanged since the last install into this environment.
set -euo pipefail
_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_fail() { echo "setup.sh: $*" >&2; exit 1; }

if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
  if [ ! -x "$_ROOT/.venv/bin/python" ]; then
    _PY=$(command -v python3 || command -v python) \
      || _fail "no python3 on PATH; install Python 3.10-3.12 (Debian: apt-get install python3 python3-venv)"
    if ! "$_PY" -m venv "$_ROOT/.venv" 2>/dev/null; then
      rm -rf "$_ROOT/.venv"
      _fail "'$_PY -m venv' failed; install the venv module (Debian: apt-get install python3-venv) or activate an environment of your own first"
    fi
  fi
  # shellcheck disable=SC1091
  source "$_ROOT/.venv/bin/activate"
fi

_apt() {  # _apt PACKAGE: installs a Debian package (as root, or through sudo)
  command -v apt-get >/dev/null || _fail "$1 is missing and this is not a Debian/Ubuntu machine; install it by hand"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q $1 >/dev/null \
    || _fail "apt-get install $1 failed (see above); install it by hand"
}
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || _apt dataset-fashion-mnist
if [ "${1:-}" = "test" ] && ! command -v chromedriver >/dev/null; then
  _apt "chromium chromium-driver"
fi

_STAMP="$(python -c 'import sys; print(sys.prefix)')/.uncertainty-setup"
_WANT="$(cat "$_ROOT/setup.py" | sha256sum | cut -d' ' -f1) $_ROOT"
if [ "$(cat "$_STAMP" 2>/dev/null)" != "$_WANT" ]; then
  python -m pip install -qq --upgrade pip >/dev/null
  python -m pip install -qq -e "$_ROOT[test]" || _fail "pip install failed (see above)"
  echo "$_WANT" > "$_STAMP"
fi
unset _ROOT _PY _STAMP _WANT
