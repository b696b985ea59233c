#!/usr/bin/env bash
# The DCGAN training step on one GPU, gancu against PyTorch, in one command: for DCGAN-64 at batch 128 and DCGAN-32
# at batch 64 (3 channels), gancu with custom, cuDNN and auto (per-shape) convolutions, each replayed as a CUDA graph
# and launched call by call, against PyTorch eager (cudnn.benchmark), channels_last, CUDA graph and torch.compile.
# Same architecture, init, losses, Adam and batch; TF32 convolutions on both sides (PyTorch's default). Each side
# times every step with CUDA events and reports the median after warm-up. Prints every JSON line and, per
# configuration, the ratio table (gancu images/s over PyTorch images/s, bench/pytorch/ratio_table.py).
#   bench/gpu_vs_pytorch.sh [options] [build-dir] [steps] [configs]
# configs: space-separated size:batch pairs (default "64:128 32:64"); steps: timed steps per run (default 200).
# Options (tools/gpu_check.sh uses them to fit its time cap):
#   --kernels LIST      gancu kernel choices, space-separated (default "custom cudnn auto")
#   --launch LIST       gancu launch modes, space-separated, from graph launches (default "graph launches")
#   --torch-modes LIST  PyTorch modes, comma-separated (default eager,channels_last,cudagraph,compile)
#   --warmup N          untimed steps first, both sides (default 20)
#   --gancu-cap SEC     time limit of each gancu run (default 0: none)
#   --torch-cap SEC     time limit of the PyTorch process, per configuration (default 0: none)
#   --jsonl FILE        also append every result line to FILE
# A run that fails or passes its cap becomes a JSON line with "error", shown in the table; one side failing never
# stops the other from being measured. Environment: PYTHON, the interpreter with CUDA PyTorch (default python3);
# GANCU_LIBRARY_PATH, the LD_LIBRARY_PATH of gan alone (a pack's libraries): PyTorch never sees it.
set -euo pipefail
cd "$(dirname "$0")/.."
kernels="custom cudnn auto"
launches="graph launches"
torch_modes=eager,channels_last,cudagraph,compile
warmup=20
gancu_cap=0
torch_cap=0
jsonl=""
positional=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --kernels | --launch | --torch-modes | --warmup | --gancu-cap | --torch-cap | --jsonl)
      [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; exit 2; }
      case $1 in
        --kernels) kernels=$2 ;;
        --launch) launches=$2 ;;
        --torch-modes) torch_modes=$2 ;;
        --warmup) warmup=$2 ;;
        --gancu-cap) gancu_cap=$2 ;;
        --torch-cap) torch_cap=$2 ;;
        --jsonl) jsonl=$2 ;;
      esac
      shift 2 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
build=${positional[0]:-build}
steps=${positional[1]:-200}
configs=${positional[2]:-64:128 32:64}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs "$@" under a time limit of $1 seconds (0: none); the timeout's exit status (124, 137) says it was cut.
capped() {
  local cap=$1
  shift
  if ((cap > 0)); then timeout --kill-after=5 "$cap" "$@"; else "$@"; fi
}
# One result line, also kept in the results file.
emit() {
  echo "$1"
  echo "$1" >>"$results"
  [[ -z $jsonl ]] || echo "$1" >>"$jsonl"
}
failure_line() {  # framework mode size batch reason
  printf '{"framework": "%s", "mode": "%s", "image_size": %s, "batch_size": %s, "error": "%s"}' "$1" "$2" "$3" "$4" "$5"
}
why() { case $1 in 124 | 137) echo "cut at its ${2} s cap" ;; *) echo "exit $1" ;; esac; }

status=0
for config in $configs; do
  size=${config%%:*}
  batch=${config##*:}
  results=$work/results-$size-$batch.jsonl
  : >"$results"
  for k in $kernels; do
    for launch in $launches; do
      graph_flag=()
      [[ $launch == launches ]] && graph_flag=(--no-cuda-graph)
      # auto measures each shape once; the graph and call-by-call runs share the choices.
      rc=0
      capped "$gancu_cap" env LD_LIBRARY_PATH="${GANCU_LIBRARY_PATH:-${LD_LIBRARY_PATH:-}}" "$build/gan" bench \
        --device cuda --kernels "$k" --kernel-choices "$work/kernel_choices.json" --math tf32 "${graph_flag[@]}" \
        --image-size "$size" --channels 3 --batch-size "$batch" --warmup "$warmup" --steps "$steps" \
        >"$work/gan.out" 2>"$work/gan.err" || rc=$?
      grep -v '^{' "$work/gan.out" || true  # anything else gan printed, for the log
      cat "$work/gan.err" >&2
      line=$(grep '^{' "$work/gan.out" | tail -1 || true)
      if [[ $rc -eq 0 && -n $line ]]; then emit "$line"
      else  # the reason: how it ended, and gan's last line on stderr (quotes and backslashes dropped for the JSON)
        reason="$(why "$rc" "$gancu_cap")$(tail -n 1 "$work/gan.err" 2>/dev/null | cut -c1-200 | tr -d '\042\134' |
          sed 's/^./: &/')"
        emit "$(failure_line gancu "$k/tf32/$launch" "$size" "$batch" "$reason")"
        status=1
      fi
    done
  done
  # PyTorch prints one line per mode as it goes: a cut keeps the modes measured before it.
  rc=0
  capped "$torch_cap" "$python" bench/pytorch/dcgan_step.py --device cuda --image-size "$size" --channels 3 \
    --batch-size "$batch" --warmup "$warmup" --steps "$steps" --modes "$torch_modes" >"$work/torch.out" || rc=$?
  while read -r line; do emit "$line"; done < <(grep '^{' "$work/torch.out" || true)
  if [[ $rc -ne 0 ]]; then
    status=1
    for mode in ${torch_modes//,/ }; do
      grep -q "\"mode\": \"$mode\"" "$work/torch.out" ||
        emit "$(failure_line pytorch "$mode" "$size" "$batch" "$(why "$rc" "$torch_cap")")"
    done
  fi
  echo
  "$python" bench/pytorch/ratio_table.py "$results" || status=1
done
if [[ -f $work/kernel_choices.json ]]; then
  echo
  echo "auto's kernel choices (per pass and shape, median ms of each kernel):"
  cat "$work/kernel_choices.json"
fi
exit $status
