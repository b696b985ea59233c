#!/usr/bin/env bash
# Data-parallel throughput on the CPU: the default DCGAN (32x32, Fashion-MNIST, widths 64) trained by 1 rank and by
# 2 ranks of `mpirun`, one thread each, the same number of steps; the median images/s of the logged steps after the
# first 3 (metrics.jsonl's images_per_s counts the whole group's images).
#   bench/data_parallel_scaling.sh [BUILD_DIR] [STEPS] [BATCH]
# Weak scaling: BATCH per rank on 1 and on 2 ranks. Strong scaling: a global batch of BATCH on 2 ranks (BATCH/2 each).
set -euo pipefail
build=${1:-build}
steps=${2:-20}
batch=${3:-16}
gan=$(realpath "$build/gan")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpirun=(mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1)
common=(--data fashion-mnist --seed 1 --no-progress --sample-every 0 --checkpoint-every 0)
flags=("${common[@]}" --steps "$steps")

median_images_per_s() {
  python3 - "$1" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][3:]
print(f"{statistics.median(r['images_per_s'] for r in rows):.1f} img/s (median step {statistics.median(r['step_ms'] for r in rows):.1f} ms, {len(rows)} steps)")
PY
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git rev-parse --short HEAD)  machine: $(nproc) cores"
echo "DCGAN-32 (defaults), Fashion-MNIST, $steps steps, one thread per rank"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$gan" train "${flags[@]}" --batch-size "$batch" --out "$work/one" 2>/dev/null
echo "1 rank,  batch $batch:               $(median_images_per_s "$work/one/metrics.jsonl")"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$gan" train "${flags[@]}" --batch-size $((batch / 2)) --out "$work/one_half" 2>/dev/null
echo "1 rank,  batch $((batch / 2)):                $(median_images_per_s "$work/one_half/metrics.jsonl")"
"${mpirun[@]}" -np 2 "$gan" train "${flags[@]}" --batch-size "$batch" --out "$work/two" 2>/dev/null
echo "2 ranks, batch $batch per rank (weak): $(median_images_per_s "$work/two/metrics.jsonl")"
"${mpirun[@]}" -np 2 "$gan" train "${flags[@]}" --batch-size $((batch / 2)) --out "$work/two_strong" 2>/dev/null
echo "2 ranks, batch $((batch / 2)) per rank (strong): $(median_images_per_s "$work/two_strong/metrics.jsonl")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# Where a 2-rank step goes: rank 0's op profile (the all-reduce's time includes waiting for the other rank).
"${mpirun[@]}" -np 2 "$gan" train "${common[@]}" --batch-size "$batch" --steps 10 --profile --out "$work/two_profile" 2>&1 |
  grep -E "^op |all_reduce_mean|^total"
