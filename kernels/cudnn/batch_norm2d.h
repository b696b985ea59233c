// cuDNN batch_norm2d, the baseline for the custom kernels in kernels/cuda/batch_norm2d.h (and a fallback backend).
// CUDNN_BATCHNORM_SPATIAL on NCHW fp32, same semantics as ref::batch_norm2d_*:
//  - exponentialAverageFactor = momentum, so running = (1 − momentum)·running + momentum·batch_stat;
//  - cuDNN updates the running variance with the unbiased (n/(n−1)) batch variance, the PyTorch convention (PyTorch's
//    cuDNN path passes its running_var straight through); the GPU test checks this against the reference;
//  - save_invstd is 1/sqrt(biased var + eps), the same cache the custom kernels keep.
// The fused-activation variants (cudnnBatchNormalizationForwardTrainingEx with CUDNN_BATCHNORM_OPS_BN_ACTIVATION) are
// only offered for NHWC half-precision tensors in CUDNN_BATCHNORM_SPATIAL_PERSISTENT mode, so they do not apply to
// fp32 NCHW; a baseline for a fused BN+activation is this BN followed by a separate activation kernel.
#pragma once
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/params.h"

namespace gancu::cudnn {

// Holds the tensor descriptors for one shape (created once, so a timed call does no descriptor work).
class BatchNorm2d {
 public:
  explicit BatchNorm2d(const BatchNorm2dParams& p);
  ~BatchNorm2d();
  BatchNorm2d(const BatchNorm2d&) = delete;
  BatchNorm2d& operator=(const BatchNorm2d&) = delete;

  // Each call sets the handle's stream to `stream`; nothing synchronises.
  void forward_train(cudnnHandle_t handle, const float* x, const float* gamma, const float* beta, float* running_mean,
                     float* running_var, float* y, float* save_mean, float* save_invstd, cudaStream_t stream) const;
  void forward_infer(cudnnHandle_t handle, const float* x, const float* gamma, const float* beta,
                     const float* running_mean, const float* running_var, float* y, cudaStream_t stream) const;
  // dgamma, dbeta are written (not accumulated).
  void backward(cudnnHandle_t handle, const float* dy, const float* x, const float* gamma, const float* save_mean,
                const float* save_invstd, float* dx, float* dgamma, float* dbeta, cudaStream_t stream) const;

  const BatchNorm2dParams& params() const { return p_; }

 private:
  BatchNorm2dParams p_;
  cudnnTensorDescriptor_t x_desc_ = nullptr;   // [batch, channels, 1, spatial]: x, y, dx, dy
  cudnnTensorDescriptor_t bn_desc_ = nullptr;  // [1, channels, 1, 1]: gamma, beta, statistics
};

}  // namespace gancu::cudnn
