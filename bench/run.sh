#!/usr/bin/env bash
# cnx against PyTorch on one machine, in one call (docs/design.md sections 7-8):
#
#   bench/run.sh [--quick] [--device cuda|cpu] [--cnx-bench PATH] [--out DIR]
#                [--budget SECONDS]
#
#  1. writes seeded random torchvision ConvNeXt weights (torch.manual_seed(0))
#     to a cnx safetensors file, so that both tools run the SAME weights;
#  2. writes seeded synthetic 500x375 JPEGs (bench/make_bench_images.py);
#  3. cnx-bench --json: model mode (fp32,tf32,fp16,bf16 at each batch);
#  4. torch_baseline.py: the eager modes, same batches, warm-up, iterations;
#  5. cnx-bench --json: preprocess mode (synthetic 500x375 sources), then
#     end-to-end mode on the JPEGs, then (GPU, not --quick) fp16 --no-graphs;
#  6. torch_baseline.py: compile-max-autotune (minutes of compiling: last, at
#     batch 256 only by default, with whatever the budget has left);
#  7. bench/compare.py into OUT/bench.md, which is printed.
# Each step has a timeout within the budget (--budget, $CNX_BENCH_BUDGET;
# default 200 s on the GPU, 60 s on the CPU); a step that fails does not stop
# the others. Exit status 1 if any step failed or timed out.
#
# cnx-bench: --cnx-bench, $CNX_BENCH, build/cnx-bench, build/bench/cnx-bench
# or carry/bin/cnx-bench. $CNX_BENCH_LD_LIBRARY_PATH, if set, is the
# LD_LIBRARY_PATH for cnx-bench alone (python keeps the machine's).
# Python: $CNX_PYTHON, else the first of python3, /opt/torch/.venv/bin/python3,
# /usr/bin/python3 that has torch.
# OUT: default bench/results/<date>-<gpu-slug>/. Weights and images go to a
# temporary folder ($CNX_BENCH_WORK to keep them), removed at the end.
#
# Overrides (environment): CNX_BENCH_BATCHES (1,32,256), CNX_BENCH_PRECISIONS
# (fp32,tf32,fp16,bf16), CNX_BENCH_WARMUP (10), CNX_BENCH_ITERATIONS (50),
# CNX_BENCH_DURATION (seconds per row instead of iterations), CNX_BENCH_ARCH
# (convnext_tiny), CNX_BENCH_INPUT_SIZE (224), CNX_BENCH_IMAGES (512),
# CNX_BENCH_PIPELINE_BATCH (256), CNX_BENCH_COMPILE_BATCHES (256; "none"
# skips torch.compile), CNX_BENCH_TORCH_MODES (the eager modes),
# CNX_BENCH_THREADS (CPU runs: threads of both tools; default nproc),
# CNX_BENCH_E2E_WARMUP / CNX_BENCH_E2E_ITERATIONS (2 / 10: each end-to-end
# iteration classifies every image of the folder).
# --quick: fewer batches and iterations; with --device cpu it is the CI smoke
# run (convnext_atto at 64x64, batch 1, a few iterations, well under 60 s).
set -u -o pipefail

usage() { sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
device=cuda
out=""
cnx_bench=${CNX_BENCH:-}
budget=${CNX_BENCH_BUDGET:-}
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --device) device=${2:?--device needs cuda or cpu}; shift ;;
    --device=*) device=${1#*=} ;;
    --cnx-bench) cnx_bench=${2:?--cnx-bench needs a path}; shift ;;
    --cnx-bench=*) cnx_bench=${1#*=} ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --out=*) out=${1#*=} ;;
    --budget) budget=${2:?--budget needs seconds}; shift ;;
    --budget=*) budget=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case $device in cuda | cpu) ;; *) echo "run.sh: --device must be cuda or cpu" >&2; exit 2 ;; esac

start=$(date +%s)
# ------------------------------------------------------------ settings
if [ "$device" = cuda ]; then
  d_budget=200 d_batches=1,32,256 d_precisions=fp32,tf32,fp16,bf16 d_warmup=10 d_iters=50
  d_arch=convnext_tiny d_size=224 d_images=512 d_pbatch=256 d_compile=256 d_e2e_warmup=2 d_e2e_iters=10
  d_modes=eager-fp32,eager-tf32,eager-amp-fp16-cl,eager-amp-bf16-cl
  if [ $quick = 1 ]; then d_batches=1,256 d_warmup=3 d_iters=10 d_images=128 d_e2e_iters=3; fi
else
  d_budget=60 d_batches=1,8 d_precisions=fp32 d_warmup=2 d_iters=5
  d_arch=convnext_tiny d_size=224 d_images=32 d_pbatch=8 d_compile=none d_modes=eager-fp32
  d_e2e_warmup=1 d_e2e_iters=2
  if [ $quick = 1 ]; then d_batches=1 d_warmup=2 d_iters=3 d_arch=convnext_atto d_size=64 d_images=8 d_pbatch=4; fi
fi
budget=${budget:-$d_budget}
batches=${CNX_BENCH_BATCHES:-$d_batches}
precisions=${CNX_BENCH_PRECISIONS:-$d_precisions}
warmup=${CNX_BENCH_WARMUP:-$d_warmup}
iters=${CNX_BENCH_ITERATIONS:-$d_iters}
duration=${CNX_BENCH_DURATION:-}
arch=${CNX_BENCH_ARCH:-$d_arch}
size=${CNX_BENCH_INPUT_SIZE:-$d_size}
nimages=${CNX_BENCH_IMAGES:-$d_images}
pbatch=${CNX_BENCH_PIPELINE_BATCH:-$d_pbatch}
# an end-to-end iteration classifies every image in the folder: fewer of them
e2e_warmup=${CNX_BENCH_E2E_WARMUP:-$d_e2e_warmup}
e2e_iters=${CNX_BENCH_E2E_ITERATIONS:-$d_e2e_iters}
compile_batches=${CNX_BENCH_COMPILE_BATCHES:-$d_compile}
torch_modes=${CNX_BENCH_TORCH_MODES:-$d_modes}
threads=${CNX_BENCH_THREADS:-$(nproc 2>/dev/null || echo 1)} # CPU runs: both tools
if [ -n "$duration" ]; then count=(--duration "$duration"); else count=(--iterations "$iters"); fi

# ------------------------------------------------------------ tools
py=${CNX_PYTHON:-}
if [ -z "$py" ]; then
  for p in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
    if "$p" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("torch") is None)' 2>/dev/null; then
      py=$p
      break
    fi
  done
fi
py=${py:-python3}
if [ -z "$cnx_bench" ]; then
  for c in "$root/build/cnx-bench" "$root/build/bench/cnx-bench" "$root/carry/bin/cnx-bench"; do
    [ -x "$c" ] && cnx_bench=$c && break
  done
fi
cnx_env=(env)
[ -n "${CNX_BENCH_LD_LIBRARY_PATH:-}" ] && cnx_env=(env "LD_LIBRARY_PATH=$CNX_BENCH_LD_LIBRARY_PATH")

if [ -z "$out" ]; then
  if [ "$device" = cuda ]; then
    gpu=$(timeout 20 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
  fi
  slug=$(printf '%s' "${gpu:-cpu}" | tr '[:upper:]' '[:lower:]' | sed -e 's/nvidia//' -e 's/[^a-z0-9]\{1,\}/-/g' -e 's/^-//' -e 's/-$//')
  out=$root/bench/results/$(date -u +%Y-%m-%d)-${slug:-gpu}
fi
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
if [ -n "${CNX_BENCH_WORK:-}" ]; then
  work=$CNX_BENCH_WORK
  mkdir -p "$work" || exit 2
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/cnx-bench.XXXXXX") || exit 2
  trap 'rm -rf "$work"' EXIT
fi
weights=$work/weights-$arch-seed0.safetensors
images=$work/images-500x375-$nimages

# ------------------------------------------------------------ steps
steps_md=$out/steps.md
: >"$steps_md"
notes=()
npass=0 nfail=0 nskip=0
left() { echo $((budget - ($(date +%s) - start))); }
reserve=8 # kept for compare.py

# step NAME CAP STDOUT_FILE COMMAND...: runs COMMAND within CAP seconds and
# what the budget has left; stdout to STDOUT_FILE (or the log when "-"),
# stderr to OUT/NAME.log.
step() {
  local name=$1 cap=$2 sink=$3
  shift 3
  local limit t0 rc verdict
  limit=$(($(left) - reserve))
  [ "$cap" -lt "$limit" ] && limit=$cap
  if [ "$limit" -lt 5 ]; then
    echo "== $name: skipped, budget spent" >&2
    echo "| $name | skipped (budget: $(left) s left of $budget s) | |" >>"$steps_md"
    nskip=$((nskip + 1))
    return 0
  fi
  echo "== $name (limit ${limit} s): $*" >&2
  t0=$(date +%s)
  if [ "$sink" = - ]; then
    timeout -k 5 "$limit" "$@" >"$out/$name.log" 2>&1
  else
    timeout -k 5 "$limit" "$@" >"$sink" 2>"$out/$name.log"
  fi
  rc=$?
  case $rc in
    0) verdict=pass; npass=$((npass + 1)) ;;
    124 | 137) verdict="TIMEOUT (${limit} s)"; nfail=$((nfail + 1)) ;;
    *) verdict="FAIL (exit $rc)"; nfail=$((nfail + 1)) ;;
  esac
  echo "| $name | $verdict | $(($(date +%s) - t0)) s |" >>"$steps_md"
  echo "== $name: $verdict in $(($(date +%s) - t0)) s" >&2
  [ "$verdict" = pass ] || tail -n 15 "$out/$name.log" | sed 's/^/   /' >&2
  return 0
}
skip() { # skip NAME REASON
  echo "| $1 | skipped ($2) | |" >>"$steps_md"
  echo "== $1: skipped ($2)" >&2
  nskip=$((nskip + 1))
}

echo "bench/run.sh: device $device, $arch ${size}x${size}, batches $batches, warm-up $warmup," \
  "${duration:+$duration s per row}${duration:-$iters iterations}, budget $budget s, out $out" >&2
echo "bench/run.sh: python $py, cnx-bench ${cnx_bench:-not found}" >&2

step weights 90 - "$py" "$root/bench/torch_baseline.py" --arch "$arch" --seed 0 --save-weights "$weights"
if [ ! -s "$weights" ]; then
  notes+=("no weights file: both tools fall back to their own random weights (--arch $arch --seed 0), which differ")
  wflag=(--arch "$arch" --seed 0)
else
  wflag=(-w "$weights")
fi
step images 60 - "$py" "$root/bench/make_bench_images.py" --out "$images" --count "$nimages" --size 500x375 --seed 0 --quality 90

cnx_threads=()
[ "$device" = cpu ] && cnx_threads=(--threads "$threads")
cnx_common=(--device "$device" --warmup "$warmup" "${count[@]}" --json ${cnx_threads[@]+"${cnx_threads[@]}"})
have_cnx=0
if [ -n "$cnx_bench" ] && [ -x "$cnx_bench" ]; then have_cnx=1; fi

if [ $have_cnx = 1 ]; then
  step cnx_model 100 "$out/cnx_model.json" "${cnx_env[@]}" "$cnx_bench" "${wflag[@]}" --mode model \
    --precision "$precisions" --batch "$batches" --input-size "$size" "${cnx_common[@]}"
else
  skip cnx_model "cnx-bench not found"
fi

torch_common=(--device "$device" --batch "$batches" --input-size "$size" --warmup "$warmup" "${count[@]}")
[ "$device" = cpu ] && torch_common+=(--threads "$threads")
step torch_eager 100 - "$py" "$root/bench/torch_baseline.py" "${wflag[@]}" "${torch_common[@]}" \
  --modes "$torch_modes" --out "$out/torch_eager.json"

pprec=fp16
[ "$device" = cpu ] && pprec=fp32
if [ $have_cnx = 1 ]; then
  # synthetic decoded 500x375 RGB8 sources to the model's input (cnx-bench makes them)
  step cnx_preprocess 40 "$out/cnx_preprocess.json" "${cnx_env[@]}" "$cnx_bench" "${wflag[@]}" \
    --mode preprocess --image-size 500x375 --input-size "$size" --batch "$pbatch" "${cnx_common[@]}"
else
  skip cnx_preprocess "cnx-bench not found"
fi
if [ $have_cnx = 1 ] && [ -d "$images" ]; then
  step cnx_end_to_end 50 "$out/cnx_end_to_end.json" "${cnx_env[@]}" "$cnx_bench" "${wflag[@]}" \
    --mode end-to-end --images "$images" --input-size "$size" --precision "$pprec" --batch "$pbatch" \
    --device "$device" --warmup "$e2e_warmup" --iterations "$e2e_iters" --json \
    ${cnx_threads[@]+"${cnx_threads[@]}"}
else
  why="cnx-bench not found"
  [ $have_cnx = 1 ] && why="no images"
  skip cnx_end_to_end "$why"
fi
if [ $have_cnx = 1 ] && [ "$device" = cuda ] && [ $quick = 0 ]; then
  # what CUDA graphs are worth: fp16 without them
  step cnx_model_no_graphs 30 "$out/cnx_model_no_graphs.json" "${cnx_env[@]}" "$cnx_bench" "${wflag[@]}" \
    --mode model --no-graphs --precision fp16 --batch "$batches" --input-size "$size" "${cnx_common[@]}"
fi

if [ "$device" = cuda ] && [ "$compile_batches" != none ] && [ -n "$compile_batches" ]; then
  if [ "$compile_batches" != "$batches" ]; then
    notes+=("torch.compile max-autotune measured at batch $compile_batches only, to fit the $budget s budget (CNX_BENCH_COMPILE_BATCHES)")
  fi
  room=$(($(left) - reserve))
  step torch_compile "$room" - "$py" "$root/bench/torch_baseline.py" "${wflag[@]}" \
    --device cuda --batch "$compile_batches" --input-size "$size" --warmup "$warmup" "${count[@]}" \
    --modes compile-max-autotune --compile-timeout $((room > 40 ? room - 25 : 15)) --out "$out/torch_compile.json"
else
  skip torch_compile "${device} run; CNX_BENCH_COMPILE_BATCHES=$compile_batches"
  [ "$device" = cuda ] && notes+=("torch.compile max-autotune not run (CNX_BENCH_COMPILE_BATCHES=none)")
fi

# ------------------------------------------------------------ report
cnx_files=() torch_files=()
for f in cnx_model cnx_model_no_graphs cnx_preprocess cnx_end_to_end; do [ -s "$out/$f.json" ] && cnx_files+=(--cnx "$out/$f.json"); done
for f in torch_eager torch_compile; do [ -s "$out/$f.json" ] && torch_files+=(--torch "$out/$f.json"); done
if [ ${#cnx_files[@]} -gt 0 ] || [ ${#torch_files[@]} -gt 0 ]; then
  reserve=0
  step compare 20 - "$py" "$root/bench/compare.py" "${cnx_files[@]}" "${torch_files[@]}" --out "$out/bench.md"
else
  echo "# bench/run.sh: no results" >"$out/bench.md"
  skip compare "no JSON results"
fi
[ -s "$out/bench.md" ] || echo "# bench/run.sh: compare.py wrote nothing (see compare.log)" >"$out/bench.md"
{
  echo
  echo "## bench/run.sh steps"
  echo
  echo "device $device, $arch ${size}x${size}, batches $batches, warm-up $warmup, ${duration:+$duration s per row}${duration:-$iters iterations}; preprocess batch $pbatch of synthetic 500x375 sources; end-to-end batch $pbatch over $nimages 500x375 JPEGs (quality 90) per iteration, warm-up $e2e_warmup, $e2e_iters iterations; weights: ${wflag[*]##*/}; budget $budget s, used $(($(date +%s) - start)) s."
  echo
  echo "| step | result | time |"
  echo "|---|---|---|"
  cat "$steps_md"
  for n in "${notes[@]}"; do echo "- note: $n"; done
} >>"$out/bench.md"
rm -f "$steps_md"
cat "$out/bench.md"
echo "$npass passed, $nfail failed, $nskip skipped (bench/run.sh steps; $out)"
[ $nfail -eq 0 ]
