// Linear (dense) layer on the GPU, PyTorch nn.Linear semantics (kernels/cpu/linear.h): y = x·Wᵀ + b with x [batch, in],
// W [out, in], y [batch, out], all row-major. A linear layer is one GEMM, so the products go to cuBLAS SGEMM (no custom
// GEMM here); only the bias broadcast and the bias gradient are custom kernels.
// The cuBLAS handle is owned by the caller; each call sets the handle's stream to `stream` and its math mode from
// `mode` (kFp32: CUBLAS_DEFAULT_MATH, strict fp32; kTf32: CUBLAS_TF32_TENSOR_OP_MATH). Nothing synchronises.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/cuda/math_mode.h"
#include "kernels/params.h"

namespace gancu::cuda {

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
