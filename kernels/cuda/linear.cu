// Linear layer: row-major tensors handed to column-major cuBLAS. A row-major [r, c] matrix is the column-major
// [c, r] matrix with leading dimension c, i.e. its transpose; each call below is written in those terms.
#include "kernels/cuda/linear.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"

namespace gancu::cuda {
namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + ": cuBLAS error " + cublasGetStatusString(status));
}

void prepare(cublasHandle_t handle, MathMode mode, const LinearParams& p, cudaStream_t stream) {
  if (p.batch < 1 || p.in_features < 1 || p.out_features < 1)
    throw std::invalid_argument("linear: batch, in_features and out_features must be ≥ 1");
  // Rebinding would silently drop the handle's workspace (cublasSetStream resets it to cuBLAS's pool).
  cudaStream_t bound = nullptr;
  check_cublas(cublasGetStream(handle, &bound), "cublasGetStream");
  if (bound != stream) throw std::invalid_argument("linear: the cuBLAS handle is bound to another stream");
  check_cublas(cublasSetMathMode(handle, mode == MathMode::kTf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
               "cublasSetMathMode");
}

constexpr int kThreads = 256;

// y[b, o] = bias[o]; the GEMM then accumulates onto it (beta = 1).
__global__ void broadcast_bias_kernel(int64_t n, int out_features, const float* bias, float* y) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = bias[i % out_features];
}

// dbias[o] = Σ_b dy[b, o]: adjacent threads read adjacent columns, so every row read is coalesced.
__global__ void bias_grad_kernel(int batch, int out_features, const float* dy, float* dbias) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= out_features) return;
  float sum = 0.0f;
  for (int b = 0; b < batch; ++b) sum += dy[int64_t(b) * out_features + o];
  dbias[o] = sum;
}

}  // namespace

CublasHandle::CublasHandle(cudaStream_t stream, size_t workspace_bytes) {
  check_cublas(cublasCreate(&handle_), "cublasCreate");
  try {
    // The stream first: binding a stream resets the workspace.
    check_cublas(cublasSetStream(handle_, stream), "cublasSetStream");
    GANCU_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes));  // 256-byte aligned, as cuBLAS requires
    check_cublas(cublasSetWorkspace(handle_, workspace_, workspace_bytes), "cublasSetWorkspace");
  } catch (...) {  // the destructor does not run for a half-built object
    if (workspace_) cudaFree(workspace_);
    cublasDestroy(handle_);
    throw;
  }
}

CublasHandle::~CublasHandle() {
  // Destructors must not throw: statuses are ignored. cublasDestroy waits for the handle's work, so the workspace
  // is free to go after it.
  cublasDestroy(handle_);
  if (workspace_) cudaFree(workspace_);
}

void linear_forward(cublasHandle_t handle, MathMode mode, const LinearParams& p, const float* x, const float* weight,
                    const float* bias, float* y, cudaStream_t stream) {
  prepare(handle, mode, p, stream);
  float beta = 0.0f;
  if (bias != nullptr) {
    const int64_t n = int64_t(p.batch) * p.out_features;
    const unsigned blocks = unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 16));
    broadcast_bias_kernel<<<blocks, kThreads, 0, stream>>>(n, p.out_features, bias, y);
    GANCU_CUDA_CHECK_LAUNCH();
    beta = 1.0f;
  }
  // Column-major: yᵀ [out, batch] = op(W_cm)ᵀ·xᵀ where W_cm = Wᵀ [in, out] (ld in) and xᵀ [in, batch] (ld in).
  const float alpha = 1.0f;
  check_cublas(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, p.out_features, p.batch, p.in_features, &alpha, weight,
                           p.in_features, x, p.in_features, &beta, y, p.out_features),
               "linear_forward sgemm");
}

void linear_backward_input(cublasHandle_t handle, MathMode mode, const LinearParams& p, const float* dy,
                           const float* weight, float* dx, cudaStream_t stream) {
  prepare(handle, mode, p, stream);
  // Column-major: dxᵀ [in, batch] = Wᵀ [in, out] (ld in) · dyᵀ [out, batch] (ld out).
  const float alpha = 1.0f, beta = 0.0f;
  check_cublas(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, p.in_features, p.batch, p.out_features, &alpha, weight,
                           p.in_features, dy, p.out_features, &beta, dx, p.in_features),
               "linear_backward_input sgemm");
}

void linear_backward_weight(cublasHandle_t handle, MathMode mode, const LinearParams& p, const float* x,
                            const float* dy, float* dweight, cudaStream_t stream) {
  prepare(handle, mode, p, stream);
  // Column-major: dWᵀ [in, out] = xᵀ [in, batch] (ld in) · (dyᵀ [out, batch] (ld out))ᵀ.
  const float alpha = 1.0f, beta = 0.0f;
  check_cublas(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, p.in_features, p.out_features, p.batch, &alpha, x,
                           p.in_features, dy, p.out_features, &beta, dweight, p.in_features),
               "linear_backward_weight sgemm");
}

void linear_backward_bias(const LinearParams& p, const float* dy, float* dbias, cudaStream_t stream) {
  if (p.batch < 1 || p.out_features < 1) throw std::invalid_argument("linear_backward_bias: empty shape");
  bias_grad_kernel<<<(p.out_features + kThreads - 1) / kThreads, kThreads, 0, stream>>>(p.batch, p.out_features, dy,
                                                                                         dbias);
  GANCU_CUDA_CHECK_LAUNCH();
}

}  // namespace gancu::cuda
