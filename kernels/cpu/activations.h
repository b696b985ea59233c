// Reference activations, elementwise over n values. Backward of relu/leaky_relu/prelu takes the forward input x;
// backward of tanh/sigmoid takes the forward output y (cheaper and what fused kernels keep).
#pragma once
#include <cstdint>

namespace gancu::ref {

template <class T> void relu_forward(int64_t n, const T* x, T* y);
template <class T> void relu_backward(int64_t n, const T* x, const T* dy, T* dx);
template <class T> void leaky_relu_forward(int64_t n, T slope, const T* x, T* y);
template <class T> void leaky_relu_backward(int64_t n, T slope, const T* x, const T* dy, T* dx);
// prelu: one learned slope per channel; x is [batch, channels, spatial]. dslope [channels] is overwritten with the sum
// over batch and space of x·dy where x ≤ 0.
template <class T> void prelu_forward(int batch, int channels, int spatial, const T* x, const T* slope, T* y);
template <class T>
void prelu_backward(int batch, int channels, int spatial, const T* x, const T* slope, const T* dy, T* dx, T* dslope);
template <class T> void tanh_forward(int64_t n, const T* x, T* y);
template <class T> void tanh_backward(int64_t n, const T* y, const T* dy, T* dx);
template <class T> void sigmoid_forward(int64_t n, const T* x, T* y);
template <class T> void sigmoid_backward(int64_t n, const T* y, const T* dy, T* dx);

}  // namespace gancu::ref
