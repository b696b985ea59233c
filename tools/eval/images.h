// The image sets FID and KID compare, as uint8 ImageSets (tools/io/dataset.h): generated images made into the bytes a
// data set holds, the noise ceiling, and seeded subsets of a data set (the floor: train against test, equal sizes).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "tools/io/dataset.h"

namespace gancu::eval {

// Generator output [n, C, H, W] (C 1 or 3) in [-1, 1] → uint8 images, rounded as sample grids are (byte_from_unit,
// tools/io/png.h), then conformed to `channels` × `size`² exactly as training data is (conform_images: 28×28 padded
// to 32, other sizes cropped and resized). Throws std::invalid_argument for another rank or channel count.
ImageSet images_from_generator(const Tensor& images, int channels, int size);
// The FID ceiling: n images of uniform random bytes (seeded), channels × size².
ImageSet noise_images(int64_t n, int channels, int size, uint64_t seed);
// n images drawn without replacement from `set` (seeded), kept in the set's order, labels with them; 0 ≤ n ≤ count,
// else std::invalid_argument.
ImageSet subset(const ImageSet& set, int64_t n, uint64_t seed);

// k distinct indices of [0, n), in the order a partial Fisher–Yates shuffle driven by `rng` draws them (each k-subset
// equally likely, up to Rng::below's bias). 0 ≤ k ≤ n, else std::invalid_argument.
std::vector<int64_t> draw_without_replacement(int64_t n, int64_t k, Rng& rng);

}  // namespace gancu::eval
