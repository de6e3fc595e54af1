#!/usr/bin/env bash
# Makes (once) the Python environment the library-reference tests run in:
# timm and Hugging Face transformers, pinned, over Debian's python3-torch
# and python3-torchvision (--system-site-packages: PyPI's torch would pull
# gigabytes of CUDA wheels). Usage: tools/ref_venv.sh VENV_DIR
# (tools/run_tests.sh passes build/venv-ref). A finished venv is kept.
set -euo pipefail
venv=${1:?usage: tools/ref_venv.sh VENV_DIR}
"$(dirname "$0")/install_deps.sh"   # python3-torch, python3-venv

# Everything --no-deps and pinned, so a new release cannot change the reference.
packages=(
  timm==1.0.31 transformers==4.44.2 huggingface-hub==0.36.2 tokenizers==0.19.1
  safetensors==0.8.0 regex==2026.12.2 filelock==4.3.2 fsspec==2026.9.0 packaging==26.4
  tqdm==4.70.1 hf-xet==1.8.0
)
stamp="$venv/.cnx-packages"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${packages[*]}" ]; then
  exit 0
fi

echo "== reference venv: ${packages[*]} -> $venv ==" >&2
rm -rf "$venv"
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "${packages[@]}"
"$venv/bin/python" -c "import timm, transformers, torch; print('timm', timm.__version__, \
'transformers', transformers.__version__, 'torch', torch.__version__)" >&2
echo "${packages[*]}" > "$stamp"
