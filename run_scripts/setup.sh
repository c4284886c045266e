#!/usr/bin/env bash
# Installs what a fresh machine needs: Debian's Fashion-MNIST files and this package
# (with its pinned dependencies and the test extra).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q && $SUDO apt-get install -y -q dataset-fashion-mnist
fi
python -m pip install -q -e ".[test]"
