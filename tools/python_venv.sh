#!/usr/bin/env bash
# Makes (once) a Python environment for tests: Debian's python3 (3.11) with
# the pinned packages of a requirements file, from PyPI. The default,
# tests/python/requirements.txt, is the package's (nanobind,
# scikit-build-core, numpy, Pillow, pytest, Ray Data); tests/triton/
# requirements.txt is the Triton backend's (tritonserver, tritonclient).
# Usage: tools/python_venv.sh VENV_DIR [REQUIREMENTS] (tools/run_tests.sh
# makes build/venv-py and build/venv-triton). A finished venv is kept until
# its requirements change.
set -euo pipefail
venv=${1:?usage: tools/python_venv.sh VENV_DIR [REQUIREMENTS]}
root=$(cd "$(dirname "$0")/.." && pwd)
requirements=$(realpath "${2:-$root/tests/python/requirements.txt}")
"$root/tools/install_deps.sh"   # python3-venv, python3-dev

stamp="$venv/.cnx-requirements"
if [ -f "$stamp" ] && cmp -s "$stamp" "$requirements"; then
  exit 0
fi

echo "== python venv: ${requirements#$root/} -> $venv ==" >&2
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
"$venv/bin/pip" list --format=freeze --disable-pip-version-check 2>/dev/null | wc -l |
  xargs -I{} echo "python venv: {} packages in $venv" >&2
cp "$requirements" "$stamp"
