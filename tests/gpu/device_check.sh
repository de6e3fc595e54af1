#!/usr/bin/env bash
# The one script to run on a machine with a GPU:
#
#   tests/gpu/device_check.sh RESULTS_DIR
#
# 1. prints what the machine has (GPU, driver, nvcc, cmake, python/torch,
#    the CUDA and other libraries the binaries need);
# 2. uses the build carried in carry/ (tools/make_carry.sh: binaries for
#    sm_90 plus the non-CUDA shared libraries they link), else builds for
#    sm_90 into build-device/;
# 3. runs the GPU test binaries directly (not through ctest: a carried
#    build's absolute paths are this machine's), then compute-sanitizer
#    memcheck on the quick GPU forward test, then bench/run.sh: cnx-bench
#    and bench/torch_baseline.py on the same seeded weights, compared by
#    bench/compare.py into RESULTS_DIR/bench/bench.md (docs/design.md section 8);
# 4. writes each step's log and summary.md (with bench.md) into RESULTS_DIR.
#
# Every step has a timeout and the whole script a budget (CNX_DEVICE_BUDGET
# seconds, default 300, so that a rerun fits the session's device time):
# steps that no longer fit are skipped and say so. The GPU tests run first;
# the benchmark gets what is left (at most CNX_BENCH_BUDGET, default 200 s;
# torch.compile max-autotune comes last within it). CNX_DEVICE_TESTS=0 skips
# the GPU tests (a benchmark-only call), CNX_DEVICE_BENCH=0 the benchmark.
# compute-sanitizer runs only with CNX_MEMCHECK=1 (a second, shorter call).
# The logs are also bundled into RESULTS_DIR/logs.tar.gz, since only a few
# files come back. It never changes the GPU's settings.
set -u -o pipefail

results=${1:?usage: tests/gpu/device_check.sh RESULTS_DIR}
mkdir -p "$results"
results=$(cd "$results" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
summary=$results/summary.md
budget=${CNX_DEVICE_BUDGET:-300}
start=$(date +%s)

left() { echo $((budget - ($(date +%s) - start))); }
step_env=(env) # what runs our binaries: env LD_LIBRARY_PATH=..., set below

# step NAME LIMIT COMMAND...: runs COMMAND under LIMIT seconds (less if the
# budget is short), output to RESULTS_DIR/NAME.log, a row in the summary.
step() {
  local name=$1 limit=$2
  shift 2
  local remaining
  remaining=$(left)
  if [ "$remaining" -lt 20 ]; then
    echo "== $name: skipped, ${remaining}s of the budget left"
    echo "| $name | skipped (budget) | | |" >>"$summary"
    return 0
  fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  echo "== $name (limit ${limit}s): $*"
  local t0 rc verdict last
  t0=$(date +%s)
  timeout -k 10 "$limit" "${step_env[@]}" "$@" >"$results/$name.log" 2>&1
  rc=$?
  case $rc in
    0) verdict=pass ;;
    77) verdict=skip ;;
    124 | 137) verdict=TIMEOUT ;;
    *) verdict=FAIL ;;
  esac
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed|^SKIP|ERROR SUMMARY' "$results/$name.log" | tail -n 1)
  echo "| $name | $verdict (exit $rc) | $(($(date +%s) - t0)) s | $last |" >>"$summary"
  tail -n 30 "$results/$name.log"
  return 0
}

gpu=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
{
  echo "# cnx device check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- GPU: ${gpu:-none found by nvidia-smi}"
  echo "- host: $(uname -srm), $(nproc) CPUs"
} >"$summary"

# ------------------------------------------------------------ environment
{
  echo "== nvidia-smi"
  timeout 20 nvidia-smi 2>&1
  echo "== nvcc"
  timeout 20 nvcc --version 2>&1 || timeout 20 /usr/local/cuda/bin/nvcc --version 2>&1
  echo "== cmake"
  timeout 20 cmake --version 2>&1 | head -n 1
  echo "== python / torch"
  timeout 60 python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
  echo "== compute-sanitizer"
  command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>&1
  echo "== libraries (ldconfig)"
  ldconfig -p 2>/dev/null | grep -E 'libcublas|libcudnn|libcudart|libcuda\.so|libopenblas|libjson-c|libpng|libjpeg|libgomp' 
} >"$results/environment.log" 2>&1
cat "$results/environment.log"

# cuBLASLt 13: the toolkit's, else the pip wheels' (nvidia-cublas).
cuda_lib_dirs=()
while IFS= read -r f; do
  cuda_lib_dirs+=("$(dirname "$f")")
done < <(find /usr/local/cuda /usr/local/cuda-13* -maxdepth 4 -name 'libcublasLt.so.13' 2>/dev/null | sort -u)
sites=$(timeout 60 python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
for sp in $sites /opt/torch/.venv/lib/python3*/site-packages; do
  [ -d "$sp/nvidia" ] || continue
  while IFS= read -r f; do
    cuda_lib_dirs+=("$(dirname "$f")")
  done < <(find "$sp/nvidia" -maxdepth 4 -name 'libcublasLt.so.13*' 2>/dev/null)
done
cuda_path=$(printf '%s:' "${cuda_lib_dirs[@]}" | sed 's/:$//')
echo "cuBLAS found in: ${cuda_path:-nowhere but the default loader paths}" | tee -a "$results/environment.log"
[ -x /usr/local/cuda/bin/nvcc ] && export PATH=$PATH:/usr/local/cuda/bin

# ------------------------------------------------------------------ build
# Our binaries get the library path; python and the tools keep the machine's.
if [ -f "$root/carry/bin/test_gpu_forward" ]; then
  chmod +x "$root"/carry/bin/* # in case the transfer dropped the mode
  bin=$root/carry/bin
  libpath="$root/carry/lib${cuda_path:+:$cuda_path}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  step_env=(env "LD_LIBRARY_PATH=$libpath")
  echo "- build: carried (carry/BUILD_INFO below)" >>"$summary"
  sed 's/^/    /' "$root/carry/BUILD_INFO" >>"$summary"
  cp "$root/carry/BUILD_INFO" "$results/BUILD_INFO"
  { echo "== ldd"; for b in "$bin"/*; do echo "-- $b"; LD_LIBRARY_PATH=$libpath ldd "$b"; done; } >"$results/ldd.log" 2>&1
  if grep -q 'not found' "$results/ldd.log"; then
    echo "- STOP: missing libraries: $(grep 'not found' "$results/ldd.log" | sort -u | tr '\n' ' ')" | tee -a "$summary"
    exit 1
  fi
else
  libpath="${cuda_path}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  step_env=(env "LD_LIBRARY_PATH=$libpath")
  echo "- build: built here (no carry/)" >>"$summary"
  echo >>"$summary"
  echo "| step | result | time | last line |" >>"$summary"
  echo "|---|---|---|---|" >>"$summary"
  step configure 120 cmake -S "$root" -B "$root/build-device" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCNX_CUDA=ON
  step build 300 cmake --build "$root/build-device" -j "$(nproc)"
  bin=$root/build-device/tests/gpu
fi
grep -q '^| step' "$summary" || { echo >>"$summary"; echo "| step | result | time | last line |" >>"$summary"; echo "|---|---|---|---|" >>"$summary"; }

# ------------------------------------------------------------------ tests
if [ "${CNX_DEVICE_TESTS:-1}" != 0 ]; then
  step gpu_forward 240 "$bin/test_gpu_forward"
  testdata=$root/tests/data/images
  for t in "$bin"/test_*; do
    name=$(basename "$t")
    [ -x "$t" ] || continue
    case $name in
    test_gpu_forward) continue ;;
    test_cublaslt_library) step cublaslt_library 60 "$t" loads ;; # the dlopen of the real one
    *) step "${name#test_}" 120 "$t" "$testdata" ;;
    esac
  done
else
  echo "| GPU tests | not run (CNX_DEVICE_TESTS=0) | | |" >>"$summary"
fi

sanitizer=$(command -v compute-sanitizer || true)
if [ "${CNX_MEMCHECK:-0}" = 1 ] && [ -n "$sanitizer" ] && [ -x "$bin/test_gpu_forward" ]; then
  step memcheck 150 "$sanitizer" --tool memcheck --error-exitcode 3 "$bin/test_gpu_forward" --quick
else
  echo "| memcheck | not run (CNX_MEMCHECK=1 runs it; compute-sanitizer: ${sanitizer:-absent}) | | |" >>"$summary"
fi

# -------------------------------------------------------------- benchmark
# bench/run.sh runs python (torch) with the machine's library path and gives
# cnx-bench ours through CNX_BENCH_LD_LIBRARY_PATH.
cnx_bench=""
for c in "$bin/cnx-bench" "$root/carry/bin/cnx-bench" "$root/build-device/cnx-bench"; do
  [ -x "$c" ] && cnx_bench=$c && break
done
if [ "${CNX_DEVICE_BENCH:-1}" != 0 ]; then
  bench_room=$(($(left) - 10))
  bench_budget=${CNX_BENCH_BUDGET:-200}
  [ "$bench_budget" -gt "$bench_room" ] && bench_budget=$bench_room
  step_env=(env "CNX_BENCH_LD_LIBRARY_PATH=$libpath" "CNX_BENCH_BUDGET=$bench_budget")
  step bench $((bench_budget + 8)) bash "$root/bench/run.sh" --device cuda --out "$results/bench" \
    ${cnx_bench:+--cnx-bench "$cnx_bench"}
  step_env=(env "LD_LIBRARY_PATH=$libpath")
else
  echo "| bench | not run (CNX_DEVICE_BENCH=0) | | |" >>"$summary"
fi

# ---------------------------------------------------------------- summary
{
  echo
  echo "## GPU forward vs the CPU oracle"
  echo
  echo '```'
  grep -E '^(device|note|small|atto|tiny) ' "$results/gpu_forward.log" 2>/dev/null
  grep -E '^FAIL' "$results/gpu_forward.log" 2>/dev/null | head -n 20
  echo '```'
  echo
  if [ -s "$results/bench/bench.md" ]; then
    # bench.md one heading level down, under this summary's title
    sed 's/^#/##/' "$results/bench/bench.md"
  else
    echo "## Benchmark: no bench.md (see bench.log)"
  fi
  echo
  echo "total: $(($(date +%s) - start)) s of a ${budget} s budget"
} >>"$summary"
echo
cat "$summary"
tar -czf "$results/logs.tar.gz" -C "$results" --exclude logs.tar.gz . 2>/dev/null || true
