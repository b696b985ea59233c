#include "kernels/cudnn/cudnn_context.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/check.h"

namespace gancu::cudnn {

void throw_cudnn_error(cudnnStatus_t status, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " +
                           cudnnGetErrorString(status));
}

ConvPlan::~ConvPlan() {
  // Destructors must not throw: statuses are ignored here.
  if (conv) cudnnDestroyConvolutionDescriptor(conv);
  if (w) cudnnDestroyFilterDescriptor(w);
  if (y) cudnnDestroyTensorDescriptor(y);
  if (x) cudnnDestroyTensorDescriptor(x);
}

Context::Context() { GANCU_CUDNN_CHECK(cudnnCreate(&handle_)); }

Context::~Context() {
  // Work queued on any stream may still use the workspaces: wait for the device (destruction is rare).
  cudaDeviceSynchronize();
  for (void* p : retired_) cudaFree(p);
  if (workspace_) cudaFree(workspace_);
  plans_.clear();
  if (handle_) cudnnDestroy(handle_);
}

size_t grown_workspace_bytes(size_t current, size_t needed) {
  if (needed <= current) return current;
  return std::max(needed, current > std::numeric_limits<size_t>::max() / 2 ? needed : 2 * current);
}

void* Context::workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return workspace_;
  // A graph captured earlier may hold the current buffer: retire it instead of freeing it.
  const size_t grown = grown_workspace_bytes(workspace_bytes_, bytes);
  void* fresh = nullptr;
  GANCU_CUDA_CHECK(cudaMalloc(&fresh, grown));
  if (workspace_) retired_.push_back(workspace_);
  workspace_ = fresh;
  workspace_bytes_ = grown;
  ++workspace_growths_;
  return workspace_;
}

void Context::release_retired_workspaces() noexcept {
  // Called from Backend::release(), which Plan's destructor calls: never throw. After a sticky error cudaFree fails;
  // say so once and forget the buffers either way (a second free of the same pointers would be worse).
  cudaError_t first_error = cudaSuccess;
  for (void* p : retired_) {
    const cudaError_t err = cudaFree(p);
    if (first_error == cudaSuccess) first_error = err;
  }
  retired_.clear();
  if (first_error != cudaSuccess)
    std::fprintf(stderr, "gancu cuDNN context: freeing outgrown workspaces failed: %s\n", cudaGetErrorString(first_error));
}

void Context::bind(cudaStream_t stream) { GANCU_CUDNN_CHECK(cudnnSetStream(handle_, stream)); }

namespace {

bool is_transform_algo(ConvPass pass, int algo) {
  switch (pass) {
    case ConvPass::kForward:
      return algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT || algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
             algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    case ConvPass::kBackwardData:
      return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
             algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
             algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
    case ConvPass::kBackwardFilter:
      return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
             algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
  }
  return false;
}

// Picks the fastest acceptable result (cudnnFind* returns them fastest first) and records it in the plan.
template <class Perf> void choose(ConvPass pass, MathMode mode, const std::vector<Perf>& results, ConvPlan& plan) {
  for (const Perf& r : results) {
    if (r.status != CUDNN_STATUS_SUCCESS || r.determinism != CUDNN_DETERMINISTIC) continue;
    const bool tensor_ops = r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (mode == MathMode::kFp32 && (tensor_ops || is_transform_algo(pass, int(r.algo)))) continue;
    // ALLOW_CONVERSION may down-convert fp32 tensors to fp16 (5-bit exponent): not the TF32 contract of math_mode.h.
    if (mode == MathMode::kTf32 && r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    plan.algo = int(r.algo);
    plan.workspace_bytes = r.memory;
    // Strict fp32 keeps the descriptor at FMA math whatever the result reports, so TF32 can never sneak in.
    if (mode == MathMode::kTf32) GANCU_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, r.mathType));
    return;
  }
  throw std::runtime_error("cuDNN: no deterministic algorithm in " + std::string(cuda::to_string(mode)) +
                           " math for this convolution");
}

}  // namespace

const ConvPlan& Context::conv_plan(ConvPass pass, const cuda::detail::ConvGeometry& g, MathMode mode,
                                   cudaStream_t stream) {
  bind(stream);
  const Key key{int(pass), int(mode), g.batch, g.in_channels, g.in_h, g.in_w, g.out_channels, g.out_h, g.out_w,
                g.kernel, g.stride, g.pad};
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;

  // The search synchronises, which would invalidate a capture (and leave it half-recorded): refuse first.
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  GANCU_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing != cudaStreamCaptureStatusNone)
    throw std::logic_error("cuDNN: a convolution shape was first met inside a CUDA-graph capture; run it once eagerly "
                           "first (its algorithm search synchronises)");
  // cudnnFind* runs each candidate on the handle's stream and times it. Let the stream's queued work finish first, so
  // the candidates have the GPU to themselves (the search allocates its own buffers and never touches the caller's
  // tensors, so it cannot race with their producers either way). Work on other streams, of other backends or threads,
  // can still overlap a search: run those searches before training starts.
  GANCU_CUDA_CHECK(cudaStreamSynchronize(stream));
  GANCU_CUDNN_CHECK(cudnnGetStream(handle_, &last_search_stream_));

  auto plan = std::make_unique<ConvPlan>();
  GANCU_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->x));
  GANCU_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->y));
  GANCU_CUDNN_CHECK(cudnnCreateFilterDescriptor(&plan->w));
  GANCU_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&plan->conv));
  GANCU_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.batch, g.in_channels,
                                               g.in_h, g.in_w));
  GANCU_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.batch, g.out_channels,
                                               g.out_h, g.out_w));
  GANCU_CUDNN_CHECK(cudnnSetFilter4dDescriptor(plan->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.out_channels,
                                               g.in_channels, g.kernel, g.kernel));
  GANCU_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(plan->conv, g.pad, g.pad, g.stride, g.stride, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // Strict fp32 must exclude TF32: FMA math. TF32 mode lets cuDNN use tensor cores on fp32 data.
  GANCU_CUDNN_CHECK(
      cudnnSetConvolutionMathType(plan->conv, mode == MathMode::kFp32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));

  int max_count = 0, returned = 0;
  switch (pass) {
    case ConvPass::kForward: {
      GANCU_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> results(size_t(std::max(max_count, 1)));
      GANCU_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(handle_, plan->x, plan->w, plan->conv, plan->y,
                                                             int(results.size()), &returned, results.data()));
      results.resize(size_t(returned));
      choose(pass, mode, results, *plan);
      break;
    }
    case ConvPass::kBackwardData: {
      GANCU_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> results(size_t(std::max(max_count, 1)));
      GANCU_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(handle_, plan->w, plan->y, plan->conv, plan->x,
                                                                  int(results.size()), &returned, results.data()));
      results.resize(size_t(returned));
      choose(pass, mode, results, *plan);
      break;
    }
    case ConvPass::kBackwardFilter: {
      GANCU_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> results(size_t(std::max(max_count, 1)));
      GANCU_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(handle_, plan->x, plan->y, plan->conv, plan->w,
                                                                    int(results.size()), &returned, results.data()));
      results.resize(size_t(returned));
      choose(pass, mode, results, *plan);
      break;
    }
  }
  workspace(plan->workspace_bytes);  // grow now, while planning synchronises anyway
  return *plans_.emplace(key, std::move(plan)).first->second;
}

namespace detail {
namespace {

// y += bias broadcast over [batch, channels, h, w].
void add_bias(Context& ctx, const float* bias, cudnnTensorDescriptor_t y_desc, int channels, float* y) {
  if (!bias) return;
  cudnnTensorDescriptor_t bias_desc = nullptr;
  GANCU_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias_desc));
  const float one = 1.0f;
  const cudnnStatus_t set = cudnnSetTensor4dDescriptor(bias_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, channels, 1, 1);
  const cudnnStatus_t add =
      set == CUDNN_STATUS_SUCCESS ? cudnnAddTensor(ctx.handle(), &one, bias_desc, bias, &one, y_desc, y) : set;
  cudnnDestroyTensorDescriptor(bias_desc);
  GANCU_CUDNN_CHECK(add);
}

}  // namespace

void conv_forward(Context& ctx, const cuda::detail::ConvGeometry& g, MathMode mode, const float* x, const float* w,
                  const float* bias, float* y, cudaStream_t stream) {
  const ConvPlan& plan = ctx.conv_plan(ConvPass::kForward, g, mode, stream);  // binds the handle to the stream
  const float one = 1.0f, zero = 0.0f;
  GANCU_CUDNN_CHECK(cudnnConvolutionForward(ctx.handle(), &one, plan.x, x, plan.w, w, plan.conv,
                                            cudnnConvolutionFwdAlgo_t(plan.algo), ctx.workspace(plan.workspace_bytes),
                                            plan.workspace_bytes, &zero, plan.y, y));
  add_bias(ctx, bias, plan.y, g.out_channels, y);
}

void conv_backward_data(Context& ctx, const cuda::detail::ConvGeometry& g, MathMode mode, const float* dy,
                        const float* w, const float* bias, float* dx, cudaStream_t stream) {
  const ConvPlan& plan = ctx.conv_plan(ConvPass::kBackwardData, g, mode, stream);  // binds the handle to the stream
  const float one = 1.0f, zero = 0.0f;
  GANCU_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.handle(), &one, plan.w, w, plan.y, dy, plan.conv,
                                                 cudnnConvolutionBwdDataAlgo_t(plan.algo),
                                                 ctx.workspace(plan.workspace_bytes), plan.workspace_bytes, &zero,
                                                 plan.x, dx));
  add_bias(ctx, bias, plan.x, g.in_channels, dx);
}

void conv_backward_filter(Context& ctx, const cuda::detail::ConvGeometry& g, MathMode mode, const float* x,
                          const float* dy, float* dw, cudaStream_t stream) {
  const ConvPlan& plan = ctx.conv_plan(ConvPass::kBackwardFilter, g, mode, stream);  // binds the handle to the stream
  const float one = 1.0f, zero = 0.0f;
  GANCU_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.handle(), &one, plan.x, x, plan.y, dy, plan.conv,
                                                   cudnnConvolutionBwdFilterAlgo_t(plan.algo),
                                                   ctx.workspace(plan.workspace_bytes), plan.workspace_bytes, &zero,
                                                   plan.w, dw));
}

}  // namespace detail
}  // namespace gancu::cudnn
