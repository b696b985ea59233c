// Random ops whose step number lives on the device, for the engine's CUDA backend: a captured CUDA graph replays the
// same kernel arguments every step, so a kernel cannot be given the step as a value; it reads it from `*step`.
// Every element draws exactly the Philox number the CPU backend draws (engine/cpu_backend.cpp): element i of a
// random op with op stream s at step t uses philox_*_at(seed, philox_step_stream(s, t), i). Uniform draws (dropout masks,
// label flips) are bit-identical to the CPU's; normals agree to a few ulps (libm vs CUDA's sqrtf/logf/sinf/cosf).
// Device pointers; functions only enqueue on `stream` and never synchronise; bad arguments throw before launching.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace gancu::cuda {

// out[i] = mean + stddev · philox_normal_at(seed, philox_step_stream(op_stream, *step), i).
void fill_normal_step(int64_t n, float mean, float stddev, uint64_t seed, uint64_t op_stream, const int64_t* step,
                      float* out, cudaStream_t stream);

// Labels: out[i] = value, flipped to 1 − value where label_noise > 0 and
// philox_uniform_at(seed, philox_step_stream(op_stream, *step), i) ≤ label_noise (compared in double, as the CPU does).
void target_fill_step(int64_t n, float value, double label_noise, uint64_t seed, uint64_t op_stream,
                      const int64_t* step, float* out, cudaStream_t stream);

// Dropout with probability p: cuda::dropout_forward (elementwise.h) with the stream id philox_step_stream(op_stream, *step).
void dropout_forward_step(int64_t n, double p, uint64_t seed, uint64_t op_stream, const int64_t* step, const float* x,
                          float* y, float* mask, cudaStream_t stream);

// *step += 1, one thread: the last kernel of an engine step.
void increment_device_step(int64_t* step, cudaStream_t stream);

}  // namespace gancu::cuda
