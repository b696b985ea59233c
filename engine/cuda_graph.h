// Private to the CUDA backend: the one place that captures work into a CUDA graph (the step's graph in
// cuda_backend.cu, the timing graphs of --kernels auto in cuda_dispatch.cu).
//
// A capture can fail in three ways: the enqueueing code throws (a cuDNN call refuses), a call that is illegal while
// the stream captures (a synchronisation, a cudaMalloc from this thread) invalidates it, or instantiation fails. Each
// leaves debris: the stream stays in capture mode until the capture is ended, a partial graph exists, and the failing
// runtime call's error (cudaErrorStreamCaptureUnsupported, then cudaErrorStreamCaptureInvalidated from the end) sits
// in the thread's last-error slot, where the next GANCU_CUDA_CHECK_LAUNCH would report it as its own. These errors are
// not sticky: the context stays usable once the slot is cleared. A sticky error (a kernel fault such as
// cudaErrorIllegalAddress) cannot be cleared: then the context is lost and the helper says so.
#pragma once
#include <cuda_runtime.h>

#include <functional>

namespace gancu::cuda_backend {

// An instantiated CUDA graph (owns the cudaGraphExec_t), or empty.
class CapturedGraph {
 public:
  CapturedGraph() = default;
  // Captures, without running it, the work `enqueue` puts on `stream` (thread-local mode: other threads may keep
  // calling cudaMalloc) and instantiates it. On failure the capture is ended, the partial graph destroyed and the
  // thread's error state cleared before the error is thrown: the stream is out of capture mode and the next launch
  // reports only its own errors.
  CapturedGraph(cudaStream_t stream, const std::function<void()>& enqueue);
  ~CapturedGraph();
  CapturedGraph(CapturedGraph&& other) noexcept;
  CapturedGraph& operator=(CapturedGraph&& other) noexcept;
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;

  explicit operator bool() const { return exec_ != nullptr; }
  void launch(cudaStream_t stream) const;

 private:
  cudaGraphExec_t exec_ = nullptr;
};

// How execute() runs a call list's step. The first step of a list runs call by call (the warm-up: cuDNN searches and
// --kernels auto measures, neither of which may happen in a capture); later steps capture a graph for the step's seed
// if there is none yet, before anything of the step is enqueued, then launch it. Profiling or graph replay off: call by
// call always.
enum class StepLaunch { kCallByCall, kCaptureThenLaunch, kLaunch };
StepLaunch step_launch(bool graph_replay, bool profiling, bool warmed_up, bool has_graph_for_seed);

// After a failed CUDA call whose error should not outlive it: clears the thread's last error and returns true when the
// context is still usable, false (after reporting on stderr) when a sticky error remains.
bool clear_cuda_error_state(const char* after);

}  // namespace gancu::cuda_backend
