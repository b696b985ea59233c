#!/usr/bin/env bash
# The GPU check without a GPU (ctest gpu_check_dry_run; CI): tools/gpu_check.sh must never meet its first real test
# under a lease. Runs its dry run end to end (pack, unpack, libraries, every gtest filter and benchmark group proven to
# match, the PyTorch scripts' arguments, the ratio table on canned lines, report and archive), then a run whose step
# overruns its cap (a hung process that ignores TERM), then a run killed from outside mid-step as the device tool
# does at its limit, the report's parsing of a failed and a cut gtest run and of ncu's CSV, and the race script with
# stand-ins for gan and PyTorch that crash and hang. Skips (77) without the GPU binaries.
#   tests/gpu_check_dry_run.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
src=$2
for bin in gancu_gpu_tests gancu_bench_kernels gan; do
  [[ -x $build/$bin ]] || { echo "SKIPPED: $build/$bin not built (CUDA not found): GPU check not dry-run"; exit 77; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=()
check() {
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; return 0; fi
  echo "FAILED: $what"
  failures+=("$what")
  return 1
}
has_record() { grep -qP "^$1" "$2/logs/steps.tsv"; }  # a steps.tsv line starting with the regex $1

# 1. The whole dry run, packing the build folder as the recipe does (xz -1 here: -6 takes ~20 s of CI's 2 cores).
t0=$SECONDS
"$src/tools/gpu_check.sh" --dry-run --prebuilt "$build" --work "$work/w1" --results "$work/r1" >"$work/run1.txt" 2>&1
rc=$?
cat "$work/run1.txt"
echo "-- dry run: $((SECONDS - t0)) s, exit $rc"
check "report.md and logs.tar.gz written" test -s "$work/r1/report.md" -a -s "$work/r1/logs.tar.gz"
check "at most 8 result files" test "$(find "$work/r1" -type f | wc -l)" -le 8
check "the archive holds the records of every step" \
  bash -c "tar -xzOf '$work/r1/logs.tar.gz' logs/steps.tsv | grep -qP '^step\tcompile\t'"
check "the pack was made and unpacked" has_record 'sub\tsetup/unpack\tok' "$work/w1"
check "every library resolved" has_record 'sub\tsmoke/libraries\tok' "$work/w1"
for step in smoke kernels backend race bench profile; do
  check "step $step passes its dry run" has_record "step\t$step\tok\t" "$work/w1"
done
check "every gtest filter matches tests" bash -c "! grep -q 'matches no test' '$work/w1/logs/steps.tsv'"
check "the ratio table is made from canned lines" grep -q 'custom/tf32/graph 2000 img/s' "$work/r1/report.md"
check "the race scripts pass their checks" has_record 'sub\trace/race_checks\tok' "$work/w1"
check "every benchmark group is in the binary and selected alone" has_record 'sub\tbench/bench_checks\tok' "$work/w1"
if ! check "the sanitizer filter reaches every required suite" has_record 'sub\tsanitizers/sanitizer_filter\tok' \
  "$work/w1"; then
  cat "$work/w1/logs/sanitizer_filter.log"
fi

# 2. A step that overruns its cap (its process ignores TERM): recorded as timed out, the next steps still run, a step
# left without time is recorded as not run, and the whole run still ends within its budget.
t0=$SECONDS
"$src/tools/gpu_check.sh" --dry-run --prebuilt "$work/w1/pack" --work "$work/w2" --results "$work/r2" --budget 48 \
  --simulate-overrun kernels >"$work/run2.txt" 2>&1
elapsed=$((SECONDS - t0))
cat "$work/run2.txt"
echo "-- overrun run: $elapsed s of a 48 s budget"
check "the overrunning step is recorded as timed out" has_record 'step\tkernels\ttimed out' "$work/w2"
check "the report says so" grep -q '^| 1 kernel tests | timed out' "$work/r2/report.md"
check "the steps after it still run" has_record 'step\tbench\tok' "$work/w2"
check "a step without time is recorded as not run" has_record 'step\tcompile\tnot run\t.*budget spent' "$work/w2"
check "the run ends within its budget" test "$elapsed" -le 48

# 3. Killed from outside during a step, as the device tool does at its limit: the report and archive of the steps
# done are there, and the report names the step that was running.
timeout -s KILL 12 "$src/tools/gpu_check.sh" --dry-run --prebuilt "$work/w1/pack" --work "$work/w3" \
  --results "$work/r3" --budget 48 --simulate-overrun race >"$work/run3.txt" 2>&1
check "a killed run leaves its report and archive" test -s "$work/r3/report.md" -a -s "$work/r3/logs.tar.gz"
check "the report names the step cut" grep -q 'running (cut' "$work/r3/report.md"
check "the steps done before are in it" grep -q '^| 0 smoke | ok' "$work/r3/report.md"

# 4. The report's test sections: a failed test's message from the XML, a cut run's test from its log.
mkdir -p "$work/w4/logs" "$work/r4"
printf 'step\tkernels\tFAILED\t30\t60\t\nsub\tkernels/kernels_small\tFAILED\t30\t60\texit 1\n' >"$work/w4/logs/steps.tsv"
cat >"$work/w4/logs/kernels_small.0.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="1"><testsuite name="LossesCuda" tests="2" failures="1">
<testcase name="SmallSizes" status="run" result="completed" classname="LossesCuda">
<failure message="tests/gpu/test_losses_cuda.cpp:70&#x0A;Value of: close_rel_l2(got, want, 1e-05, {257})&#x0A;shape [257]: relative L2 error 0.0312 &gt; tolerance 1e-05; 1 non-finite; first:&#x0A;    at [3]: got nan, expected 0.25" type=""/>
</testcase>
<testcase name="SmallRejectsEmpty" status="run" result="completed" classname="LossesCuda"/>
</testsuite></testsuites>
XML
echo 'failure output' >"$work/w4/logs/kernels_small.0.log"
printf '[ RUN      ] AdamCuda.SmallTensorList\n[       OK ] AdamCuda.SmallTensorList (3 ms)\n[ RUN      ] AdamCuda.Dcgan64Generator\nstep 2 of 4\n' \
  >"$work/w4/logs/kernels_model.0.log"
cat >"$work/w4/logs/ncu.log" <<'NCU'
==PROF== Connected to process 1234 (/tmp/prebuilt/gan)
{"framework": "gancu", "mode": "custom/tf32/launches"}
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","dram__throughput.avg.pct_of_peak_sustained_elapsed","gpu__time_duration.sum","launch__registers_per_thread","sm__throughput.avg.pct_of_peak_sustained_elapsed","sm__warps_active.avg.pct_of_peak_sustained_active"
"","","","","","","","","","","","%","nsecond","register/thread","%","%"
"0","1234","gan","127.0.0.1","fill_uniform_kernel","1","7","(256, 1, 1)","(132, 1, 1)","0","9.0","80.5","2,048","16","10.2","90.1"
"1","1234","gan","127.0.0.1","conv_implicit_gemm_tf32","1","7","(128, 1, 1)","(512, 1, 1)","0","9.0","20.5","150,016","128","75.2","45.3"
"2","1234","gan","127.0.0.1","conv_implicit_gemm_tf32","1","7","(128, 1, 1)","(512, 1, 1)","0","9.0","22.5","149,984","128","74.8","44.7"
NCU
python3 "$src/tools/gpu_check_report.py" "$work/w4" "$work/r4" --summary kernels >"$work/summary4.txt"
check "a failed test's message is in the report" grep -q 'at \[3\]: got nan, expected 0.25' "$work/r4/report.md"
check "a cut run's running test is in the report" grep -q 'cut: AdamCuda.Dcgan64Generator' "$work/r4/report.md"
check "ncu's CSV becomes the top-kernel table" grep -qF "| \`conv_implicit_gemm_tf32\` | 2 | 300.0 | 99.3 | 75 | 22 | 45 | 128 |" \
  "$work/r4/report.md"
check "the summary line counts them" grep -q '2 pass, 1 FAIL, 1 cut' "$work/summary4.txt"

# 5. The race script with stand-ins for gan (one mode measured, one crashing, one hanging) and for PyTorch (one mode
# measured, then hanging): every failure becomes a row, each side's cap holds, the table still comes out.
mkdir -p "$work/fake"
cat >"$work/fake/gan" <<'GAN'
#!/usr/bin/env bash
kernels=""
while [[ $# -gt 0 ]]; do [[ $1 == --kernels ]] && kernels=$2; shift; done
case $kernels in
  custom) echo '{"framework": "gancu", "mode": "custom/tf32/graph", "image_size": 64, "batch_size": 128, "median_step_ms": 64.0, "images_per_s": 2000.0}' ;;
  cudnn) echo "CUDA error: an illegal memory access was encountered" >&2; exit 3 ;;
  auto) sleep 100 ;;
esac
GAN
cat >"$work/fake/python" <<'PY'
#!/usr/bin/env bash
if [[ $1 == */dcgan_step.py ]]; then
  echo '{"framework": "pytorch 2.11.0+cu130", "mode": "eager", "image_size": 64, "batch_size": 128, "median_step_ms": 42.7, "images_per_s": 3000.0}'
  exec sleep 100
fi
exec python3 "$@"
PY
chmod +x "$work/fake/gan" "$work/fake/python"
t0=$SECONDS
PYTHON=$work/fake/python "$src/bench/gpu_vs_pytorch.sh" --kernels "custom cudnn auto" --launch graph \
  --torch-modes eager,cudagraph --gancu-cap 2 --torch-cap 3 "$work/fake" 5 64:128 >"$work/race5.txt" 2>&1
cat "$work/race5.txt"
check "the race's caps hold" test $((SECONDS - t0)) -le 15
check "a crashing gancu mode is a row" grep -q 'cudnn/tf32/graph failed  *exit 3' "$work/race5.txt"
check "a hanging gancu mode is cut at its cap" grep -q 'auto/tf32/graph failed  *cut at its 2 s cap' "$work/race5.txt"
check "the other side is still measured" grep -q 'custom/tf32/graph 2000 img/s  *0.67x' "$work/race5.txt"
check "PyTorch's cut mode is named" grep -q 'PyTorch cudagraph failed: cut at its 3 s cap' "$work/race5.txt"

if ((${#failures[@]})); then
  echo "gpu_check dry run: ${#failures[@]} check(s) failed:"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo "gpu_check dry run: every check passed"
