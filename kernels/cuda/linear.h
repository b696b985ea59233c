// Linear (dense) layer on the GPU, PyTorch nn.Linear semantics (kernels/cpu/linear.h): y = x·Wᵀ + b with x [batch, in],
// W [out, in], y [batch, out], all row-major. A linear layer is one GEMM, so the products go to cuBLAS SGEMM (no custom
// GEMM here); only the bias broadcast and the bias gradient are custom kernels.
// The cuBLAS handle is owned by the caller and must already be bound to `stream` (a CublasHandle is: see below); each
// call sets its math mode from `mode` (kFp32: CUBLAS_DEFAULT_MATH, strict fp32; kTf32: CUBLAS_TF32_TENSOR_OP_MATH).
// Nothing synchronises.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/math_mode.h"
#include "kernels/params.h"

namespace gancu::cuda {

// cuBLAS's recommended workspace for Hopper (4 MiB suffices before it; more is harmless).
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

// A cuBLAS handle bound once to one stream, with a workspace it owns for its whole life. Without a user workspace
// cuBLAS takes its scratch from an internal pool that is not safe under CUDA-graph capture; with one, a captured
// GEMM holds this buffer's address, which stays valid for as long as the handle (and so every graph its owner
// captured) lives. cublasSetStream resets the workspace to the pool, so the stream is bound here, once, and the
// linear functions below refuse a handle bound to another stream rather than rebinding it.
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream, size_t workspace_bytes = kCublasWorkspaceBytes);
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }
  const void* workspace() const { return workspace_; }

 private:
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
};

// bias may be null.
void linear_forward(cublasHandle_t handle, MathMode mode, const LinearParams& p, const float* x, const float* weight,
                    const float* bias, float* y, cudaStream_t stream);
// dx [batch, in] = dy·W.
void linear_backward_input(cublasHandle_t handle, MathMode mode, const LinearParams& p, const float* dy,
                           const float* weight, float* dx, cudaStream_t stream);
// dW [out, in] = dyᵀ·x (written, not accumulated).
void linear_backward_weight(cublasHandle_t handle, MathMode mode, const LinearParams& p, const float* x,
                            const float* dy, float* dweight, cudaStream_t stream);
// dbias [out] = Σ over the batch of dy, one thread per output feature (deterministic).
void linear_backward_bias(const LinearParams& p, const float* dy, float* dbias, cudaStream_t stream);

}  // namespace gancu::cuda
