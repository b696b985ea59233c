// Device-step random ops: grid-stride loops like elementwise.cu, each thread reading the step once from device memory.
#include "kernels/cuda/random.h"

#include <cmath>
#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/philox.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise_launch.cuh"

namespace gancu::cuda {
namespace {

void check_launch_args(int64_t n, const int64_t* step, const char* what) {
  if (n < 0) throw std::invalid_argument(std::string(what) + ": negative element count");
  if (step == nullptr) throw std::invalid_argument(std::string(what) + ": the device step pointer is null");
}

__global__ void fill_normal_step_kernel(int64_t n, float mean, float stddev, uint64_t seed, uint64_t op_stream,
                                        const int64_t* step, float* out) {
  const uint64_t stream_id = philox_step_stream(op_stream, *step);
  // Explicit round-to-nearest multiply and add: no FMA contraction, so the affine map rounds exactly as the CPU's.
  GANCU_GRID_STRIDE(i, n) out[i] = __fadd_rn(mean, __fmul_rn(stddev, philox_normal_at(seed, stream_id, uint64_t(i))));
}

__global__ void target_fill_step_kernel(int64_t n, float value, double label_noise, uint64_t seed, uint64_t op_stream,
                                        const int64_t* step, float* out) {
  const uint64_t stream_id = philox_step_stream(op_stream, *step);
  const float flipped = 1.0f - value;
  GANCU_GRID_STRIDE(i, n) {
    const bool flip = label_noise > 0 && double(philox_uniform_at(seed, stream_id, uint64_t(i))) <= label_noise;
    out[i] = flip ? flipped : value;
  }
}

__global__ void dropout_forward_step_kernel(int64_t n, double p, float keep_scale, uint64_t seed, uint64_t op_stream,
                                            const int64_t* step, const float* x, float* y, float* mask) {
  const uint64_t stream_id = philox_step_stream(op_stream, *step);
  GANCU_GRID_STRIDE(i, n) {
    // Compared in double like the reference: p need not be representable in float.
    const bool keep = double(philox_uniform_at(seed, stream_id, uint64_t(i))) > p;
    const float m = keep ? keep_scale : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}


__global__ void increment_step_kernel(int64_t* step) { *step += 1; }

}  // namespace

void fill_normal_step(int64_t n, float mean, float stddev, uint64_t seed, uint64_t op_stream, const int64_t* step,
                      float* out, cudaStream_t stream) {
  check_launch_args(n, step, "fill_normal_step");
  if (n == 0) return;  // a zero grid is a launch error
  fill_normal_step_kernel<<<elementwise_grid(n), kElementwiseThreads, 0, stream>>>(n, mean, stddev, seed, op_stream, step, out);
  GANCU_CUDA_CHECK_LAUNCH();
}

void target_fill_step(int64_t n, float value, double label_noise, uint64_t seed, uint64_t op_stream,
                      const int64_t* step, float* out, cudaStream_t stream) {
  check_launch_args(n, step, "target_fill_step");
  if (n == 0) return;
  target_fill_step_kernel<<<elementwise_grid(n), kElementwiseThreads, 0, stream>>>(n, value, label_noise, seed, op_stream, step, out);
  GANCU_CUDA_CHECK_LAUNCH();
}

void dropout_forward_step(int64_t n, double p, uint64_t seed, uint64_t op_stream, const int64_t* step, const float* x,
                          float* y, float* mask, cudaStream_t stream) {
  check_launch_args(n, step, "dropout_forward_step");
  if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("dropout probability must be in [0, 1]");
  if (n == 0) return;
  // Same rounding as the reference: 1/(1−p) in double, then to float once.
  const float keep_scale = p < 1.0 ? float(1.0 / (1.0 - p)) : 0.0f;
  dropout_forward_step_kernel<<<elementwise_grid(n), kElementwiseThreads, 0, stream>>>(n, p, keep_scale, seed, op_stream, step, x, y,
                                                                    mask);
  GANCU_CUDA_CHECK_LAUNCH();
}

void increment_device_step(int64_t* step, cudaStream_t stream) {
  if (step == nullptr) throw std::invalid_argument("increment_device_step: the device step pointer is null");
  increment_step_kernel<<<1, 1, 0, stream>>>(step);
  GANCU_CUDA_CHECK_LAUNCH();
}

}  // namespace gancu::cuda
