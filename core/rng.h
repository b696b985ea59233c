// A seeded, counter-based random stream for host code. Deterministic on every machine: it is Philox underneath,
// never std::normal_distribution (whose output is implementation-defined).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/philox.h"

namespace gancu {

class Rng {
 public:
  explicit Rng(uint64_t seed, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  float uniform() { return philox_uniform_at(seed_, stream_, counter_++); }                 // (0, 1]
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  float normal() { return philox_normal_at(seed_, stream_, counter_++); }                   // N(0, 1)
  float normal(float mean, float stddev) { return mean + stddev * normal(); }
  // Uniform integer in [0, n); n must be > 0. Modulo bias is below 2^-24 · n, irrelevant for shuffles of datasets.
  uint64_t below(uint64_t n) {
    uint64_t i = counter_++;
    Philox4x32 r = philox4x32_10(static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), static_cast<uint32_t>(stream_),
                                 static_cast<uint32_t>(stream_ >> 32) ^ 0x5bd1e995u, static_cast<uint32_t>(seed_),
                                 static_cast<uint32_t>(seed_ >> 32));
    uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
    return bits % n;
  }

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t counter() const { return counter_; }
  // Resuming a run restores the counter, so the stream continues exactly where it stopped.
  void set_counter(uint64_t c) { counter_ = c; }

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t counter_ = 0;
};

}  // namespace gancu
