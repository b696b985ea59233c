// Reference elementwise and data-movement ops.
#pragma once
#include <cstdint>

namespace gancu::ref {

// y = a + b. Its backward passes dy to both inputs unchanged (no kernel).
template <class T> void add_forward(int64_t n, const T* a, const T* b, T* y);
// y = x (flatten is a view in the engine; this copy exists for completeness and tests).
template <class T> void copy(int64_t n, const T* x, T* y);
// y = alpha · x  (used for gradient scaling).
template <class T> void scale(int64_t n, T alpha, const T* x, T* y);

// pixel_shuffle(r): x [batch, channels·r·r, h, w] → y [batch, channels, h·r, w·r] (PyTorch PixelShuffle).
template <class T> void pixel_shuffle_forward(int batch, int channels, int h, int w, int r, const T* x, T* y);
template <class T> void pixel_shuffle_backward(int batch, int channels, int h, int w, int r, const T* dy, T* dx);

// dropout(p) with a seeded Philox mask: element i is kept when philox_uniform_at(seed, stream, i) > p, and then scaled
// by 1/(1−p). mask[i] is 1/(1−p) for kept elements and 0 for dropped ones, so backward is dx = dy·mask.
// The comparison is double(float uniform) > p; other backends must compare the same way to get the same mask.
// p must be in [0, 1] (std::invalid_argument otherwise); p = 1 drops everything with a zero mask.
template <class T> void dropout_forward(int64_t n, double p, uint64_t seed, uint64_t stream, const T* x, T* y, T* mask);
template <class T> void dropout_backward(int64_t n, const T* mask, const T* dy, T* dx);

}  // namespace gancu::ref
