// The CUDA backend's graph capture (see cuda_graph.h).
#include "engine/cuda_graph.h"

#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/cuda/check.h"

namespace gancu::cuda_backend {
namespace {

// Ends a capture that is being abandoned and destroys whatever partial graph it returns. An invalidated capture
// returns cudaErrorStreamCaptureInvalidated and no graph; either way the stream leaves capture mode.
void abandon_capture(cudaStream_t stream) {
  cudaGraph_t partial = nullptr;
  cudaStreamEndCapture(stream, &partial);  // its error is expected and cleared below
  if (partial) cudaGraphDestroy(partial);
  clear_cuda_error_state("an abandoned CUDA-graph capture");
}

}  // namespace

StepLaunch step_launch(bool graph_replay, bool profiling, bool warmed_up, bool has_graph_for_seed) {
  if (!graph_replay || profiling || !warmed_up) return StepLaunch::kCallByCall;
  return has_graph_for_seed ? StepLaunch::kLaunch : StepLaunch::kCaptureThenLaunch;
}

bool clear_cuda_error_state(const char* after) {
  cudaGetLastError();  // resets a non-sticky error
  // A sticky error is not reset: it is still there, and every later call will return it.
  const cudaError_t left = cudaPeekAtLastError();
  if (left == cudaSuccess) return true;
  std::fprintf(stderr, "gancu CUDA backend: after %s the CUDA context is unusable: %s\n", after,
               cudaGetErrorString(left));
  return false;
}

CapturedGraph::CapturedGraph(cudaStream_t stream, const std::function<void()>& enqueue) {
  const cudaError_t begun = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (begun != cudaSuccess) {  // e.g. the stream is capturing already: nothing to undo but the error
    clear_cuda_error_state("a failed cudaStreamBeginCapture");
    GANCU_CUDA_CHECK(begun);
  }
  try {
    enqueue();
  } catch (...) {
    abandon_capture(stream);
    throw;
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (ended != cudaSuccess) {  // invalidated by a call that is illegal under capture, though nothing threw
    if (graph) cudaGraphDestroy(graph);
    clear_cuda_error_state("an invalidated CUDA-graph capture");
    throw std::runtime_error(std::string("CUDA graph capture failed: ") + cudaGetErrorString(ended) +
                             " (a call in the captured work is not allowed while a stream captures)");
  }
  const cudaError_t instantiated = cudaGraphInstantiate(&exec_, graph, 0);
  cudaGraphDestroy(graph);
  if (instantiated != cudaSuccess) {
    exec_ = nullptr;
    clear_cuda_error_state("a failed cudaGraphInstantiate");
    throw std::runtime_error(std::string("cudaGraphInstantiate failed: ") + cudaGetErrorString(instantiated));
  }
}

CapturedGraph::~CapturedGraph() {
  if (exec_ && cudaGraphExecDestroy(exec_) != cudaSuccess) clear_cuda_error_state("cudaGraphExecDestroy");
}

CapturedGraph::CapturedGraph(CapturedGraph&& other) noexcept : exec_(std::exchange(other.exec_, nullptr)) {}

CapturedGraph& CapturedGraph::operator=(CapturedGraph&& other) noexcept {
  if (this != &other) {
    CapturedGraph dropped(std::move(*this));
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

void CapturedGraph::launch(cudaStream_t stream) const {
  if (exec_ == nullptr) throw std::logic_error("CUDA backend: launch of an empty graph");
  GANCU_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

}  // namespace gancu::cuda_backend
