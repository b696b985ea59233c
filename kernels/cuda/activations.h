// Custom CUDA activation kernels, the same semantics as the reference kernels in kernels/cpu/activations.h (outputs
// overwritten, never accumulated). Device pointers, fp32; every function only enqueues work on `stream` and never
// synchronises. Invalid arguments throw std::invalid_argument before anything is launched.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace gancu::cuda {

// Backward of relu/leaky/prelu takes the forward input x; backward of tanh/sigmoid takes the forward output y.
void relu_forward(int64_t n, const float* x, float* y, cudaStream_t stream);
void relu_backward(int64_t n, const float* x, const float* dy, float* dx, cudaStream_t stream);
void leaky_relu_forward(int64_t n, float slope, const float* x, float* y, cudaStream_t stream);
void leaky_relu_backward(int64_t n, float slope, const float* x, const float* dy, float* dx, cudaStream_t stream);
// prelu: one learned slope per channel, x [batch, channels, spatial]. dslope[c] = Σ over x ≤ 0 of x·dy, written (not
// accumulated) by one block per channel in a fixed order, so it is bit-identical from run to run.
void prelu_forward(int batch, int channels, int spatial, const float* x, const float* slope, float* y,
                   cudaStream_t stream);
void prelu_backward(int batch, int channels, int spatial, const float* x, const float* slope, const float* dy,
                    float* dx, float* dslope, cudaStream_t stream);
void tanh_forward(int64_t n, const float* x, float* y, cudaStream_t stream);
void tanh_backward(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);
void sigmoid_forward(int64_t n, const float* x, float* y, cudaStream_t stream);
void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);

}  // namespace gancu::cuda
