#!/usr/bin/env bash
# The GPU check: everything a GPU lease should tell us, in ONE command that ends by itself within a time budget.
# A GPU comes rarely, for ~15 minutes in all (its start included), one command of at most 10 minutes, and what comes
# back is the printed output plus at most 8 files: so the steps run in order of value, each under its own cap, and
# after every step the report and one logs archive are rewritten, so a command cut at its limit still returns
# everything done until then.
#
# ---- The recipe ----------------------------------------------------------------------------------------------------
# 1. Here (no GPU needed), in the repository root: build for sm_90 and pack (build-gpu* is git-ignored, so the pack
#    travels only when carried; it must stay under 32 MiB, the working tree and it under 64 MiB):
#      cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
#      cmake --build build-gpu -j2 --target gancu_gpu_tests gancu_bench_kernels gan
#      tools/gpu_check.sh --pack build-gpu build-gpu-pack
#      tools/gpu_check.sh --dry-run --prebuilt build-gpu-pack      # the whole script without a GPU; must pass
# 2. The ONE device call (the `run` tool's arguments; the default budget is 480 s, the command's limit 600 s):
#      carry=["build-gpu-pack"], timeout_s=560,
#      command="tools/gpu_check.sh --prebuilt build-gpu-pack --budget 480"
#    Results land in $OUT: report.md, logs.tar.gz (every log, the gtest XML, the raw JSON) and bench_kernels.json;
#    the printed output ends with the report's head. The lease: the machine's start (1-3 min) + 480 s + transfers is
#    11-12 of its 15 minutes, too little for a second full run: give the machine back after it (`give_back`), or, if
#    one step needs a second look and 4+ minutes remain, rerun only it at once (e.g. --only sanitizers --budget 150).
# 3. Before changing anything: commit report.md as bench/results/gpu-check-<date>.md (it names the device, driver,
#    date and commit) and logs.tar.gz beside it if the report alone cannot explain a failure.
#
# ---- The steps and their caps (seconds of the default 480; other budgets scale them) --------------------------------
#    0 smoke       20  device, driver, CUDA/cuDNN/cuBLAS, every binary's libraries resolved (aborts if one is
#                      missing), GLIBC/GLIBCXX needs, one quick GPU test
#    1 kernels     60  every kernel test against the CPU reference (gancu_gpu_tests minus CudaBackend.*, CudaTraining.*),
#                      small shapes first; sharded over the CPU cores (the fp64 reference is the slow part)
#    2 backend     60  CudaBackend.* (one and ten DCGAN steps against the CPU backend, graph replay against call by
#                      call), then CudaTraining.* if the cap allows
#    3 race       120  DCGAN-64 batch 128: gancu custom, cudnn, auto (graph replay) against PyTorch eager
#                      (cudnn.benchmark) and CUDA graph, the ratio table (bench/gpu_vs_pytorch.sh)
#    4 bench       90  the kernel benchmark, one run per group, DCGAN-64 layers first: the cap cuts the rest
#    5 sanitizers  90  compute-sanitizer memcheck, then racecheck, on the small-shape tests of every suite (sharded)
#    6 profile     40  `gan bench --profile` (CUDA-event time per op) and ncu metrics of one step's kernels (top ones
#                      in the report; --clock-control none)
#    7 compile   rest  PyTorch torch.compile, added to the race's table, only if 60 s or more remain
# Each cap shrinks to the time left (10 s are kept for the last report); a step that cannot get 3 s is recorded as
# "not run: budget spent". Every process runs under `timeout` (TERM, then KILL 3 s later).
#
# ---- Usage ---------------------------------------------------------------------------------------------------------
#   tools/gpu_check.sh --pack BUILD DEST     pack BUILD's gancu_gpu_tests, gancu_bench_kernels and gan, the shared
#                                            libraries a bare GPU machine lacks (OpenBLAS, libpng, ...) and
#                                            Fashion-MNIST's test images into DEST/pack.tar.xz (GPU_CHECK_XZ_LEVEL,
#                                            default 6)
#   tools/gpu_check.sh [options]             run the check
#     --prebuilt DIR      a --pack folder (default build-gpu-pack) or a build folder
#     --results DIR       where report.md, logs.tar.gz and bench_kernels.json go (default $OUT, else build-gpu-check)
#     --work DIR          scratch folder (default a new one under /tmp)
#     --budget SEC        end within SEC seconds (default 480)
#     --only LIST         comma-separated steps to run (default all); the others are recorded as not asked for
#     --dry-run           on a machine without a GPU: pack (a build folder), unpack, resolve libraries, prove every gtest
#                         filter and benchmark group matches, exercise the PyTorch script's arguments and the ratio
#                         table on canned lines, write the report and archive; every GPU command is logged, not run
#     --simulate-overrun STEP   (dry run) STEP's first command ignores TERM and sleeps past its cap
# Our binaries get our libraries through LD_LIBRARY_PATH set for them alone (never exported): PyTorch, python3 and
# the CUDA tools run in the machine's own environment. Exit status: 0 when every step that ran passed.
set -uo pipefail  # no -e: a failing step is recorded and the next one runs

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1' "${BASH_SOURCE[0]}"; exit 2; }  # the header

# ---- pack (build machine) ------------------------------------------------------------------------------------------
# Libraries every Linux GPU machine has in a compatible (same or newer) version: glibc's, the C++ runtime, zlib; and
# the driver's and CUDA's own, far too big to carry (cuBLASLt alone is ~500 MB), looked up there.
is_machine_library() {
  case $1 in
    linux-vdso.so* | ld-linux*.so* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libutil.so* | \
      libresolv.so* | libmvec.so* | libstdc++.so* | libgcc_s.so* | libz.so*) return 0 ;;
    libcuda.so* | libnvidia-*.so* | libcudart.so* | libcublas.so* | libcublasLt.so* | libcudnn*.so* | libnvrtc*.so* | \
      libnvJitLink.so* | libcufft*.so* | libcurand.so* | libcusparse*.so* | libcusolver*.so* | libnccl.so*) return 0 ;;
  esac
  return 1
}
BINS=(gancu_gpu_tests gancu_bench_kernels gan)
# The newest GLIBC_ and GLIBCXX_ symbol versions the files need (version strings are plain text in ELF files).
symbol_needs() { grep -ahoE "$1"'_[0-9]+(\.[0-9]+)+' "${@:2}" 2>/dev/null | sort -uV | tail -1; }

pack() {
  local build=$1 dest=$2 stage size
  if [[ -e $dest && ! -f $dest/MANIFEST.txt && -n $(ls -A "$dest" 2>/dev/null) ]]; then
    echo "gpu_check --pack: $dest exists and is not an earlier pack; not replacing it" >&2
    return 1
  fi
  rm -rf "$dest"
  stage=$(mktemp -d)
  mkdir -p "$dest" "$stage/lib" "$stage/data"
  for bin in "${BINS[@]}"; do
    [[ -x $build/$bin ]] || { echo "gpu_check --pack: $build/$bin missing: build it first" >&2; rm -rf "$stage"; return 1; }
    cp "$build/$bin" "$stage/"
  done
  (cd "$stage" && ldd "${BINS[@]}") | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do is_machine_library "$name" || cp -L "$path" "$stage/lib/$name"; done
  if (cd "$stage" && ldd "${BINS[@]}") | grep -q 'not found'; then
    echo "gpu_check --pack: unresolved libraries here:" >&2
    (cd "$stage" && ldd "${BINS[@]}") | grep 'not found' >&2
    rm -rf "$stage"
    return 1
  fi
  local fashion=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz  # for CudaTraining (no Debian data there)
  if [[ -f $fashion ]]; then cp "$fashion" "$stage/data/"
  else echo "gpu_check --pack: $fashion missing (apt-get install dataset-fashion-mnist): CudaTraining will skip" >&2; fi
  {
    echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(cd "$build" && pwd)"
    echo "commit $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    grep -E '^CMAKE_CUDA_ARCHITECTURES|^CMAKE_BUILD_TYPE' "$build/CMakeCache.txt" 2>/dev/null || true
    echo "needs $(symbol_needs GLIBC "$stage"/gancu_* "$stage"/gan "$stage"/lib/*) $(symbol_needs GLIBCXX "$stage"/gancu_* "$stage"/gan "$stage"/lib/*)"
    echo "packed libraries: $(find "$stage/lib" -type f -printf '%f ')"
    echo "packed data: $(find "$stage/data" -type f -printf '%f ')"
  } >"$stage/MANIFEST.txt"
  cp "$stage/MANIFEST.txt" "$dest/"
  tar -C "$stage" -cf - . | xz -T2 "-${GPU_CHECK_XZ_LEVEL:-6}" >"$dest/pack.tar.xz"
  size=$(du -sb "$dest" | cut -f1)
  echo "packed $dest: $((size / 1048576)) MiB ($(du -sb "$stage" | awk '{printf "%d", $1 / 1048576}') MiB unpacked)"
  grep -E '^(needs|packed libraries|packed data)' "$dest/MANIFEST.txt"
  rm -rf "$stage"
  if ((size > 32 * 1048576)); then
    echo "gpu_check --pack: $dest is over 32 MiB, too big to carry with the working tree" >&2
    return 1
  fi
}

if [[ ${1:-} == --pack ]]; then
  [[ $# -eq 3 ]] || usage
  pack "$2" "$3"
  exit
fi

# ---- options -------------------------------------------------------------------------------------------------------
PREBUILT=$REPO/build-gpu-pack
RESULTS=${OUT:-$REPO/build-gpu-check}  # build* is git-ignored: results made here never travel to a GPU machine
WORK=""
BUDGET=480
ONLY=""
DRY_RUN=0
SIMULATE=""
while [[ $# -gt 0 ]]; do
  case $1 in
    -h | --help) usage ;;
    --dry-run) DRY_RUN=1; shift; continue ;;
  esac
  [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; usage; }
  case $1 in
    --prebuilt) PREBUILT=$2 ;;
    --results) RESULTS=$2 ;;
    --work) WORK=$2 ;;
    --budget) BUDGET=$2 ;;
    --only) ONLY=$2 ;;
    --simulate-overrun) SIMULATE=$2 ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
  shift 2
done
STEPS=(smoke kernels backend race bench sanitizers profile compile)
declare -A PLAN=([smoke]=20 [kernels]=60 [backend]=60 [race]=120 [bench]=90 [sanitizers]=90 [profile]=40 [compile]=0)
PLAN_TOTAL=480
for s in ${ONLY//,/ } ${SIMULATE}; do
  [[ -v PLAN[$s] ]] || { echo "unknown step: $s (steps: ${STEPS[*]})" >&2; usage; }
done
if ! [[ $BUDGET =~ ^[0-9]+$ ]] || ((BUDGET < 20)); then echo "--budget expects seconds (at least 20)" >&2; usage; fi
[[ -z $SIMULATE || $DRY_RUN -eq 1 ]] || { echo "--simulate-overrun needs --dry-run" >&2; usage; }
if [[ -z $WORK ]]; then  # a scratch folder of our own: removed at the end (everything is in the results' archive)
  WORK=$(mktemp -d /tmp/gancu-gpu-check.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK" "$RESULTS"
WORK=$(cd "$WORK" && pwd)
RESULTS=$(cd "$RESULTS" && pwd)
LOGS=$WORK/logs
rm -rf "$LOGS" "$RESULTS/report.md" "$RESULTS/logs.tar.gz" "$RESULTS/bench_kernels.json"
mkdir -p "$LOGS"
START=$SECONDS
RESERVE=10    # seconds kept for the last report and archive
MIN_START=3   # a step that would get less is not started
KILL_AFTER=3  # seconds between timeout's TERM and KILL
NPROC=$(nproc 2>/dev/null || echo 2)
SHARDS=$((NPROC / 2 < 1 ? 1 : (NPROC / 2 > 8 ? 8 : NPROC / 2)))  # gtest processes side by side (fp64 references)
ABORT=""      # set when nothing after the smoke step can work

# ---- records, report, archive --------------------------------------------------------------------------------------
# logs/steps.tsv: kind, name, status, seconds, cap, note; the last line of a name wins (a step is first "running").
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6//$'\t'/ }" >>"$LOGS/steps.tsv"; }
fact() { printf '%s\t%s\n' "$1" "${2//$'\t'/ }" >>"$LOGS/facts.tsv"; }
# Rewrites report.md, bench_kernels.json and logs.tar.gz (each replaced whole, never half-written) and prints the
# step's summary line.
publish() {
  python3 "$REPO/tools/gpu_check_report.py" "$WORK" "$RESULTS" ${1:+--summary "$1"} 2>>"$LOGS/report_errors.log" ||
    echo "   (the report could not be written: see report_errors.log in the archive)"
  tar -czf "$RESULTS/.logs.tar.gz" -C "$WORK" logs 2>/dev/null && mv -f "$RESULTS/.logs.tar.gz" "$RESULTS/logs.tar.gz"
}

# ---- caps ----------------------------------------------------------------------------------------------------------
left() { echo $((BUDGET - RESERVE - (SECONDS - START))); }
step_cap() {  # the step's planned share of the budget, shrunk to the time left; compile and profile take the rest
  local plan=$((PLAN[$1] * BUDGET / PLAN_TOTAL)) rest
  ((plan < MIN_START)) && plan=$MIN_START  # a small budget still gives each step a try
  rest=$(left)
  [[ $1 == compile ]] && plan=$rest
  [[ $1 == profile ]] && ((rest > plan)) && plan=$rest
  ((plan > rest)) && plan=$rest
  echo $((plan < 0 ? 0 : plan))
}
step_left() { echo $((STEP_DEADLINE - SECONDS)); }

# ---- running things ------------------------------------------------------------------------------------------------
sub_status() {  # folds one command's result into the step's: FAILED > timed out > ok
  case $1 in
    FAILED*) STEP_STATUS=FAILED ;;
    "timed out"*) [[ $STEP_STATUS == FAILED ]] || STEP_STATUS="timed out" ;;
  esac
}
status_of() {  # exit status, cap → status word
  case $1 in
    0) echo ok ;;
    124 | 137) echo "timed out" ;;
    *) echo "FAILED" ;;
  esac
}
# host NAME CMD...: a command that needs no GPU (runs in the dry run too), output in logs/NAME.log.
host() {
  local name=$1 rc=0 t0=$SECONDS
  shift
  "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
  local status
  status=$(status_of "$rc")
  record sub "$STEP/$name" "$status" $((SECONDS - t0)) - "$([[ $rc -eq 0 ]] || echo "exit $rc: $*")"
  sub_status "$status"
  return "$rc"
}
# gpu NAME [--our-libs] CMD...: a command that needs the GPU, under the time left in the step; our binaries get our
# libraries (--our-libs). In the dry run it is logged, not run (unless it is the simulated overrun).
SIMULATED=0
simulating() {  # the dry run's overrun: the step's first GPU command becomes a hung process that ignores TERM
  ((DRY_RUN && !SIMULATED)) && [[ $STEP == "$SIMULATE" ]] || return 1
  SIMULATED=1
}
gpu_command() {
  local name=$1 cap
  shift
  cap=$(step_left)
  if ((cap < 1)); then
    record sub "$STEP/$name" "not run" 0 - "step cap spent"
    return 1
  fi
  local env_prefix=()
  if [[ ${1:-} == --our-libs ]]; then env_prefix=(env "LD_LIBRARY_PATH=$OUR_LD_PATH"); shift; fi
  local cmd=("${env_prefix[@]}" "$@")
  if simulating; then
    cmd=(bash -c 'trap "" TERM; exec sleep 100000')
  elif ((DRY_RUN)); then
    printf 'dry run: would run (cap %s s): %s\n' "$cap" "${cmd[*]}" >"$LOGS/$name.log"
    record sub "$STEP/$name" "dry run" 0 "$cap" ""
    return 0
  fi
  local rc=0 t0=$SECONDS
  timeout --kill-after=$KILL_AFTER "$cap" "${cmd[@]}" >"$LOGS/$name.log" 2>&1 || rc=$?
  local status
  status=$(status_of "$rc")
  record sub "$STEP/$name" "$status" $((SECONDS - t0)) "$cap" "$([[ $rc -eq 0 ]] || echo "exit $rc")"
  sub_status "$status"
  return "$rc"
}
# The tests a gtest filter selects, one full name a line (gtest's --gtest_list_tests, no GPU needed).
list_tests() {
  env LD_LIBRARY_PATH="$OUR_LD_PATH" "$GPU_TESTS" --gtest_list_tests --gtest_filter="$1" 2>/dev/null |
    awk '/^[^ ]/ {suite = $1; next} /^  / {sub(/ *#.*/, ""); print suite substr($0, 3)}'
}
# gtest_run NAME FILTER SHARDS [PREFIX...]: the tests FILTER selects (proven to be ≥ 1 first), split over SHARDS
# processes side by side, each writing logs/NAME.<i>.log and .xml, all under the time left in the step.
gtest_run() {
  local name=$1 filter=$2 shards=$3
  shift 3
  local count
  count=$(list_tests "$filter" | tee "$LOGS/$name.tests" | grep -c .)
  if ((count == 0)); then
    record sub "$STEP/$name" FAILED 0 - "the filter '$filter' matches no test"
    sub_status FAILED
    return 1
  fi
  ((shards > count)) && shards=$count
  local cap
  cap=$(step_left)
  if ((cap < 1)); then record sub "$STEP/$name" "not run" 0 - "step cap spent"; return 1; fi
  local prefix=("$@") run=(env "LD_LIBRARY_PATH=$OUR_LD_PATH" "GTEST_TOTAL_SHARDS=$shards")
  if simulating; then
    prefix=(bash -c 'trap "" TERM; exec sleep 100000' --)
  elif ((DRY_RUN)); then
    printf 'dry run: would run %s tests in %s shards (cap %s s): %s %s --gtest_filter=%s\n' "$count" "$shards" "$cap" \
      "${prefix[*]}" "$GPU_TESTS" "$filter" >"$LOGS/$name.log"
    record sub "$STEP/$name" "dry run" 0 "$cap" "$count tests, $shards shards"
    return 0
  fi
  local t0=$SECONDS i rc worst=0
  for ((i = 0; i < shards; i++)); do
    (
      rc=0
      timeout --kill-after=$KILL_AFTER "$cap" "${run[@]}" "GTEST_SHARD_INDEX=$i" \
        "OPENBLAS_NUM_THREADS=$((NPROC / shards > 0 ? NPROC / shards : 1))" "${prefix[@]}" "$GPU_TESTS" \
        --gtest_filter="$filter" --gtest_output="xml:$LOGS/$name.$i.xml" >"$LOGS/$name.$i.log" 2>&1 || rc=$?
      echo "$rc" >"$LOGS/$name.$i.rc"
    ) &
  done
  wait
  for ((i = 0; i < shards; i++)); do
    rc=$(cat "$LOGS/$name.$i.rc" 2>/dev/null || echo 1)
    case $rc in 0) ;; 124 | 137) ((worst == 0)) && worst=124 ;; *) worst=$rc ;; esac
  done
  local status
  status=$(status_of "$worst")
  record sub "$STEP/$name" "$status" $((SECONDS - t0)) "$cap" "$count tests, $shards shards$([[ $worst -eq 0 ]] || echo ", exit $worst")"
  sub_status "$status"
}

# ---- the build: unpack, libraries ----------------------------------------------------------------------------------
# Folders that may hold CUDA's, cuBLAS's and cuDNN's shared libraries: the toolkit's, then python3's NVIDIA wheels
# (nvidia/cudnn/lib, nvidia/cu13/lib, ...; PyTorch's cuDNN comes as one).
cuda_library_dirs() {
  local d
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
    /usr/local/cuda-*/lib64 /usr/local/cuda-*/lib /usr/local/cuda-*/targets/x86_64-linux/lib; do
    [[ -d $d ]] && echo "$d"
  done
  python3 - <<'PY' 2>/dev/null || true
import glob, os, sys
seen = []
for entry in sys.path:
    for d in sorted(glob.glob(os.path.join(entry or ".", "nvidia", "*", "lib"))):
        d = os.path.realpath(d)
        if d not in seen and glob.glob(os.path.join(d, "*.so*")):
            seen.append(d)
print("\n".join(seen))
PY
}

prepare_build() {
  local src=$PREBUILT
  [[ -d $src ]] || { ABORT="no build at $src (see the recipe: --pack first)"; return 1; }
  if [[ ! -f $src/pack.tar.xz ]] && ((DRY_RUN)); then  # the dry run packs a build folder, as the recipe does
    host pack env GPU_CHECK_XZ_LEVEL="${GPU_CHECK_XZ_LEVEL:-1}" "$REPO/tools/gpu_check.sh" --pack "$src" "$WORK/pack" ||
      { ABORT="packing $src failed (see pack.log)"; return 1; }
    src=$WORK/pack
  fi
  if [[ -f $src/pack.tar.xz ]]; then
    rm -rf "$WORK/prebuilt"
    mkdir -p "$WORK/prebuilt"
    unpack() {
      if command -v xz >/dev/null; then xz -dc "$1"
      else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi |
        tar -C "$WORK/prebuilt" -xf -
    }
    host unpack unpack "$src/pack.tar.xz" || { ABORT="unpacking $src/pack.tar.xz failed"; return 1; }
    src=$WORK/prebuilt
  fi
  BUILD=$(cd "$src" && pwd)
  OUR_LD_PATH=""
  [[ -d $BUILD/lib ]] && OUR_LD_PATH=$BUILD/lib
  local d
  while read -r d; do [[ -n $d ]] && OUR_LD_PATH="${OUR_LD_PATH:+$OUR_LD_PATH:}$d"; done < <(cuda_library_dirs)
  [[ -n ${LD_LIBRARY_PATH:-} ]] && OUR_LD_PATH="$OUR_LD_PATH:$LD_LIBRARY_PATH"
  GPU_TESTS=$BUILD/gancu_gpu_tests
  BENCH=$BUILD/gancu_bench_kernels
  GAN=$BUILD/gan
  local commit=""
  [[ -f $BUILD/MANIFEST.txt ]] && commit=$(awk '$1 == "commit" {print $2; exit}' "$BUILD/MANIFEST.txt")
  COMMIT=${GANCU_COMMIT:-${commit:-$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)}}
  fact commit "$COMMIT"
  fact build "$BUILD"
  [[ -f $BUILD/MANIFEST.txt ]] && fact pack "$(head -1 "$BUILD/MANIFEST.txt")"
  fact "our LD_LIBRARY_PATH" "$OUR_LD_PATH"
}

# shellcheck source=tools/gpu_check_steps.sh
source "$REPO/tools/gpu_check_steps.sh"

# ---- main ----------------------------------------------------------------------------------------------------------
fact mode "$( ((DRY_RUN)) && echo "DRY RUN (no GPU command ran)" || echo "GPU run")"
fact budget "$BUDGET s"
fact date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fact host "$(uname -n) ($(uname -r), $NPROC cores)$([[ $(uname -r) == 4.4.0* ]] &&
  echo "; kernel 4.4.0 is gVisor's: ncu and compute-sanitizer did not work there on 2026-11-04")"
STEP=setup
STEP_STATUS=ok
prepare_build
publish
echo "gpu_check: $( ((DRY_RUN)) && echo "dry run, ")budget ${BUDGET} s, results in $RESULTS, work in $WORK"
[[ -z $ABORT ]] || echo "gpu_check: ABORTED: $ABORT"
n=0
for STEP in "${STEPS[@]}"; do
  if [[ -n $ONLY && ,$ONLY, != *,$STEP,* ]]; then
    record step "$STEP" "not asked for" 0 - "--only $ONLY"
    n=$((n + 1))
    continue
  fi
  if [[ -n $ABORT ]]; then
    record step "$STEP" "not run" 0 - "aborted: $ABORT"
    n=$((n + 1))
    continue
  fi
  cap=$(step_cap "$STEP")
  need=$MIN_START
  [[ $STEP == compile ]] && need=60  # torch.compile alone takes most of a minute
  if ((cap < need)); then
    record step "$STEP" "not run" 0 "$cap" "budget spent ($(left) s left, $need s needed)"
    echo "== [$n] $STEP: not run: budget spent"
    n=$((n + 1))
    continue
  fi
  STEP_DEADLINE=$((SECONDS + cap))
  STEP_STATUS=ok
  record step "$STEP" running 0 "$cap" "started at $((SECONDS - START)) s"
  publish >/dev/null
  t0=$SECONDS
  "step_$STEP"
  record step "$STEP" "$STEP_STATUS" $((SECONDS - t0)) "$cap" ""
  printf '== [%s] %s: ' "$n" "$STEP"
  publish "$STEP"
  n=$((n + 1))
done
STEP="finished"
publish >/dev/null
echo "gpu_check: done in $((SECONDS - START)) s of ${BUDGET} s; report $RESULTS/report.md"
# The report's head (facts, steps, failed commands' tails) in the printed output too, in case the files don't come back.
echo "---- report.md (first 9000 characters) ----"
head -c 9000 "$RESULTS/report.md"
echo
# Exit status: 0 when no step and no check failed.
! grep -qP '^(step|sub)\t[^\t]*\t(FAILED|timed out)' "$LOGS/steps.tsv"
