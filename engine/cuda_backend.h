// The CUDA backend: the engine's ops as the hand-written kernels of kernels/cuda (or cuDNN for convolutions), all on
// one CUDA stream owned by the backend, and the step replayed as one CUDA graph.
//
// How a step runs (engine/cuda_backend.cu):
//  - The first execute() of a call list launches every call eagerly (that is the step; it also lets cuDNN run its
//    synchronising algorithm search and cuBLAS initialise outside any capture). The second captures the list into a
//    CUDA graph (engine/cuda_graph.h) before enqueueing anything, then launches it; every later execute() is one
//    cudaGraphLaunch. A capture that fails throws with nothing of the step enqueued and the host state untouched, so
//    the step can simply be run again. With graph_replay off, every step launches call by call.
//  - A graph holds the pointers it was captured with, so every buffer a graph may use outlives it: the plan's memory
//    (release() drops all graphs), cuBLAS's workspace (owned by the backend, set once), and the cuDNN workspaces (a
//    workspace the cuDNN context outgrows is kept until release() has dropped the graphs).
//  - A captured graph replays fixed kernel arguments, so the step number and the optimisers' counters live on the
//    device: random ops and Adam read them there, and the step's last kernel advances the step. The host StepState
//    stays the source of truth: execute() advances the host counters the way the CPU backend's Adam does, and uploads
//    the host state whenever it differs from what the device is known to hold (first run, checkpoint loaded).
//  - execute() never synchronises; download() does (it waits for the stream), which is when a step's results are
//    first needed on the host.
// Several plans may share one backend: each call list gets its own device state and graph. Releasing any memory
// drops every captured graph (a new plan could reuse the freed addresses); live plans simply capture again.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/backend.h"
#include "kernels/cuda/math_mode.h"

namespace gancu {

struct CudaBackendOptions {
  // Which convolution kernels run conv2d / conv_transpose2d and their gradients: the hand-written implicit GEMMs
  // (kernels/cuda), cuDNN (kernels/cudnn, deterministic algorithms only), or per pass and shape whichever measured
  // faster on this device (kAuto: the first step times both on its own data, then runs the winner; see
  // engine/kernel_choice.h). Everything else is always the custom kernels.
  enum Kernels { kCustom, kCudnn, kAuto };
  Kernels kernels = kCustom;
  // kAuto: where the choices are remembered ("" keeps them in memory for this backend's life). An existing file's
  // choices for this device and math are used without measuring again; new ones are added to it (atomically).
  std::string kernel_choice_file;
  // Convolution (and linear) arithmetic: TF32 tensor cores by default, as PyTorch does for convolutions; kFp32 for
  // strict IEEE fp32 (bit-for-bit comparable with the CPU to rounding, no reduced-precision products).
  cuda::MathMode math = cuda::MathMode::kTf32;
  // Capture the step once as a CUDA graph and replay it (one launch per step instead of hundreds).
  bool graph_replay = true;
};

namespace cudnn {
class Context;
}

// Throws std::runtime_error when the build has no CUDA (GANCU_HAVE_CUDA undefined) or no device is usable.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options = {});

// True when this build has the CUDA backend and a CUDA device is present (never throws).
bool cuda_backend_available();

// Tests and diagnostics: the cuDNN context of a CUDA backend whose kernels are kCudnn or kAuto (its workspace
// bookkeeping); null for any other backend.
cudnn::Context* cudnn_context_of(Backend& backend);

// Tests and diagnostics: how a CUDA backend has run its steps so far, so that a test can prove a step was captured and
// replayed rather than launched call by call. Zeros for any other backend.
struct CudaLaunchCounts {
  int64_t call_by_call_steps = 0;  // warm-up, profiled, or --no-cuda-graph steps
  int64_t captures = 0;            // graphs captured (one per call list and seed, again after release())
  int64_t graph_launches = 0;      // steps run as one graph launch
};
CudaLaunchCounts cuda_launch_counts(Backend& backend);

}  // namespace gancu
