#!/usr/bin/env bash
# GPU check: run the GPU tests, compute-sanitizer memcheck and racecheck over the small-shape kernel tests, and the
# kernel benchmark, from a build made here or elsewhere; write OUTDIR/report.md plus the JSON and logs.
#
# Usage:
#   tools/gpu_check.sh --pack BUILD DEST     (on the build machine) pack the GPU binaries of BUILD (gancu_gpu_tests,
#                                            gancu_bench_kernels, gan), the shared libraries they need that a bare GPU
#                                            machine may lack, and a small real data set (Fashion-MNIST's 10,000 test
#                                            images) into DEST/pack.tar.xz (xz: OpenBLAS alone is 36 MB raw, 4 MB packed)
#   tools/gpu_check.sh OUTDIR [options]      run the checks
# Options:
#   --prebuilt DIR     binaries from DIR (a --pack folder, unpacked into OUTDIR/prebuilt, or a build folder; its lib/
#                      goes on LD_LIBRARY_PATH); without it, configure and build in OUTDIR/build, which needs every dev
#                      package CMakeLists.txt asks for (GTest, CLI11, libpng, OpenBLAS, nlohmann-json, cuDNN headers)
#                      besides nvcc, cmake and ninja
#   --libs DIR         more shared libraries, put on LD_LIBRARY_PATH
#   --steps LIST       comma-separated, from gpu_tests,memcheck,racecheck,bench,train,profile,train_bench,cpu_tests
#                      (default: gpu_tests,memcheck,racecheck,bench; cpu_tests too without --prebuilt, whose CPU suite
#                      has this checkout's source path compiled in; CI runs it anyway)
#                        bench        the kernel benchmark (custom vs cuDNN per layer shape, against measured ceilings)
#                        train        `gan train --device cuda --kernels auto` on real images, 1,000 steps, samples kept
#                        profile      `gan bench --profile` on DCGAN-64 b128: time, FLOPs and bytes per op kind
#                        train_bench  bench/gpu_vs_pytorch.sh: the training step against PyTorch (needs its CUDA torch)
#   --budget SEC       stop starting steps, and time out the one running, so that the script ends within SEC seconds
#   --bench-filter S   run only the benchmark groups whose name contains S
#   --results DIR      finally copy report.md, bench_kernels.json, train_samples.png and gpu_check_logs.tar.gz (every
#                      log) into DIR
#
# The device tool (its machine has nvcc 13, cmake, ninja and PyTorch's CUDA wheels, nvidia-cudnn-cu13 among them, but
# none of the dev packages above, so a build there fails at configure). Here, in the repository root, build for sm_90
# and pack (build-gpu* is git-ignored, so the pack travels only when carried; the script checks it is under 32 MiB):
#   cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
#   cmake --build build-gpu -j2 --target gancu_gpu_tests gancu_bench_kernels gan
#   tools/gpu_check.sh --pack build-gpu build-gpu-pack
# then three calls (each command is limited to 10 minutes; $OUT takes at most 8 files, hence --results; commit each
# call's report.md under bench/results/ before the next, which replaces $OUT):
#   run(carry=["build-gpu-pack"], timeout_s=600, command="tools/gpu_check.sh /tmp/gpu-check --prebuilt build-gpu-pack
#       --steps gpu_tests,bench,profile --budget 570 --results \"$OUT\"")
#   run(carry=["build-gpu-pack"], timeout_s=600, command="tools/gpu_check.sh /tmp/gpu-check --prebuilt build-gpu-pack
#       --steps train,train_bench --budget 570 --results \"$OUT\"")
#   run(carry=["build-gpu-pack"], timeout_s=600, command="tools/gpu_check.sh /tmp/gpu-check --prebuilt build-gpu-pack
#       --steps memcheck,racecheck --budget 570 --results \"$OUT\"")
# The CUDA runtime, cuBLAS and cuDNN are not packed (cuBLASLt alone is ~500 MB): they are looked up on the GPU machine
# in /usr/local/cuda* and in python3's nvidia/*/lib wheel folders; env.log records what each binary resolved to.
# Every step's failure is recorded in the report; the script carries on and exits non-zero at the end if any failed.
set -euo pipefail

usage() { sed -n '2,46p' "$0"; exit 2; }
[[ $# -ge 1 ]] || usage

# ---- pack (build machine) --------------------------------------------------------------------------------------
# Libraries every Linux GPU machine has in a compatible (same or newer) version: glibc's, the C++ runtime, zlib. A
# copy of these made here would, first on LD_LIBRARY_PATH, shadow the machine's newer ones for every program the
# script starts. The driver and the CUDA/cuDNN libraries are the machine's own (and far too big to carry).
is_machine_library() {
  case $1 in
    linux-vdso.so* | ld-linux*.so* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libutil.so* | \
      libresolv.so* | libmvec.so* | libstdc++.so* | libgcc_s.so* | libz.so*) return 0 ;;
    libcuda.so* | libnvidia-*.so* | libcudart.so* | libcublas.so* | libcublasLt.so* | libcudnn*.so* | libnvrtc*.so* | \
      libnvJitLink.so* | libcufft*.so* | libcurand.so* | libcusparse*.so* | libcusolver*.so* | libnccl.so*) return 0 ;;
  esac
  return 1
}

if [[ $1 == --pack ]]; then
  [[ $# -eq 3 ]] || usage
  BUILD=$2
  DEST=$3
  # DEST is replaced: refuse anything but an empty folder or an earlier pack.
  if [[ -e $DEST && ! -f $DEST/MANIFEST.txt && -n $(ls -A "$DEST" 2>/dev/null) ]]; then
    echo "gpu_check --pack: $DEST exists and is not an earlier pack; not replacing it" >&2
    exit 1
  fi
  rm -rf "$DEST"
  STAGE=$(mktemp -d)
  trap 'rm -rf "$STAGE"' EXIT
  mkdir -p "$DEST" "$STAGE/lib" "$STAGE/data"
  BINS=(gancu_gpu_tests gancu_bench_kernels gan)
  for bin in "${BINS[@]}"; do
    [[ -x $BUILD/$bin ]] || { echo "gpu_check --pack: $BUILD/$bin missing: build it first" >&2; exit 1; }
    cp "$BUILD/$bin" "$STAGE/"
  done
  # name => path lines of every library the binaries load (transitively, as ldd lists them).
  (cd "$STAGE" && ldd "${BINS[@]}") | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
      is_machine_library "$name" || cp -L "$path" "$STAGE/lib/$name"
    done
  if (cd "$STAGE" && ldd "${BINS[@]}") | grep -q 'not found'; then
    echo "gpu_check --pack: unresolved libraries here:" >&2
    (cd "$STAGE" && ldd "${BINS[@]}") | grep 'not found' >&2
    exit 1
  fi
  # Real images for the `train` step (the GPU machine has no Debian data packages).
  FASHION=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  if [[ -f $FASHION ]]; then cp "$FASHION" "$STAGE/data/"
  else echo "gpu_check --pack: $FASHION missing (apt-get install dataset-fashion-mnist); the train step will fail" >&2; fi
  {
    echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(cd "$BUILD" && pwd)"
    echo "commit $(git -C "$(dirname "${BASH_SOURCE[0]}")/.." describe --always --dirty 2>/dev/null || echo unknown)"
    grep -E '^CMAKE_CUDA_ARCHITECTURES|^CMAKE_BUILD_TYPE' "$BUILD/CMakeCache.txt" 2>/dev/null || true
    echo "newest glibc symbol version needed: $(objdump -T "$STAGE"/gancu_* "$STAGE"/gan "$STAGE"/lib/* 2>/dev/null |
      grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
    echo "packed libraries: $(cd "$STAGE/lib" && ls | tr '\n' ' ')"
    echo "packed data: $(cd "$STAGE/data" && ls | tr '\n' ' ')"
    echo "ldd here:"
    (cd "$STAGE" && ldd "${BINS[@]}")
  } >"$STAGE/MANIFEST.txt"
  cp "$STAGE/MANIFEST.txt" "$DEST/"
  tar -C "$STAGE" -cf - . | xz -T2 -6 >"$DEST/pack.tar.xz"
  size=$(du -sb "$DEST" | cut -f1)
  echo "packed $DEST: $((size / 1048576)) MiB ($(du -sb "$STAGE" | cut -f1 | awk '{printf "%d", $1 / 1048576}') MiB unpacked)"
  grep -E '^(newest glibc|packed libraries|packed data)' "$DEST/MANIFEST.txt"
  # The device tool carries at most 64 MiB, the working tree included.
  if ((size > 32 * 1048576)); then
    echo "gpu_check --pack: $DEST is over 32 MiB, too big to carry with the working tree" >&2
    exit 1
  fi
  exit 0
fi

# ---- options ---------------------------------------------------------------------------------------------------
OUTDIR=$1
shift
PREBUILT=""
LIBDIR=""
STEPS=""
BUDGET=0
BENCH_FILTER=""
RESULTS=""
while [[ $# -gt 0 ]]; do
  [[ $1 == -h || $1 == --help ]] && usage
  [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; usage; }
  case $1 in
    --prebuilt) PREBUILT=$2 ;;
    --libs) LIBDIR=$2 ;;
    --steps) STEPS=$2 ;;
    --budget) BUDGET=$2 ;;
    --bench-filter) BENCH_FILTER=$2 ;;
    --results) RESULTS=$2 ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
  shift 2
done
if [[ -z $STEPS ]]; then
  STEPS=gpu_tests,memcheck,racecheck,bench
  [[ -n $PREBUILT ]] || STEPS+=,cpu_tests
fi
for s in ${STEPS//,/ }; do
  case $s in gpu_tests | memcheck | racecheck | bench | train | profile | train_bench | cpu_tests) ;;
    *) echo "unknown step: $s" >&2; usage ;;
  esac
done
wanted() { [[ ,$STEPS, == *,$1,* ]]; }
[[ $BUDGET =~ ^[0-9]+$ ]] || { echo "--budget expects seconds" >&2; usage; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
# What an earlier run left here would otherwise land in this run's report and archive.
for f in env nvidia_smi configure build gpu_tests cpu_tests memcheck racecheck bench train profile train_bench; do
  rm -f "$OUTDIR/$f.log"
done
rm -rf "$OUTDIR"/gpu_tests.xml "$OUTDIR"/cpu_tests.xml "$OUTDIR"/bench_kernels.json "$OUTDIR"/report.md "$OUTDIR"/train-run
# A --pack folder travels compressed: unpack it here.
if [[ -n $PREBUILT && -f $PREBUILT/pack.tar.xz ]]; then
  rm -rf "$OUTDIR/prebuilt"
  mkdir -p "$OUTDIR/prebuilt"
  if command -v xz >/dev/null; then xz -dc "$PREBUILT/pack.tar.xz"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$PREBUILT/pack.tar.xz"
  fi | tar -C "$OUTDIR/prebuilt" -xf -
  PREBUILT=$OUTDIR/prebuilt
fi
REPORT=$OUTDIR/report.md
FAILURES=()
START=$SECONDS
RESERVE=20  # seconds kept for the report and the results when --budget is given

# Runs "$@" with output to OUTDIR/<name>.log, under the time left; records a failure instead of stopping.
step() {
  local name=$1
  shift
  local limit=()
  if ((BUDGET > 0)); then
    local left=$((BUDGET - (SECONDS - START) - RESERVE))
    if ((left < 10)); then
      echo "== $name: skipped, out of time"
      FAILURES+=("$name (not run: --budget spent)")
      return 0
    fi
    limit=(timeout --kill-after=10 "$left")
  fi
  echo "== $name: $*"
  local t0=$SECONDS rc=0
  "${limit[@]}" "$@" >"$OUTDIR/$name.log" 2>&1 || rc=$?
  if ((rc == 0)); then
    echo "   ok ($((SECONDS - t0)) s)"
  elif ((BUDGET > 0 && (rc == 124 || rc == 137))); then
    echo "   TIMED OUT after $((SECONDS - t0)) s, see $name.log"
    FAILURES+=("$name (timed out after $((SECONDS - t0)) s)")
  else
    echo "   FAILED (exit $rc, $((SECONDS - t0)) s), see $name.log"
    FAILURES+=("$name (exit $rc)")
  fi
  return 0
}

# ---- environment -----------------------------------------------------------------------------------------------
export PATH="$PATH:/usr/local/cuda/bin"
# A pack records the commit it was built from (the working tree that travels to a GPU machine has no .git).
PACKED_COMMIT=""
[[ -n $PREBUILT && -f $PREBUILT/MANIFEST.txt ]] && PACKED_COMMIT=$(awk '$1 == "commit" {print $2; exit}' "$PREBUILT/MANIFEST.txt")
COMMIT=${GANCU_COMMIT:-${PACKED_COMMIT:-$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)}}
export GANCU_COMMIT=$COMMIT

# Folders that may hold the CUDA toolkit's and cuDNN's shared libraries: the toolkit's, then python3's NVIDIA wheels
# (nvidia/cudnn/lib, nvidia/cu13/lib, …; PyTorch's cuDNN comes as one).
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
LD_PATH=""
[[ -n $LIBDIR ]] && LD_PATH=$(cd "$LIBDIR" && pwd)
if [[ -n $PREBUILT && -d $PREBUILT/lib ]]; then
  LD_PATH="${LD_PATH:+$LD_PATH:}$(cd "$PREBUILT/lib" && pwd)"
fi
while read -r d; do
  [[ -n $d ]] && LD_PATH="${LD_PATH:+$LD_PATH:}$d"
done < <(cuda_library_dirs)
export LD_LIBRARY_PATH="$LD_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CUDNN_WHEEL=$(python3 -c 'import nvidia.cudnn as m, os; print(os.path.realpath(list(m.__path__)[0]))' 2>/dev/null || true)
if [[ -n $CUDNN_WHEEL && -d $CUDNN_WHEEL/include ]]; then
  export CUDNN_ROOT=${CUDNN_ROOT:-$CUDNN_WHEEL}  # for the configure step of a build here
fi

# ---- build -----------------------------------------------------------------------------------------------------
if [[ -n $PREBUILT ]]; then
  BUILD=$(cd "$PREBUILT" && pwd)
else
  BUILD=$OUTDIR/build
  step configure cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
  step build cmake --build "$BUILD" --target gancu_gpu_tests gancu_tests gancu_bench_kernels gan
fi
GPU_TESTS=$BUILD/gancu_gpu_tests
CPU_TESTS=$BUILD/gancu_tests
BENCH=$BUILD/gancu_bench_kernels
GAN=$BUILD/gan

{
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "cuDNN wheel: ${CUDNN_WHEEL:-none}"
  [[ -f $BUILD/MANIFEST.txt ]] && cat "$BUILD/MANIFEST.txt"
  command -v nvcc >/dev/null && nvcc --version | tail -2
  for bin in "$GPU_TESTS" "$BENCH" "$GAN"; do
    [[ -x $bin ]] || continue
    echo "ldd $bin:"
    ldd "$bin" || true
  done
} >"$OUTDIR/env.log" 2>&1
for bin in "$GPU_TESTS" "$BENCH" "$GAN"; do
  if [[ -x $bin ]] && ldd "$bin" 2>/dev/null | grep -q 'not found'; then
    FAILURES+=("$(basename "$bin"): $(ldd "$bin" | awk '/not found/ {print $1}' | tr '\n' ' ')not found (env.log)")
  fi
done

# ---- tests, sanitizers, benchmark ------------------------------------------------------------------------------
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null |
  head -1 || true)
SMALL_FILTER='*Small*'
step nvidia_smi nvidia-smi
if wanted gpu_tests; then
  if [[ -x $GPU_TESTS ]]; then step gpu_tests "$GPU_TESTS" --gtest_output="xml:$OUTDIR/gpu_tests.xml"
  else FAILURES+=("gpu_tests (binary missing)"); fi
fi
if wanted cpu_tests; then
  if [[ -x $CPU_TESTS ]]; then step cpu_tests "$CPU_TESTS" --gtest_output="xml:$OUTDIR/cpu_tests.xml"
  else FAILURES+=("cpu_tests (binary missing)"); fi
fi
for tool in memcheck racecheck; do
  wanted $tool || continue
  if [[ -n $SANITIZER && -x $GPU_TESTS ]]; then
    step $tool "$SANITIZER" --tool $tool --error-exitcode 3 "$GPU_TESTS" --gtest_filter="$SMALL_FILTER"
  else
    FAILURES+=("$tool (compute-sanitizer or test binary missing)")
  fi
done
if wanted bench; then
  if [[ -x $BENCH ]]; then
    step bench "$BENCH" --json "$OUTDIR/bench_kernels.json" --commit "$COMMIT" ${BENCH_FILTER:+--filter "$BENCH_FILTER"}
  else
    FAILURES+=("bench (binary missing)")
  fi
fi

TRAIN_DATA=""
for d in "$BUILD/data/t10k-images-idx3-ubyte.gz" /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz; do
  [[ -f $d ]] && { TRAIN_DATA=$d; break; }
done
if wanted train; then
  if [[ -x $GAN && -n $TRAIN_DATA ]]; then
    step train "$GAN" train --device cuda --kernels auto --data "$TRAIN_DATA" --steps 1000 --sample-every 250 \
      --checkpoint-every 500 --out "$OUTDIR/train-run" --no-progress
  else
    FAILURES+=("train (gan or its data missing)")
  fi
fi
if wanted profile; then
  if [[ -x $GAN ]]; then
    step profile "$GAN" bench --device cuda --kernels auto --image-size 64 --channels 3 --batch-size 128 --warmup 10 \
      --steps 100 --profile
  else
    FAILURES+=("profile (gan missing)")
  fi
fi
if wanted train_bench; then
  if [[ -x $GAN ]]; then step train_bench "$REPO/bench/gpu_vs_pytorch.sh" "$BUILD"
  else FAILURES+=("train_bench (gan missing)"); fi
fi

# ---- report ----------------------------------------------------------------------------------------------------
{
  echo "# gancu GPU check"
  echo
  echo "- device: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo unknown)"
  echo "- driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || echo unknown)"
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $COMMIT"
  echo "- build: ${PREBUILT:+prebuilt }$BUILD"
  echo "- steps: $STEPS ($( ((BUDGET > 0)) && echo "budget $BUDGET s, ")took $((SECONDS - START)) s)"
  echo
  echo "## Test results"
  for xml in "$OUTDIR"/gpu_tests.xml "$OUTDIR"/cpu_tests.xml; do
    [[ -f $xml ]] || continue
    echo
    echo "### $(basename "$xml" .xml)"
    echo
    echo '| test | result |'
    echo '|---|---|'
    python3 - "$xml" <<'PY' || echo "(could not parse $xml)"
import collections, sys, xml.etree.ElementTree as ET
rows = []
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = case.get("classname", "") + "." + case.get("name", "")
    if case.find("failure") is not None:
        result = "FAIL"
    elif case.get("result") == "skipped" or case.find("skipped") is not None:
        result = "skipped"
    else:
        result = "pass"
    rows.append((result != "FAIL", name, result))  # failures first
counts = collections.Counter(result for _, _, result in rows)
for _, name, result in sorted(rows, key=lambda r: r[0]):
    print(f"| {name} | {result} |")
print()
print(", ".join(f"{counts[k]} {k}" for k in ("pass", "FAIL", "skipped")))
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
  if [[ -f $OUTDIR/bench.log ]] && grep -q '^ceilings:' "$OUTDIR/bench.log"; then sed -n '/^ceilings:/,$p' "$OUTDIR/bench.log"
  elif [[ -f $OUTDIR/bench.log ]]; then tail -n 20 "$OUTDIR/bench.log"
  else echo "not run"; fi
  echo '```'
  echo
  echo "## Training on the GPU (gan train --device cuda --kernels auto, Fashion-MNIST test images)"
  echo '```'
  if [[ -f $OUTDIR/train.log ]]; then
    tail -n 15 "$OUTDIR/train.log"
    [[ -f $OUTDIR/train-run/metrics.jsonl ]] && { echo "last metrics:"; tail -n 1 "$OUTDIR/train-run/metrics.jsonl"; }
  else echo "not run"; fi
  echo '```'
  echo
  echo "## Step profile (gan bench --profile, DCGAN-64 b128, auto kernels)"
  echo '```'
  if [[ -f $OUTDIR/profile.log ]]; then cat "$OUTDIR/profile.log"; else echo "not run"; fi
  echo '```'
  echo
  echo "## Training step against PyTorch (bench/gpu_vs_pytorch.sh)"
  echo '```'
  if [[ -f $OUTDIR/train_bench.log ]]; then grep -v '^{' "$OUTDIR/train_bench.log" | grep -v '^ *"\|^ *[]{}]' || true
  else echo "not run"; fi
  echo '```'
  echo
  echo "## Failures"
  if [[ ${#FAILURES[@]} -eq 0 ]]; then echo "none"; else printf -- '- %s\n' "${FAILURES[@]}"; fi
} >"$REPORT"
echo "report: $REPORT"

if [[ -n $RESULTS ]]; then
  mkdir -p "$RESULTS"
  cp "$REPORT" "$RESULTS/"
  [[ -f $OUTDIR/bench_kernels.json ]] && cp "$OUTDIR/bench_kernels.json" "$RESULTS/"
  [[ -f $OUTDIR/train-run/samples.png ]] && cp "$OUTDIR/train-run/samples.png" "$RESULTS/train_samples.png"
  (cd "$OUTDIR" && tar czf "$RESULTS/gpu_check_logs.tar.gz" --exclude=./build --exclude=./prebuilt \
    --exclude='*.safetensors' --exclude=./gpu_check_logs.tar.gz .)
  echo "results: $RESULTS (report.md, bench_kernels.json, train_samples.png, gpu_check_logs.tar.gz)"
fi
[[ ${#FAILURES[@]} -eq 0 ]]
