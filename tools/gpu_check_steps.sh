# The steps of tools/gpu_check.sh (sourced by it; see its header for the plan). Each step_* runs its commands through
# host (no GPU: runs in the dry run too), gpu_command or gtest_run (GPU: logged, not run, in the dry run), all under
# the step's deadline.
# shellcheck shell=bash

first_path() {  # the first of its arguments that exists (unmatched globs stay literal and don't)
  local p
  for p in "$@"; do [[ -e $p ]] && { echo "$p"; return 0; }; done
  return 1
}

# ---- 0 smoke: device, versions, libraries, one quick GPU test -------------------------------------------------------
step_smoke() {
  if command -v nvidia-smi >/dev/null; then
    host nvidia_smi timeout 20 nvidia-smi
    fact device "$(timeout 10 nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader 2>&1 |
      head -1)"
    fact driver "$(timeout 10 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>&1 | head -1), CUDA $(
      grep -o 'CUDA Version: [0-9.]*' "$LOGS/nvidia_smi.log" | awk '{print $3}') (driver API)"
  else
    fact device "none: no nvidia-smi on this machine"
  fi
  local nvcc
  nvcc=$(command -v nvcc || first_path /usr/local/cuda*/bin/nvcc)
  [[ -n $nvcc ]] && fact nvcc "$("$nvcc" --version | grep -o 'release [0-9.]*, V[0-9.]*' | head -1)"
  fact python3 "$(python3 --version 2>&1)"

  # Every binary's libraries, resolved as our binaries will load them.
  local bin missing="" t0=$SECONDS
  for bin in "${BINS[@]}"; do
    if [[ ! -x $BUILD/$bin ]]; then missing+="$bin (the binary itself); "; continue; fi
    env LD_LIBRARY_PATH="$OUR_LD_PATH" ldd "$BUILD/$bin" >"$LOGS/ldd_$bin.log" 2>&1
    missing+=$(grep 'not found' "$LOGS/ldd_$bin.log" | sed "s/^[[:space:]]*/$bin: /; s/\$/; /" | sort -u | tr -d '\n')
  done
  local lib path
  for lib in libcudart.so libcublas.so libcublasLt.so libcudnn.so; do
    path=$(awk -v l="$lib" 'index($1, l) == 1 && $2 == "=>" {print $3; exit}' "$LOGS"/ldd_*.log 2>/dev/null)
    [[ -n $path ]] && fact "${lib%.so}" "$path -> $(basename "$(readlink -f "$path")")"
  done
  local stdcxx
  stdcxx=$(awk '$1 ~ /^libstdc\+\+/ && $2 == "=>" {print $3; exit}' "$LOGS"/ldd_*.log 2>/dev/null)
  local needs have
  needs="$(symbol_needs GLIBC "${BINS[@]/#/$BUILD/}" "$BUILD"/lib/*) $(symbol_needs GLIBCXX "${BINS[@]/#/$BUILD/}" "$BUILD"/lib/*)"
  have="$(ldd --version 2>&1 | head -1), libstdc++ up to $(symbol_needs GLIBCXX "${stdcxx:-/dev/null}")"
  fact "GLIBC/GLIBCXX" "needs $needs; this machine: $have"
  if [[ -n $missing ]]; then
    record sub smoke/libraries FAILED $((SECONDS - t0)) - "missing: $missing"
    sub_status FAILED
    ABORT="libraries missing: $missing(see ldd_*.log)"
    echo "gpu_check: ABORT: $ABORT"
    return
  fi
  record sub smoke/libraries ok $((SECONDS - t0)) - "every library of ${BINS[*]} resolved"

  # One quick GPU test: the binaries run and see the device.
  gpu_command quick_test --our-libs "$GPU_TESTS" --gtest_filter=ElementwiseCuda.SmallActivations
  if ((!DRY_RUN)) && grep -q 'no CUDA device' "$LOGS/quick_test.log"; then
    record sub smoke/device FAILED 0 - "the tests see no CUDA device"
    sub_status FAILED
    ABORT="the tests see no CUDA device (quick_test.log)"
  fi
}

# ---- 1 kernels: every kernel test against the CPU reference, small shapes first -------------------------------------
step_kernels() {
  gtest_run kernels_small '*Small*-CudaBackend.*:CudaTraining.*' "$SHARDS"
  gtest_run kernels_model '-*Small*:CudaBackend.*:CudaTraining.*' "$SHARDS"
}

# ---- 2 backend: DCGAN steps against the CPU backend, graph replay against call by call ------------------------------
step_backend() {
  gtest_run cuda_backend 'CudaBackend.*' $((SHARDS > 4 ? 4 : SHARDS))
  if (($(step_left) >= 15)); then gtest_run cuda_training 'CudaTraining.*' 2
  else record sub backend/cuda_training "not run" 0 - "step cap spent ($(step_left) s left, 15 s needed)"; fi
}

# ---- 3 race: DCGAN-64 b128, gancu against PyTorch -------------------------------------------------------------------
# Canned lines for the dry run's ratio table: one failed gancu mode, PyTorch's two modes.
CANNED_RACE='{"framework": "gancu", "mode": "custom/tf32/graph", "image_size": 64, "batch_size": 128, "median_step_ms": 64.0, "images_per_s": 2000.0}
{"framework": "gancu", "mode": "cudnn/tf32/graph", "image_size": 64, "batch_size": 128, "median_step_ms": 51.2, "images_per_s": 2500.0}
{"framework": "gancu", "mode": "auto/tf32/graph", "image_size": 64, "batch_size": 128, "error": "cut at its 20 s cap"}
{"framework": "pytorch 2.11.0+cu130", "mode": "eager", "image_size": 64, "batch_size": 128, "median_step_ms": 42.7, "images_per_s": 3000.0}
{"framework": "pytorch 2.11.0+cu130", "mode": "cudagraph", "image_size": 64, "batch_size": 128, "median_step_ms": 32.0, "images_per_s": 4000.0}'

# The race's scripts, checked without a GPU or PyTorch (a subshell: set -e stays inside).
race_checks() (
  set -e
  export PYTHONPYCACHEPREFIX=$WORK/pycache
  bash -n "$REPO/bench/gpu_vs_pytorch.sh"
  "$REPO/bench/gpu_vs_pytorch.sh" --help | grep -q -- --gancu-cap
  python3 -m py_compile "$REPO/bench/pytorch/dcgan_step.py" "$REPO/bench/pytorch/ratio_table.py"
  python3 "$REPO/bench/pytorch/dcgan_step.py" --help | grep -q -- --modes
  if python3 "$REPO/bench/pytorch/dcgan_step.py" --modes eager,nonsense 2>/dev/null; then
    echo "dcgan_step.py accepted an unknown mode"; exit 1
  fi
  python3 "$REPO/bench/pytorch/ratio_table.py" <<<"$CANNED_RACE" | tee "$WORK/canned_table.txt"
  grep -q 'custom/tf32/graph 2000 img/s  *0.67x  *0.50x' "$WORK/canned_table.txt"
  grep -q 'auto/tf32/graph failed  *cut at its 20 s cap' "$WORK/canned_table.txt"
  echo "race scripts: syntax, --help, argument errors and the ratio table on canned lines: ok"
)

step_race() {
  host race_checks race_checks
  local cap gancu_cap torch_cap
  cap=$(step_left)
  # 60% of the cap for gancu's three runs (auto measures every shape first), 35% for PyTorch's process (its import
  # and cudnn.benchmark's search included); each side's cut is recorded and the other side still runs.
  gancu_cap=$((cap * 6 / 10 / 3))
  torch_cap=$((cap * 35 / 100))
  ((DRY_RUN)) && echo "$CANNED_RACE" >"$LOGS/race.jsonl"  # the report's table from canned lines
  gpu_command race env GANCU_LIBRARY_PATH="$OUR_LD_PATH" "$REPO/bench/gpu_vs_pytorch.sh" --kernels "custom cudnn auto" \
    --launch graph --torch-modes eager,cudagraph --warmup 10 --gancu-cap "$gancu_cap" --torch-cap "$torch_cap" \
    --jsonl "$LOGS/race.jsonl" "$BUILD" 50 64:128
}

# ---- 4 bench: the kernel benchmark, one run per group, DCGAN-64 first -----------------------------------------------
# Every group registered in bench/kernels (GANCU_BENCH("name")): conv.dcgan64 first, then the memory-bound groups,
# then the other conv groups.
bench_groups() {
  local all
  all=$(grep -ho 'GANCU_BENCH("[^"]*")' "$REPO"/bench/kernels/*.cu | sed 's/^GANCU_BENCH("//; s/")$//')
  grep -x 'conv\.dcgan64' <<<"$all"
  grep -v '^conv\.' <<<"$all"
  grep '^conv\.' <<<"$all" | grep -vx 'conv\.dcgan64'
}
# Each group is in the binary, and its --filter (a substring match) selects it alone.
bench_checks() (
  set -e
  env LD_LIBRARY_PATH="$OUR_LD_PATH" "$BENCH" --help | grep -q -- --filter
  local g h n bad=0
  for g in "$@"; do
    grep -qaF "$g" "$BENCH" || { echo "group $g is in the source but not in $BENCH (a stale build?)"; bad=1; }
    n=0
    for h in "$@"; do [[ $h == *"$g"* ]] && n=$((n + 1)); done
    ((n == 1)) || { echo "--filter $g would select $n groups"; bad=1; }
  done
  echo "bench groups, in run order: $*"
  exit $bad
)

step_bench() {
  local groups g
  mapfile -t groups < <(bench_groups)
  host bench_checks bench_checks "${groups[@]}"
  for g in "${groups[@]}"; do
    if (($(step_left) < 3)); then
      record sub "bench/bench_$g" "not run" 0 - "step cap spent"
      continue
    fi
    gpu_command "bench_$g" --our-libs "$BENCH" --filter "$g" --warmup 5 --json "$LOGS/bench_$g.json" \
      --commit "$COMMIT"
  done
}

# ---- 5 sanitizers: memcheck and racecheck on the small-shape tests of every suite -----------------------------------
# One pattern per suite that must be reached (label|pattern; a pattern may be a ':' list): a required suite without a
# match fails the check. Conv: the conv branch's INSTANTIATE_TEST_SUITE_P(Small, ConvLayer, ...) cases, chosen to reach
# every kernel variant (its ConvIndexMaps.SmallCasesReachEveryVariant checks that on the host), or ConvCuda.Small*.
SANITIZER_PARTS=(
  "conv (implicit GEMM, split-K, dense GEMM)|Small/ConvLayer.*:ConvLayer.Small*:ConvCuda*.Small*"
  "batch norm|BatchNorm2dCuda.Small*"
  "losses|LossesCuda.Small*"
  "Adam|AdamCuda.Small*"
  "elementwise|ElementwiseCuda.Small*"
  "concat, channel slice, one-hot|ChannelOpsCuda.Small*"
  "backend step with graph replay|CudaBackend.Small*"
  "every recipe's step (MLP GAN, conditional DCGAN)|*SmallRecipeStep.*"
)
# Every test named "Small" (the project's convention: tiny shapes, no CUDA API errors provoked on purpose), and each
# required suite's pattern explicitly (a required pattern need not contain "Small").
sanitizer_filter() { local IFS=:; local p=("*Small*" "${SANITIZER_PARTS[@]#*|}"); echo "${p[*]}"; }
sanitizer_checks() {
  local part label pattern tests n missing=()
  for part in "${SANITIZER_PARTS[@]}"; do
    label=${part%%|*}
    pattern=${part#*|}
    tests=$(list_tests "$pattern")
    n=$(grep -c . <<<"$tests")
    echo "$label: $pattern: $n tests: $(tr '\n' ' ' <<<"$tests")"
    ((n > 0)) || missing+=("$label ($pattern)")
  done
  if ((${#missing[@]})); then
    local IFS=';'
    echo "SANITIZER FILTER INCOMPLETE: no test matches ${missing[*]}: the sanitizers would not reach those kernels."
    echo "Name a small-shape test of each such suite with \"Small\" (conv: the conv branch's"
    echo "INSTANTIATE_TEST_SUITE_P(Small, ConvLayer, ...) cases, which reach implicit GEMM, split-K and dense GEMM)."
    return 1
  fi
  echo "sanitizer filter: $(sanitizer_filter): $(list_tests "$(sanitizer_filter)" | grep -c .) tests"
}

step_sanitizers() {
  host sanitizer_filter sanitizer_checks
  local san
  san=$(command -v compute-sanitizer ||
    first_path /usr/local/cuda*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer)
  if [[ -z $san ]]; then
    if ((DRY_RUN)); then san=compute-sanitizer
    else record sub sanitizers/compute_sanitizer FAILED 0 - "compute-sanitizer not found"; sub_status FAILED; return; fi
  fi
  # Half the time left for memcheck, the rest for racecheck; each sharded like the kernel tests. API errors are not
  # the sanitizers' job here: our code checks every CUDA call (a failing one fails its test), while cuDNN's algorithm
  # search (reached by the cuDNN rows of the Small conv and batch-norm tests) may try allocations and kernel
  # attributes that fail by design, which the default --report-api-errors would count against us.
  local deadline=$STEP_DEADLINE
  STEP_DEADLINE=$((SECONDS + $(step_left) / 2))
  gtest_run memcheck "$(sanitizer_filter)" "$SHARDS" "$san" --tool memcheck --report-api-errors no --error-exitcode 3 --print-limit 20
  STEP_DEADLINE=$deadline
  gtest_run racecheck "$(sanitizer_filter)" "$SHARDS" "$san" --tool racecheck --report-api-errors no --error-exitcode 3 --print-limit 20
}

# ---- 6 profile: CUDA-event time per op, ncu metrics of one step's kernels -------------------------------------------
NCU_METRICS=gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__grid_size,launch__block_size
step_profile() {
  local deadline=$STEP_DEADLINE
  STEP_DEADLINE=$((SECONDS + $(step_left) / 2))
  gpu_command gan_profile --our-libs "$GAN" bench --device cuda --kernels auto --math tf32 --image-size 64 --channels 3 \
    --batch-size 128 --warmup 5 --steps 20 --profile
  STEP_DEADLINE=$deadline
  local ncu
  ncu=$(command -v ncu || first_path /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu)
  if [[ -z $ncu ]]; then
    if ((DRY_RUN)); then ncu=ncu
    else record sub profile/ncu FAILED 0 - "ncu not found"; sub_status FAILED; return; fi
  fi
  # The first 150 launches (set-up, then one call-by-call step), 7 metrics each; the report ranks them by time.
  gpu_command ncu --our-libs "$ncu" --clock-control none --csv --page raw --launch-count 150 --metrics "$NCU_METRICS" \
    "$GAN" bench --device cuda --kernels custom --math tf32 --no-cuda-graph --image-size 64 --channels 3 \
    --batch-size 128 --warmup 0 --steps 1
}

# ---- 7 compile: PyTorch torch.compile, if time remains ----------------------------------------------------------------
step_compile() {
  gpu_command compile python3 "$REPO/bench/pytorch/dcgan_step.py" --device cuda --image-size 64 --channels 3 \
    --batch-size 128 --warmup 10 --steps 50 --modes compile
  grep '^{' "$LOGS/compile.log" >>"$LOGS/race.jsonl" 2>/dev/null || true
}
