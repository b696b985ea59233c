// Reference conv_transpose2d (PyTorch ConvTranspose2d semantics, weight [Cin, Cout, k, k]); double accumulation.
// Bias gradient: ref::bias2d_backward in conv2d.h.
#pragma once
#include "kernels/params.h"

namespace gancu::ref {

template <class T> void conv_transpose2d_forward(const ConvTranspose2dParams& p, const T* x, const T* weight, const T* bias, T* y);
template <class T> void conv_transpose2d_backward_input(const ConvTranspose2dParams& p, const T* dy, const T* weight, T* dx);
template <class T> void conv_transpose2d_backward_weight(const ConvTranspose2dParams& p, const T* x, const T* dy, T* dweight);

}  // namespace gancu::ref
