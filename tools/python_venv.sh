#!/usr/bin/env bash
# Makes (once) the Python environment the package's tests run in: Debian's
# python3 (3.11) with the pinned packages of tests/python/requirements.txt
# (nanobind, scikit-build-core, numpy, Pillow, pytest, Ray Data), from PyPI.
# Usage: tools/python_venv.sh VENV_DIR (tools/run_tests.sh passes
# build/venv-py). A finished venv is kept until the requirements change.
set -euo pipefail
venv=${1:?usage: tools/python_venv.sh VENV_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/install_deps.sh"   # python3-venv, python3-dev
requirements=$root/tests/python/requirements.txt

stamp="$venv/.cnx-requirements"
if [ -f "$stamp" ] && cmp -s "$stamp" "$requirements"; then
  exit 0
fi

echo "== python venv: tests/python/requirements.txt -> $venv ==" >&2
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
"$venv/bin/python" -c "import nanobind, numpy, ray; print('nanobind', nanobind.__version__, \
'numpy', numpy.__version__, 'ray', ray.__version__)" >&2
cp "$requirements" "$stamp"
