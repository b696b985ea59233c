// Custom CUDA batch_norm2d (spatial batch norm over NCHW, fp32) with an optional fused activation.
// Semantics: exactly ref::batch_norm2d_* (kernels/cpu/batch_norm2d.h) followed by the ref activation, i.e. training
// normalises with the batch's biased variance, updates running_mean/running_var (unbiased variance, momentum) in place,
// and saves mean and invstd = 1/sqrt(var + eps) for backward.
//
// Design (why): a channel's statistics are a reduction over batch·spatial values, but DCGAN's layers have only 64-512
// channels, so one block per channel leaves SMs idle (64 blocks on a 132-SM H200). The split plan
// (batch_norm2d_plan.h, a pure function of the shape) cuts each channel into `splits` chunks so that channels·splits
// comes close to 264 blocks (two per SM) without passing it. With several splits, pass 1 writes each block's partial
// sums to the workspace and pass 2 (same grid) has every block merge its channel's partials in a fixed tree order
// (bit-identical in every block, run and replay; no float atomics), then normalise/differentiate its own chunk, mostly
// from L2. With one split (more than 132 channels, or too few values to split) one kernel does both, no workspace. Forward accumulates Σ(x − pivot) and
// Σ(x − pivot)² in double around a per-channel pivot (no cancellation for a large mean, no division per element);
// backward recomputes the pre-activation value from x instead of storing it and accumulates Σg and Σg·x̂ (g = dy·act′)
// in double. Index maps use 32-bit FastDivmod, one per float4 of input.
// Device pointers; outputs must not overlap inputs. Functions only enqueue on `stream`, never synchronise; bad
// arguments throw std::invalid_argument. Per channel at most 2³⁰ values.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/params.h"

namespace gancu::cuda {

enum class Activation { kNone, kRelu, kLeakyRelu, kPrelu };

// The activation applied after the affine transform: y = act(z), z = gamma·x̂ + beta.
struct BnActivation {
  Activation kind = Activation::kNone;
  float leaky_slope = 0.2f;             // kLeakyRelu: y = z > 0 ? z : leaky_slope·z
  const float* prelu_slope = nullptr;   // kPrelu: device [channels], y = z > 0 ? z : prelu_slope[c]·z
};

// Workspace the training kernels need for their per-block partial sums (0 when every channel fits one block): pass at
// least this many bytes, 8-byte aligned, to the call with the same params. Used only during the call's kernels.
size_t batch_norm2d_forward_train_workspace_bytes(const BatchNorm2dParams& p);
size_t batch_norm2d_backward_workspace_bytes(const BatchNorm2dParams& p);

// running_mean/running_var may be null (no update). Requires batch·spatial ≥ 2, as the reference does.
void batch_norm2d_forward_train(const BatchNorm2dParams& p, const BnActivation& act, const float* x, const float* gamma,
                                const float* beta, float* running_mean, float* running_var, float* y, float* save_mean,
                                float* save_invstd, void* workspace, cudaStream_t stream);

// y = act(gamma·(x − running_mean)/sqrt(running_var + eps) + beta).
void batch_norm2d_forward_infer(const BatchNorm2dParams& p, const BnActivation& act, const float* x,
                                const float* gamma, const float* beta, const float* running_mean,
                                const float* running_var, float* y, cudaStream_t stream);

// Gradient of forward_train (batch statistics) through the activation. Takes the forward input x and beta to
// recompute the pre-activation z exactly as forward did. dgamma, dbeta [channels] are written (not accumulated);
// dprelu_slope [channels] is written for kPrelu (Σ over z ≤ 0 of z·dy) and ignored otherwise (may be null).
void batch_norm2d_backward(const BatchNorm2dParams& p, const BnActivation& act, const float* dy, const float* x,
                           const float* gamma, const float* beta, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, float* dprelu_slope, void* workspace,
                           cudaStream_t stream);

}  // namespace gancu::cuda
