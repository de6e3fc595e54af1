#!/usr/bin/env bash
# Configures and builds cnx into build/ (or $CNX_BUILD_DIR). Extra arguments
# go to cmake, e.g. tools/build.sh -DCNX_CUDA=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${CNX_BUILD_DIR:-$root/build}

"$root/tools/install_deps.sh"
cmake -S "$root" -B "$build_dir" -G Ninja "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
