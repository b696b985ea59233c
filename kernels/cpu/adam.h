// Reference Adam step, torch.optim.Adam semantics (amsgrad off, maximize off):
//   g = grad + weight_decay·param;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//   param -= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps),  t = step (1 for the first step; < 1 throws).
// m and v start at zero and are updated in place; the update reads them as stored (rounded to T), like PyTorch.
#pragma once
#include <cstdint>

#include "kernels/params.h"

namespace gancu::ref {

template <class T> void adam_step(int64_t n, const AdamParams& p, int64_t step, T* param, const T* grad, T* m, T* v);

}  // namespace gancu::ref
