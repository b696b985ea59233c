// Reference batch_norm2d. Training: y = gamma·(x − mean)·invstd + beta with batch mean and biased variance,
// invstd = 1/sqrt(var + eps); running_mean/var updated in place: r = (1 − momentum)·r + momentum·stat, with the
// unbiased variance (n/(n−1)) for running_var. save_mean/save_invstd [channels] are what backward needs.
// Training with a single value per channel (batch·spatial = 1) throws std::invalid_argument, as PyTorch refuses it.
#pragma once
#include "kernels/params.h"

namespace gancu::ref {

template <class T>
void batch_norm2d_forward_train(const BatchNorm2dParams& p, const T* x, const T* gamma, const T* beta, T* running_mean,
                                T* running_var, T* y, T* save_mean, T* save_invstd);
template <class T>
void batch_norm2d_forward_infer(const BatchNorm2dParams& p, const T* x, const T* gamma, const T* beta,
                                const T* running_mean, const T* running_var, T* y);
// Gradient of the training-mode forward (batch statistics); dx, dgamma, dbeta are all overwritten.
template <class T>
void batch_norm2d_backward(const BatchNorm2dParams& p, const T* dy, const T* x, const T* gamma, const T* save_mean,
                           const T* save_invstd, T* dx, T* dgamma, T* dbeta);

// The gradient through an activation applied to the training forward's output (a batch norm fused with its
// activation): with the pre-activation z = γ·(x − mean)·invstd + β recomputed in double from the saved statistics,
// dy = dz where z > 0, else slope_c·dz (+0 when slope_c is 0: relu's mask), slope_c = prelu_slope[c] when prelu_slope
// is given, else negative_slope (0 for relu, the leaky slope). dprelu_slope [channels], when given, is overwritten with
// Σ over z ≤ 0 of z·dz per channel, summed in double, images then positions in order (as ref::prelu_backward sums).
// dy then feeds batch_norm2d_backward.
template <class T>
void batch_norm2d_activation_backward(const BatchNorm2dParams& p, T negative_slope, const T* prelu_slope, const T* dz,
                                      const T* x, const T* gamma, const T* beta, const T* save_mean,
                                      const T* save_invstd, T* dy, T* dprelu_slope);

}  // namespace gancu::ref
