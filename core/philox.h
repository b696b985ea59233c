// Philox4x32-10 counter-based RNG (Salmon et al., SC'11). The same (seed, counter) gives the same numbers on the CPU
// and on the GPU, so a run is reproducible from its seed and step number on either backend.
#pragma once
#include <cstdint>
#include <math.h>

#if defined(__CUDACC__)
#define GANCU_HD __host__ __device__ __forceinline__
#else
#define GANCU_HD inline
#endif

namespace gancu {

struct Philox4x32 {
  uint32_t v[4];
};

GANCU_HD uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter (c0..c3) with key (k0, k1).
GANCU_HD Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// The Philox stream of a random op (dropout mask, latent batch, labels) at a training step: every step gets fresh
// numbers, and step t alone is reproducible from the seed. Every backend uses this one formula.
GANCU_HD uint64_t philox_step_stream(uint64_t op_stream, int64_t step) {
  return (op_stream << 40) ^ static_cast<uint64_t>(step);
}

// Uniform in (0, 1]: never 0, so log() in Box-Muller is safe. 24 bits of mantissa.
GANCU_HD float philox_uniform(uint32_t bits) { return (static_cast<float>(bits >> 8) + 1.0f) * (1.0f / 16777216.0f); }

// The i-th uniform of stream (seed, stream): element i comes from block i/4, lane i%4. Elementwise kernels on any
// backend compute element i independently with this function.
GANCU_HD float philox_uniform_at(uint64_t seed, uint64_t stream, uint64_t i) {
  Philox4x32 r = philox4x32_10(static_cast<uint32_t>(i >> 2), static_cast<uint32_t>(i >> 34),
                               static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                               static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return philox_uniform(r.v[i & 3]);
}

// The i-th standard normal of stream (seed, stream), Box-Muller on lanes (0,1) and (2,3) of block i/4. Computed in
// float with the same formula everywhere; CPU and GPU agree to a few ulps (libm vs CUDA intrinsics), not bit-exactly.
GANCU_HD float philox_normal_at(uint64_t seed, uint64_t stream, uint64_t i) {
  Philox4x32 r = philox4x32_10(static_cast<uint32_t>(i >> 2), static_cast<uint32_t>(i >> 34),
                               static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                               static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const int pair = static_cast<int>(i & 2);
  float u1 = philox_uniform(r.v[pair]);
  float u2 = philox_uniform(r.v[pair + 1]);
  float radius = sqrtf(-2.0f * logf(u1));
  float angle = 6.2831853071795864f * u2;
  return (i & 1) ? radius * sinf(angle) : radius * cosf(angle);
}

}  // namespace gancu
