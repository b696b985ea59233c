// Custom CUDA elementwise and data-movement kernels: add/scale, pixel shuffle, dropout and Philox fills (activations:
// activations.h). Same semantics as the reference kernels in kernels/cpu/elementwise.h (outputs overwritten, never
// accumulated). Device pointers, contiguous NCHW, fp32; every function only enqueues work on `stream` and never
// synchronises. Invalid arguments throw std::invalid_argument before anything is launched.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace gancu::cuda {

// ---- arithmetic and data movement ----
void add_forward(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream);
void scale(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream);
// pixel_shuffle(r): x [batch, channels·r·r, h, w] → y [batch, channels, h·r, w·r] (PyTorch PixelShuffle); `channels`
// is the output channel count. Backward is the inverse permutation.
void pixel_shuffle_forward(int batch, int channels, int h, int w, int r, const float* x, float* y, cudaStream_t stream);
void pixel_shuffle_backward(int batch, int channels, int h, int w, int r, const float* dy, float* dx,
                            cudaStream_t stream);
// concat along dim 1 (torch.cat(xs, 1)): xs[i] [batch, channels[i], inner] → y [batch, Σ channels, inner], as
// ref::concat_channels. `xs` and `channels` are host arrays (of device pointers); one launch per eight inputs.
void concat_channels(int batch, int inner, int num_inputs, const float* const* xs, const int* channels, float* y,
                     cudaStream_t stream);
// y [batch, channels_y, inner] = x[:, begin : begin + channels_y] of x [batch, channels_x, inner] (a concat's backward).
void channel_slice(int batch, int channels_x, int begin, int channels_y, int inner, const float* x, float* y,
                   cudaStream_t stream);
// one_hot: labels [batch] (class indices as floats) → y [batch, classes, spatial], 1 in channel labels[n], else 0.
// Unlike ref::one_hot, which throws, a label that is not an integer in [0, classes) (NaN included) gives its example
// all-zero maps: a kernel cannot throw. Labels come from the host, which checks them when it reads the data set.
void one_hot(int batch, int classes, int spatial, const float* labels, float* y, cudaStream_t stream);

// ---- randomness: element i always uses Philox counter i of (seed, stream_id), as the CPU reference does ----
// dropout(p): element i is kept when philox_uniform_at(seed, stream_id, i) > p (compared in double, exactly as
// ref::dropout_forward), then scaled by 1/(1−p); mask[i] is 1/(1−p) or 0, and backward is dx = dy·mask. The mask and
// y are bit-identical to the CPU reference's for the same seed.
void dropout_forward(int64_t n, double p, uint64_t seed, uint64_t stream_id, const float* x, float* y, float* mask,
                     cudaStream_t stream);
void dropout_backward(int64_t n, const float* mask, const float* dy, float* dx, cudaStream_t stream);
// out[i] = mean + stddev · philox_normal_at(seed, stream_id, i).
void fill_normal(int64_t n, float mean, float stddev, uint64_t seed, uint64_t stream_id, float* out,
                 cudaStream_t stream);
// out[i] = lo + (hi − lo) · philox_uniform_at(seed, stream_id, i), so values lie in (lo, hi].
void fill_uniform(int64_t n, float lo, float hi, uint64_t seed, uint64_t stream_id, float* out, cudaStream_t stream);

}  // namespace gancu::cuda
