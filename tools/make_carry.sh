#!/usr/bin/env bash
# Builds cnx here for sm_90 (H100/H200) into build-device/ and gathers into
# carry/ what a GPU machine needs to run the GPU tests without building:
#   carry/bin/   the GPU test binaries (tests/gpu/test_*), cnx-bench (for
#                bench/run.sh), and the cnx command (with libcnx beside it in lib/);
#   carry/lib/   the shared libraries they link that are neither CUDA's nor
#                the base system's (OpenBLAS and its Fortran runtime, OpenMP,
#                json-c, libpng, libjpeg, ...);
#   carry/BUILD_INFO  what was built, from which commit, with which nvcc.
# Run it, then name the folder in the device call: carry: ["carry"]. The
# test images travel with the working tree (tests/data/images).
# CUDA's own libraries stay behind: cudart is linked statically, and cuBLAS,
# cuBLASLt and the driver come from the GPU machine (tests/gpu/device_check.sh
# finds them). Base system libraries (libc, libm, libstdc++, libgcc_s, ...)
# (libz too) stay behind as well: the GPU machine's are newer. carry/ must stay under
# 64 MiB (the device machine's limit on what travels).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-device
carry=$root/carry
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DCNX_CUDA=ON >/dev/null
targets=(test_gpu_forward cnx_bench cnx_cli)
# Other GPU tests, whatever tests/gpu/CMakeLists.txt defines today.
for t in $(ninja -C "$build" -t targets all 2>/dev/null |
           sed -n 's@^tests/gpu/\(test_[A-Za-z0-9_]*\): [A-Z_]*EXECUTABLE_LINKER.*@\1@p' | sort -u); do
  case " ${targets[*]} " in *" $t "*) ;; *) targets+=("$t") ;; esac
done
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

rm -rf "$carry"
mkdir -p "$carry/bin" "$carry/lib"
binaries=("$build/cnx" "$build/cnx-bench")
for f in "$build"/tests/gpu/test_*; do
  [ -f "$f" ] && [ -x "$f" ] && binaries+=("$f")
done
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libmvec|libpthread|libdl\.so|librt\.so|libutil|libresolv|libz\.so|libstdc\+\+|libgcc_s|libcuda\.so|libcublas|libcublasLt|libcudart|libcudnn|libnvrtc|libnvJitLink|libcufft|libcurand|libcusparse|libcusolver)'
for bin in "${binaries[@]}"; do
  cp "$bin" "$carry/bin/"
  strip --strip-unneeded "$carry/bin/$(basename "$bin")" 2>/dev/null || true
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    if [[ "$name" =~ $skip ]]; then continue; fi
    if [ "$path" = "not" ]; then
      echo "make_carry: $(basename "$bin") needs $name, which is not found here" >&2
      exit 1
    fi
    [ -e "$carry/lib/$name" ] || cp -L "$path" "$carry/lib/$name"
  done < <(ldd "$bin")
done
for lib in "$carry"/lib/*; do
  chmod u+w "$lib"
  strip --strip-unneeded "$lib" 2>/dev/null || true
done
{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "commit: $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -n 1 || "$CUDACXX" --version | tail -n 1)"
  echo "cmake: -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCNX_CUDA=ON"
  echo "binaries: $(cd "$carry/bin" && ls | tr '\n' ' ')"
  echo "libraries: $(cd "$carry/lib" && ls | tr '\n' ' ')"
} > "$carry/BUILD_INFO"
size=$(du -sb "$carry" | cut -f1)
echo "carry/: $((size / 1048576)) MiB"
cat "$carry/BUILD_INFO"
if [ "$size" -gt $((64 * 1048576)) ]; then
  echo "make_carry: carry/ is over 64 MiB" >&2
  exit 1
fi
