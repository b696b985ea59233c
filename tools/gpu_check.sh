#!/usr/bin/env bash
# GPU check: build (or take a prebuilt build), run the GPU tests, compute-sanitizer memcheck and racecheck over the
# small-shape kernel tests, and the kernel benchmark; write OUTDIR/report.md plus the JSON and logs.
#
# Usage:
#   tools/gpu_check.sh OUTDIR                          configure + build here (needs nvcc, cmake, ninja, cuDNN, GTest…)
#   tools/gpu_check.sh OUTDIR --prebuilt DIR [--libs LIBDIR]
#                                                      use binaries already built in DIR (for sm_90); LIBDIR holds the
#                                                      shared libraries they need and goes on LD_LIBRARY_PATH
# From the device tool (repository root is the working directory, $OUT is brought back):
#   build here first:  cmake -S . -B build-gpu -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release &&
#                      cmake --build build-gpu --target gancu_gpu_tests gancu_tests gancu_bench_kernels
#   then run with carry=["build-gpu", "gpu-libs"]:
#                      tools/gpu_check.sh "$OUT" --prebuilt build-gpu --libs gpu-libs
# cuDNN is also looked up in PyTorch's nvidia-cudnn wheel when python3 can import nvidia.cudnn.
# Every step's failure is recorded in the report; the script carries on and exits non-zero at the end if any failed.
set -euo pipefail

usage() { sed -n '2,18p' "$0"; exit 2; }
[[ $# -ge 1 ]] || usage
OUTDIR=$1
shift
PREBUILT=""
LIBDIR=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --prebuilt) PREBUILT=$2; shift 2 ;;
    --libs) LIBDIR=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
REPORT=$OUTDIR/report.md
FAILURES=()

# Runs "$@" with output to OUTDIR/<name>.log; records a failure instead of stopping.
step() {
  local name=$1
  shift
  echo "== $name: $*"
  if "$@" >"$OUTDIR/$name.log" 2>&1; then
    echo "   ok"
    return 0
  else
    local rc=$?
    echo "   FAILED (exit $rc), see $name.log"
    FAILURES+=("$name (exit $rc)")
    return 0
  fi
}

# ---- environment -----------------------------------------------------------------------------------------------
if [[ -n $LIBDIR ]]; then
  LIBDIR=$(cd "$LIBDIR" && pwd)
  export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
CUDNN_WHEEL=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
if [[ -n $CUDNN_WHEEL && -d $CUDNN_WHEEL/lib ]]; then
  export LD_LIBRARY_PATH="$CUDNN_WHEEL/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export CUDNN_ROOT=${CUDNN_ROOT:-$CUDNN_WHEEL}
fi
export PATH="$PATH:/usr/local/cuda/bin"
COMMIT=${GANCU_COMMIT:-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)}
export GANCU_COMMIT=$COMMIT

# ---- build -----------------------------------------------------------------------------------------------------
if [[ -n $PREBUILT ]]; then
  BUILD=$(cd "$PREBUILT" && pwd)
else
  BUILD=$OUTDIR/build
  step configure cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
  step build cmake --build "$BUILD" --target gancu_gpu_tests gancu_tests gancu_bench_kernels
fi
GPU_TESTS=$BUILD/gancu_gpu_tests
CPU_TESTS=$BUILD/gancu_tests
BENCH=$BUILD/gancu_bench_kernels

# ---- tests, sanitizers, benchmark ------------------------------------------------------------------------------
step nvidia_smi nvidia-smi
[[ -x $GPU_TESTS ]] && step gpu_tests "$GPU_TESTS" --gtest_output="xml:$OUTDIR/gpu_tests.xml" \
  || FAILURES+=("gpu_tests (binary missing)")
[[ -x $CPU_TESTS ]] && step cpu_tests "$CPU_TESTS" --gtest_output="xml:$OUTDIR/cpu_tests.xml" \
  || FAILURES+=("cpu_tests (binary missing)")
SANITIZER=$(command -v compute-sanitizer || true)
SMALL_FILTER='*Small*'
if [[ -n $SANITIZER && -x $GPU_TESTS ]]; then
  step memcheck "$SANITIZER" --tool memcheck --error-exitcode 3 "$GPU_TESTS" --gtest_filter="$SMALL_FILTER"
  step racecheck "$SANITIZER" --tool racecheck --error-exitcode 3 "$GPU_TESTS" --gtest_filter="$SMALL_FILTER"
else
  FAILURES+=("sanitizers (compute-sanitizer or test binary missing)")
fi
[[ -x $BENCH ]] && step bench "$BENCH" --json "$OUTDIR/bench_kernels.json" --commit "$COMMIT" \
  || FAILURES+=("bench (binary missing)")

# ---- report ----------------------------------------------------------------------------------------------------
{
  echo "# gancu GPU check"
  echo
  echo "- device: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo unknown)"
  echo "- driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || echo unknown)"
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $COMMIT"
  echo "- build: ${PREBUILT:+prebuilt }$BUILD"
  echo
  echo "## Test results"
  for xml in "$OUTDIR"/gpu_tests.xml "$OUTDIR"/cpu_tests.xml; do
    [[ -f $xml ]] || continue
    echo
    echo "### $(basename "$xml" .xml)"
    echo
    echo '| test | result |'
    echo '|---|---|'
    # One <testcase> per line in gtest XML; a failed one has a <failure> child.
    python3 - "$xml" <<'PY' || echo "(could not parse $xml)"
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = case.get("classname", "") + "." + case.get("name", "")
    if case.find("failure") is not None:
        result = "FAIL"
    elif case.get("result") == "skipped" or case.find("skipped") is not None:
        result = "skipped"
    else:
        result = "pass"
    print(f"| {name} | {result} |")
PY
  done
  echo
  echo "## Sanitizers (filter $SMALL_FILTER)"
  for tool in memcheck racecheck; do
    echo
    echo "### $tool"
    echo '```'
    if [[ -f $OUTDIR/$tool.log ]]; then grep -E "ERROR SUMMARY|RACECHECK SUMMARY|========= " "$OUTDIR/$tool.log" | tail -n 20 || true
    else echo "not run"; fi
    echo '```'
  done
  echo
  echo "## Kernel benchmark"
  echo '```'
  if [[ -f $OUTDIR/bench.log ]]; then sed -n '/^ceilings:/,$p' "$OUTDIR/bench.log"; else echo "not run"; fi
  echo '```'
  echo
  echo "## Failures"
  if [[ ${#FAILURES[@]} -eq 0 ]]; then echo "none"; else printf -- '- %s\n' "${FAILURES[@]}"; fi
} >"$REPORT"

echo "report: $REPORT"
[[ ${#FAILURES[@]} -eq 0 ]]
