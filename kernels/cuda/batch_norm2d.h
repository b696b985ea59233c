// Custom CUDA batch_norm2d (spatial batch norm over NCHW, fp32) with an optional fused activation.
// Semantics: exactly ref::batch_norm2d_* (kernels/cpu/batch_norm2d.h) followed by the ref activation, i.e. training
// normalises with the batch's biased variance, updates running_mean/running_var (unbiased variance, momentum) in place,
// and saves mean and invstd = 1/sqrt(var + eps) for backward.
//
// Design (why): one thread block per channel reads the channel once to get mean and variance (per-thread Welford,
// merged with Chan's formula in a fixed-order cub::BlockReduce: no E[x²]−E[x]² cancellation, no float atomics, so
// results are bit-identical from run to run), then normalises, scales, shifts and applies the activation in the same
// kernel while the channel is still hot in L2. Backward recomputes the pre-activation value from x instead of storing
// it, reduces Σg and Σg·x̂ (g = dy·act′) and writes dx in a second sweep of the same block.
// Device pointers; functions only enqueue on `stream`, never synchronise; bad arguments throw std::invalid_argument.
#pragma once
#include <cuda_runtime.h>

#include "kernels/params.h"

namespace gancu::cuda {

enum class Activation { kNone, kRelu, kLeakyRelu, kPrelu };

// The activation applied after the affine transform: y = act(z), z = gamma·x̂ + beta.
struct BnActivation {
  Activation kind = Activation::kNone;
  float leaky_slope = 0.2f;             // kLeakyRelu: y = z > 0 ? z : leaky_slope·z
  const float* prelu_slope = nullptr;   // kPrelu: device [channels], y = z > 0 ? z : prelu_slope[c]·z
};

// running_mean/running_var may be null (no update). Requires batch·spatial ≥ 2, as the reference does.
void batch_norm2d_forward_train(const BatchNorm2dParams& p, const BnActivation& act, const float* x, const float* gamma,
                                const float* beta, float* running_mean, float* running_var, float* y, float* save_mean,
                                float* save_invstd, cudaStream_t stream);

// y = act(gamma·(x − running_mean)/sqrt(running_var + eps) + beta).
void batch_norm2d_forward_infer(const BatchNorm2dParams& p, const BnActivation& act, const float* x,
                                const float* gamma, const float* beta, const float* running_mean,
                                const float* running_var, float* y, cudaStream_t stream);

// Gradient of forward_train (batch statistics) through the activation. Takes the forward input x and beta to
// recompute the pre-activation z exactly as forward did. dgamma, dbeta [channels] are written (not accumulated);
// dprelu_slope [channels] is written for kPrelu (Σ over z ≤ 0 of z·dy) and ignored otherwise (may be null).
void batch_norm2d_backward(const BatchNorm2dParams& p, const BnActivation& act, const float* dy, const float* x,
                           const float* gamma, const float* beta, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, float* dprelu_slope, cudaStream_t stream);

}  // namespace gancu::cuda
