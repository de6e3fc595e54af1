#!/usr/bin/env bash
# Installs what building and testing cnx needs, from Debian's packages.
# The CUDA toolkit (nvcc, cuBLAS, cuDNN) is expected at /usr/local/cuda or on
# PATH; without it cnx builds CPU-only.
set -euo pipefail

packages=(
  cmake ninja-build pkg-config gcc g++ clang libclang-rt-14-dev
  libopenblas-dev libopenblas-openmp-dev libjson-c-dev libpng-dev libjpeg62-turbo-dev
  python3-numpy python3-pil python3-torch python3-torchvision python3-venv python3-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
