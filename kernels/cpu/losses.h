// Reference losses over n elements, each reducing to the mean. forward returns the scalar loss (double);
// backward writes dx = dloss · ∂mean/∂x (so it already includes the 1/n).
// bce_with_logits: ℓ = max(x,0) − x·t + log(1 + exp(−|x|)) per element, stable for any x; t is a per-element target
// in [0, 1] (label smoothing and label noise set it).
#pragma once
#include <cstdint>

namespace gancu::ref {

template <class T> double bce_with_logits_forward(int64_t n, const T* x, const T* target);
template <class T> void bce_with_logits_backward(int64_t n, const T* x, const T* target, T dloss, T* dx);
template <class T> double mse_forward(int64_t n, const T* x, const T* target);
template <class T> void mse_backward(int64_t n, const T* x, const T* target, T dloss, T* dx);
// l1: the subgradient at x == target is 0, as in PyTorch.
template <class T> double l1_forward(int64_t n, const T* x, const T* target);
template <class T> void l1_backward(int64_t n, const T* x, const T* target, T dloss, T* dx);

}  // namespace gancu::ref
