#!/usr/bin/env bash
# The test command: builds cnx (with CUDA when nvcc is there; required in CI)
# and runs every ctest suite, then the same suites under ASan/UBSan, then the
# fuzzers briefly. GPU tests report SKIP on machines without a GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

cuda_flag=()
[ "${CI:-}" = true ] && cuda_flag=(-DCNX_CUDA=ON)   # CI must compile every .cu file

# timm and transformers for the tests against the libraries, the Python
# package's build and test tools, and a real tritonserver for the Triton
# backend's (all kept in build/).
ref_venv=$root/build/venv-ref
py_venv=$root/build/venv-py
triton_venv=$root/build/venv-triton
tools/ref_venv.sh "$ref_venv"
tools/python_venv.sh "$py_venv"
tools/python_venv.sh "$triton_venv" tests/triton/requirements.txt
export CNX_REQUIRE_VENVS=1

echo "== build (release${cuda_flag:+, CUDA required}) =="
CNX_BUILD_DIR=build tools/build.sh -DCMAKE_BUILD_TYPE=Release -DCNX_REF_VENV="$ref_venv" \
  -DCNX_PY_VENV="$py_venv" -DCNX_TRITON=ON -DCNX_TRITON_VENV="$triton_venv" "${cuda_flag[@]}"
ctest --test-dir build --output-on-failure --no-tests=error -j "$jobs"

echo "== build (ASan + UBSan) =="
CNX_BUILD_DIR=build-asan tools/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNX_SANITIZE=ON -DCNX_CUDA=OFF -DCNX_REF_VENV="$ref_venv"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure --no-tests=error -j "$jobs" -LE fuzz

echo "== fuzzers (clang, libFuzzer) =="
CC=clang CXX=clang++ CNX_BUILD_DIR=build-fuzz tools/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNX_FUZZ=ON -DCNX_CUDA=OFF -DCNX_SANITIZE=ON
ctest --test-dir build-fuzz --output-on-failure --no-tests=error -L fuzz
