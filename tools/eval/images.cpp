#include "tools/eval/images.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "core/philox.h"
#include "tools/io/png.h"

namespace gancu::eval {

std::vector<int64_t> draw_without_replacement(int64_t n, int64_t k, Rng& rng) {
  if (n < 0 || k < 0 || k > n)
    throw std::invalid_argument("draw_without_replacement: cannot draw " + std::to_string(k) + " of " +
                                std::to_string(n));
  std::vector<int64_t> pool(static_cast<size_t>(n));
  std::iota(pool.begin(), pool.end(), int64_t{0});
  for (int64_t i = 0; i < k; ++i)
    std::swap(pool[i], pool[i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(n - i)))]);
  pool.resize(static_cast<size_t>(k));
  return pool;
}

ImageSet images_from_generator(const Tensor& images, int channels, int size) {
  const Shape& shape = images.shape();
  if (shape.rank() != 4 || (shape[1] != 1 && shape[1] != 3) || shape[2] < 1 || shape[3] < 1)
    throw std::invalid_argument("images_from_generator: expected generator output [n, 1 or 3, H, W], got " +
                                shape.str());
  ImageSet set;
  set.count = shape[0];
  set.channels = static_cast<int>(shape[1]);
  set.height = static_cast<int>(shape[2]);
  set.width = static_cast<int>(shape[3]);
  set.source = "generated images";
  set.pixels.resize(static_cast<size_t>(images.numel()));
  std::transform(images.data(), images.data() + images.numel(), set.pixels.begin(), byte_from_unit);
  return conform_images(std::move(set), channels, size);
}

ImageSet noise_images(int64_t n, int channels, int size, uint64_t seed) {
  if (n < 0 || (channels != 1 && channels != 3) || size < 1)
    throw std::invalid_argument("noise_images: n ≥ 0, 1 or 3 channels and a positive size are needed");
  ImageSet set;
  set.count = n;
  set.channels = channels;
  set.height = set.width = size;
  set.source = "uniform noise (seed " + std::to_string(seed) + ")";
  set.pixels.resize(static_cast<size_t>(n) * channels * size * size);
  // Sixteen bytes per Philox call, counter = byte index / 16: the same bytes for a seed on every machine.
  for (size_t i = 0; i < set.pixels.size(); i += 16) {
    const uint64_t counter = i / 16;
    const Philox4x32 r = philox4x32_10(static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0, 0,
                                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    for (size_t b = 0; b < 16 && i + b < set.pixels.size(); ++b)
      set.pixels[i + b] = static_cast<uint8_t>(r.v[b / 4] >> (8 * (b % 4)));
  }
  return set;
}

ImageSet subset(const ImageSet& set, int64_t n, uint64_t seed) {
  if (n < 0 || n > set.count)
    throw std::invalid_argument("subset: cannot take " + std::to_string(n) + " images of " + set.source + "'s " +
                                std::to_string(set.count));
  Rng rng(seed);
  std::vector<int64_t> chosen = draw_without_replacement(set.count, n, rng);
  std::sort(chosen.begin(), chosen.end());
  const size_t bytes = static_cast<size_t>(set.channels) * set.height * set.width;
  ImageSet out;
  out.count = n;
  out.channels = set.channels;
  out.height = set.height;
  out.width = set.width;
  out.source = set.source + " (" + std::to_string(n) + " drawn with seed " + std::to_string(seed) + ")";
  out.class_names = set.class_names;
  out.pixels.resize(bytes * static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(set.pixels.begin() + static_cast<ptrdiff_t>(chosen[i] * bytes), bytes,
                out.pixels.begin() + static_cast<ptrdiff_t>(i * bytes));
    if (set.labelled()) out.labels.push_back(set.labels[chosen[i]]);
  }
  return out;
}

}  // namespace gancu::eval
