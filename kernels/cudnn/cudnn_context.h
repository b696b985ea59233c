// cuDNN baseline: a Context owns the handle, one plan per (pass, shape, math mode) — descriptors plus the algorithm
// cudnnFind* measured fastest among the acceptable ones — and one workspace grown to the largest plan's need.
// Acceptable means deterministic (the engine promises bit-identical replays) and, in strict fp32, FMA math only:
// no TF32 and no FFT/Winograd transforms, so the baseline does the same class of arithmetic as the custom kernels.
// The first call of a shape plans it: cudnnFind* runs the candidates and synchronises, so plan (warm up) every shape
// before timing or capturing a CUDA graph. Later calls never synchronise.
#pragma once
#include <cudnn.h>

#include <array>
#include <cstddef>
#include <map>
#include <memory>

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
  // The plan of a pass on a conv shape, found (synchronously) on first use; the workspace is grown to fit it.
  const ConvPlan& conv_plan(ConvPass pass, const cuda::detail::ConvGeometry& g, MathMode mode);
  // The shared workspace, at least `bytes` long (null when 0). Growing frees the old buffer after a device sync.
  void* workspace(size_t bytes);

 private:
  using Key = std::array<int, 12>;
  cudnnHandle_t handle_ = nullptr;
  std::map<Key, std::unique_ptr<ConvPlan>> plans_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

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
