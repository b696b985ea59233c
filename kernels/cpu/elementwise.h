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

// concat along dim 1 (torch.cat(xs, 1)): xs[i] [batch, channels[i], inner] → y [batch, Σ channels, inner], where
// inner is the product of the dims after 1. Its backward gives each input its channel_slice of dy.
template <class T>
void concat_channels(int batch, int inner, int num_inputs, const T* const* xs, const int* channels, T* y);
// y [batch, channels_y, inner] = x[:, begin : begin + channels_y] of x [batch, channels_x, inner]; a range outside x's
// channels throws std::invalid_argument.
template <class T>
void channel_slice(int batch, int channels_x, int begin, int channels_y, int inner, const T* x, T* y);

// one_hot: labels [batch] (class indices held as floating-point values) → y [batch, classes, spatial], 1 in channel
// labels[n] and 0 elsewhere. A label that is not an integer in [0, classes) (NaN included) is a data error:
// std::invalid_argument naming it and its example, before anything is written.
template <class T> void one_hot(int batch, int classes, int spatial, const T* labels, T* y);

// dropout(p) with a seeded Philox mask: element i is kept when philox_uniform_at(seed, stream, i) > p, and then scaled
// by 1/(1−p). mask[i] is 1/(1−p) for kept elements and 0 for dropped ones, so backward is dx = dy·mask.
// The comparison is double(float uniform) > p; other backends must compare the same way to get the same mask.
// p must be in [0, 1] (std::invalid_argument otherwise); p = 1 drops everything with a zero mask.
template <class T> void dropout_forward(int64_t n, double p, uint64_t seed, uint64_t stream, const T* x, T* y, T* mask);
template <class T> void dropout_backward(int64_t n, const T* mask, const T* dy, T* dx);

}  // namespace gancu::ref
