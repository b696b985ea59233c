// cuDNN baseline: a Context owns the handle, one plan per (pass, shape, math mode) — descriptors plus the algorithm
// cudnnFind* measured fastest among the acceptable ones — and one workspace grown to the largest plan's need.
// Acceptable means deterministic (the engine promises bit-identical replays) and, in strict fp32, FMA math only:
// no TF32 and no FFT/Winograd transforms, so the baseline does the same class of arithmetic as the custom kernels.
// The first call of a shape plans it: the handle is bound to the call's stream, the stream drained, and cudnnFind*
// runs the candidates and synchronises. So plan (warm up) every shape before timing or capturing a CUDA graph; a
// capture that meets an unplanned shape is refused. Later calls never synchronise.
//
// Workspace lifetime: a CUDA graph captured with the workspace holds its address. So when a new plan needs a larger
// workspace, the old buffer is not freed but retired: it stays allocated until the owner says no graph can still use
// it (release_retired_workspaces) or the Context is destroyed. The workspace grows at least twofold, so the retired
// buffers together are never larger than the current one.
#pragma once
#include <cudnn.h>

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <vector>

#include "kernels/cuda/conv_problems.cuh"
#include "kernels/cuda/math_mode.h"

namespace gancu::cudnn {

using cuda::MathMode;

[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* what, const char* file, int line);

}  // namespace gancu::cudnn

#define GANCU_CUDNN_CHECK(call)                                                                      \
  do {                                                                                               \
    cudnnStatus_t gancu_status_ = (call);                                                            \
    if (gancu_status_ != CUDNN_STATUS_SUCCESS)                                                       \
      ::gancu::cudnn::throw_cudnn_error(gancu_status_, #call, __FILE__, __LINE__);                   \
  } while (0)

namespace gancu::cudnn {

// The three convolution passes cuDNN offers; a transposed conv is planned as the passes of its adjoint conv.
enum class ConvPass { kForward, kBackwardData, kBackwardFilter };

// Descriptors of one conv (x = conv input, y = conv output, w = filter) and the chosen algorithm for one pass.
struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algo = 0;  // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t according to the pass
  size_t workspace_bytes = 0;

  ConvPlan() = default;
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
  ~ConvPlan();
};

class Context {
 public:
  Context();
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  cudnnHandle_t handle() const { return handle_; }
  // Binds the handle to `stream` (cuDNN's calls, the algorithm search included, run on the handle's stream). Cheap:
  // every entry point calls it before anything else.
  void bind(cudaStream_t stream);
  // The plan of a pass on a conv shape, bound to `stream`. On first use the search waits for the work queued on the
  // stream (so its timings do not share the GPU with it), runs synchronously, and grows the workspace to fit.
  // Throws std::logic_error for an unplanned shape while `stream` is capturing a graph (a search cannot be captured).
  const ConvPlan& conv_plan(ConvPass pass, const cuda::detail::ConvGeometry& g, MathMode mode, cudaStream_t stream);
  // The shared workspace, at least `bytes` long (null when 0 and never grown). Growing retires the old buffer.
  void* workspace(size_t bytes);

  // Frees the retired workspaces. The caller promises that no work or graph that may use them remains: it has
  // synchronised and destroyed every graph captured before the last growth.
  void release_retired_workspaces() noexcept;
  // Diagnostics (tests): the current workspace, how often it grew, and how many outgrown buffers are still kept.
  const void* workspace_address() const { return workspace_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  int workspace_growths() const { return workspace_growths_; }
  size_t retired_workspaces() const { return retired_.size(); }
  // The stream the handle was bound to when the last algorithm search ran (null before any).
  cudaStream_t last_search_stream() const { return last_search_stream_; }

 private:
  using Key = std::array<int, 12>;
  cudnnHandle_t handle_ = nullptr;
  std::map<Key, std::unique_ptr<ConvPlan>> plans_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  int workspace_growths_ = 0;
  std::vector<void*> retired_;  // outgrown workspaces a captured graph may still use
  cudaStream_t last_search_stream_ = nullptr;
};

// The size a workspace of `current` bytes grows to when `needed` bytes do not fit: at least double, so that the
// retired buffers (current/2 + current/4 + ...) sum to less than the live one.
size_t grown_workspace_bytes(size_t current, size_t needed);

namespace detail {

// The passes on one forward-orientation geometry; `bias` (nullable) is added to the pass's output.
void conv_forward(Context& ctx, const cuda::detail::ConvGeometry& g, MathMode mode, const float* x, const float* w,
                  const float* bias, float* y, cudaStream_t stream);
void conv_backward_data(Context& ctx, const cuda::detail::ConvGeometry& g, MathMode mode, const float* dy,
                        const float* w, const float* bias, float* dx, cudaStream_t stream);
void conv_backward_filter(Context& ctx, const cuda::detail::ConvGeometry& g, MathMode mode, const float* x,
                          const float* dy, float* dw, cudaStream_t stream);

}  // namespace detail
}  // namespace gancu::cudnn
