// Reference conv2d: plain loops accumulating in double. The oracle every faster path is tested against.
// All kernels overwrite their outputs (never accumulate into them).
#pragma once
#include "kernels/params.h"

namespace gancu::ref {

template <class T> void conv2d_forward(const Conv2dParams& p, const T* x, const T* weight, const T* bias, T* y);
template <class T> void conv2d_backward_input(const Conv2dParams& p, const T* dy, const T* weight, T* dx);
template <class T> void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dweight);
// Bias gradient of conv2d and conv_transpose2d alike: dbias[c] = Σ_{n,hw} dy[n, c, hw].
template <class T> void bias2d_backward(int batch, int channels, int spatial, const T* dy, T* dbias);

}  // namespace gancu::ref
