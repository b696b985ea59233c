// Latent walks for `gan sample`: spherical interpolation between latent points and latent arithmetic a − b + c.
// Pure functions on host vectors (no engine, no files), so the math is tested on its own.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace gancu::app {

// Below this sin(angle) between a and b (parallel or antiparallel, or a zero vector), slerp's 1/sin(ω) is
// ill-conditioned and the great circle undefined; slerp falls back to linear interpolation. At this angle the two
// differ by O(ω²) ≈ 1e-12 relative, far below float precision.
inline constexpr double kSlerpParallelSin = 1e-6;

// White 2016, "Sampling Generative Networks": with ω the angle between a and b,
//   slerp(a, b, t) = sin((1 − t)ω)/sin ω · a + sin(tω)/sin ω · b,
// applied to the vectors as they are (not normalised), so equal norms stay equal and t = 0, 1 give a, b exactly.
// Accumulates in double; writes n floats to out.
void slerp(const float* a, const float* b, int64_t n, double t, float* out);

// `steps` ≥ 2 points from a to b at t = i/(steps − 1), endpoints included: [steps, n, 1, 1].
Tensor slerp_path(const float* a, const float* b, int64_t n, int steps);

// Mean over the first axis of z [m, nz, ...] (m ≥ 1), in double: [nz].
Tensor mean_latent(const Tensor& z);

// a − b + c elementwise, in double, on equal-sized vectors: [n].
Tensor latent_arithmetic(const Tensor& a, const Tensor& b, const Tensor& c);

}  // namespace gancu::app
