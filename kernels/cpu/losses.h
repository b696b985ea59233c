// Reference losses over n elements, each reducing to the mean. forward returns the scalar loss (double);
// backward writes dx = dloss · ∂mean/∂x (so it already includes the 1/n).
// bce_with_logits: ℓ = max(x,0) − x·t + log(1 + exp(−|x|)) per element, stable for any x; t is a per-element target
// in [0, 1] (label smoothing and label noise set it).
// cross_entropy: softmax cross-entropy of logits [batch, classes] against class labels [batch] (indices held as
// floating-point values), the mean over the batch (torch.nn.CrossEntropyLoss, reduction "mean"). Its backward is
// dlogits = dloss · (softmax(logits) − onehot(label)) / batch. A label that is not a class index throws
// std::invalid_argument naming it, as one_hot does.
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
template <class T> double cross_entropy_forward(int batch, int classes, const T* logits, const T* labels);
template <class T>
void cross_entropy_backward(int batch, int classes, const T* logits, const T* labels, T dloss, T* dlogits);

}  // namespace gancu::ref
