// Reference max pooling (torch.nn.MaxPool2d semantics, kernels/params.h).
#pragma once
#include "kernels/params.h"

namespace gancu::ref {

// The element each window picks: scanning the window row-major, the first maximum; a NaN wins and stays (the rule of
// PyTorch's CPU kernel: take v when v > max or v is NaN). Padding is never picked. Returns ih·in_w + iw within the
// plane. Shared with the backward, which recomputes it instead of storing an index tensor.
template <class T> int max_pool2d_window_argmax(const MaxPool2dParams& p, const T* plane, int oh, int ow);

// y = max over each window of x.
template <class T> void max_pool2d_forward(const MaxPool2dParams& p, const T* x, T* y);
// dx: each window's dy added to the element the window picks (overlapping windows add up, in double, in output
// order; elements no window picks get 0). Takes x, not an index tensor: the argmax is recomputed.
template <class T> void max_pool2d_backward(const MaxPool2dParams& p, const T* x, const T* dy, T* dx);

}  // namespace gancu::ref
