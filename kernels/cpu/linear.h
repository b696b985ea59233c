// Reference linear (dense) layer, PyTorch nn.Linear semantics: y = x·Wᵀ + b, W [out, in].
#pragma once
#include "kernels/params.h"

namespace gancu::ref {

template <class T> void linear_forward(const LinearParams& p, const T* x, const T* weight, const T* bias, T* y);
template <class T> void linear_backward_input(const LinearParams& p, const T* dy, const T* weight, T* dx);
template <class T> void linear_backward_weight(const LinearParams& p, const T* x, const T* dy, T* dweight);
template <class T> void linear_backward_bias(const LinearParams& p, const T* dy, T* dbias);

}  // namespace gancu::ref
