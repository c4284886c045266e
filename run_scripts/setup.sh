#!/usr/bin/env bash
# Sourced by every run script (`source run_scripts/setup.sh [test]`): puts the project's
# Python environment on PATH and installs what a fresh machine needs into it.
#
# - Inside an active virtualenv or conda environment it uses that one; otherwise it
#   creates and activates `.venv/` in the repository, so the system Python is never
#   touched (PEP 668 "externally managed" systems refuse pip there) and a machine with
#   only `python3` works.
# - Debian's `dataset-fashion-mnist` through apt-get if its files are missing (with the
#   argument `test`, also Debian's `chromium` and `chromium-driver`, for the report's
#   browser test), where apt-get can run (root, or sudo without a password); elsewhere
#   one line says what to install, and set-up goes on.
# - `pip install -c constraints.txt -e ".[tf]"` (".[tf,test]" with `test`): the ranges
#   of pyproject.toml at the exact versions of constraints.txt; skipped when neither
#   file changed since the last install into this environment. TF_EXTRA=gpu installs
#   TensorFlow's CUDA build; TF_EXTRA=none keeps the machine's own TensorFlow (a Cloud
#   TPU VM's) and adds only a matching tf-keras.
set -euo pipefail
_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_fail() { echo "setup.sh: $*" >&2; exit 1; }

if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
  if [ ! -x "$_ROOT/.venv/bin/python" ]; then
    _PY=$(command -v python3 || command -v python) \
      || _fail "no python3 on PATH; install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)"
    if ! "$_PY" -m venv "$_ROOT/.venv" 2>/dev/null; then
      rm -rf "$_ROOT/.venv"
      _fail "'$_PY -m venv' failed; install the venv module (Debian: apt-get install python3-venv) or activate an environment of your own first"
    fi
  fi
  # shellcheck disable=SC1091
  source "$_ROOT/.venv/bin/activate"
fi

_say() { echo "setup.sh: $*" >&2; }
_can_apt() { command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; }; }
_apt() {  # _apt PACKAGES WHY: installs Debian packages, or says in one line what to install
  if ! _can_apt; then
    _say "$2 are missing; install $1 (Debian: apt-get install $1), then run again"
    return 0
  fi
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  _say "installing $1 with apt-get: $2"
  $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q $1 >/dev/null \
    || _fail "apt-get install $1 failed (see above); install it by hand"
}
# FASHION_MNIST_DIR: where the binaries will find the IDX files (their --fashion_mnist_dir)
[ -f "${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}/train-images-idx3-ubyte.gz" ] \
  || _apt dataset-fashion-mnist "Fashion-MNIST's files (the fmnist scale and its tests)"
if [ "${1:-}" = "test" ] && ! command -v chromedriver >/dev/null; then
  _apt "chromium chromium-driver" "Chromium and its driver (the report's browser test)"
fi

_EXTRAS="${TF_EXTRA:-tf}"
case "$_EXTRAS" in
  tf|gpu) ;;
  none) _EXTRAS="" ;;
  *) _fail "TF_EXTRA=$TF_EXTRA; choose tf (the default), gpu (CUDA) or none (the machine's own TensorFlow)" ;;
esac
[ "${1:-}" = "test" ] && _EXTRAS="${_EXTRAS:+$_EXTRAS,}test"
_STAMP="$(python -c 'import sys; print(sys.prefix)')/.uncertainty-setup"
_WANT="$(cat "$_ROOT/pyproject.toml" "$_ROOT/constraints.txt" | sha256sum | cut -d' ' -f1) $_EXTRAS $_ROOT"
if [ "$(cat "$_STAMP" 2>/dev/null)" != "$_WANT" ]; then
  _say "installing the project and its pinned dependencies into $(python -c 'import sys; print(sys.prefix)') (the first time takes a few minutes: TensorFlow is ~600 MB)"
  python -m pip install -q --upgrade pip >/dev/null
  if [ -z "${TF_EXTRA:-}" ] || [ "$TF_EXTRA" != none ]; then
    python -m pip install -q -c "$_ROOT/constraints.txt" -e "$_ROOT${_EXTRAS:+[$_EXTRAS]}" \
      || _fail "pip install failed (see above)"
  else
    _TF=$(python -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null) \
      || _fail "TF_EXTRA=none but this Python has no TensorFlow; install one (e.g. tensorflow-tpu) or leave TF_EXTRA unset"
    python -m pip install -q -e "$_ROOT${_EXTRAS:+[$_EXTRAS]}" \
      || _fail "pip install failed (see above)"
    python -m pip install -q --no-deps "tf-keras~=${_TF%.*}.0" \
      || _fail "no tf-keras matches TensorFlow $_TF"
  fi
  echo "$_WANT" > "$_STAMP"
  _say "installed"
fi
unset _ROOT _PY _STAMP _WANT _EXTRAS _TF
