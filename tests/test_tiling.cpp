// Tiled inference (tools/gan/tiling.h): the windows partition the image with a full halo around every owned pixel,
// and stitching equals one pass over the whole image, bit for bit, for a network of known receptive radius.
#include "tools/gan/tiling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/testing.h"

namespace gancu::app {
namespace {

TEST(TileSpans, PartitionTheAxisWithAFullHaloAroundEveryOwnedPixel) {
  int checked = 0;
  for (int length = 1; length <= 70; ++length)
    for (int tile = 1; tile <= 24; ++tile)
      for (int halo = 0; halo <= 6; ++halo) {
        if (length > tile && tile <= 2 * halo) continue;
        const std::vector<TileSpan> spans = tile_spans(length, tile, halo);
        int next = 0;
        for (const TileSpan& s : spans) {
          ASSERT_EQ(s.size, std::min(tile, length));
          ASSERT_GE(s.start, 0);
          ASSERT_LE(s.start + s.size, length);
          ASSERT_EQ(s.own_begin, next) << "length " << length << " tile " << tile << " halo " << halo;
          ASSERT_LT(s.own_begin, s.own_end);
          for (int p = s.own_begin; p < s.own_end; ++p) {
            ASSERT_GE(std::max(0, p - halo), s.start) << "pixel " << p << " length " << length << " tile " << tile;
            ASSERT_LT(std::min(length - 1, p + halo), s.start + s.size) << "pixel " << p << " length " << length;
          }
          next = s.own_end;
          ++checked;
        }
        ASSERT_EQ(next, length);
      }
  EXPECT_GT(checked, 10000);
}

TEST(TileSpans, RefuseATileThatOwnsNothing) {
  try {
    tile_spans(100, 16, 8);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("use a tile larger than 16"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tile_spans(10, 16, 8).size(), 1u);  // one window over the whole axis needs no halo
}

// A network of receptive radius `passes`: that many 3x3 box sums (zero padding, fixed order per pixel), then a nearest
// upsampling by `scale` with a per-sub-pixel weight, so every output pixel of a block differs.
void box_network(const float* in, int channels, int h, int w, int passes, int scale, float* out) {
  std::vector<float> a(in, in + int64_t(channels) * h * w), b(a.size());
  for (int pass = 0; pass < passes; ++pass) {
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          float sum = 0;
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
              const int yy = y + dy, xx = x + dx;
              if (yy >= 0 && yy < h && xx >= 0 && xx < w) sum += a[(int64_t(c) * h + yy) * w + xx];
            }
          b[(int64_t(c) * h + y) * w + x] = sum / 9.0f;
        }
    std::swap(a, b);
  }
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < h * scale; ++y)
      for (int x = 0; x < w * scale; ++x)
        out[(int64_t(c) * h * scale + y) * w * scale + x] =
            a[(int64_t(c) * h + y / scale) * w + x / scale] * (1.0f + 0.125f * float(y % scale * scale + x % scale));
}

TEST(RunTiled, EqualsOnePassOverTheWholeImageBitForBit) {
  const int channels = 3, scale = 4, passes = 3;
  for (const auto& [h, w, tile] : std::vector<std::array<int, 3>>{{5, 7, 16}, {37, 23, 12}, {40, 40, 10}, {64, 9, 11}}) {
    const std::vector<float> image = testing::random_vector<float>(size_t(channels) * h * w, uint64_t(h * 100 + w));
    std::vector<float> whole(size_t(channels) * h * scale * w * scale);
    box_network(image.data(), channels, h, w, passes, scale, whole.data());
    int calls = 0;
    const std::vector<float> tiled = run_tiled(image.data(), channels, h, w, scale, tile, passes,
                                               [&](const float* in, int th, int tw, float* out) {
                                                 EXPECT_EQ(th, std::min(tile, h));
                                                 EXPECT_EQ(tw, std::min(tile, w));
                                                 box_network(in, channels, th, tw, passes, scale, out);
                                                 ++calls;
                                               });
    ASSERT_EQ(tiled.size(), whole.size());
    EXPECT_EQ(tiled, whole) << h << "x" << w << " in tiles of " << tile;
    EXPECT_EQ(calls, int(tile_spans(h, tile, passes).size() * tile_spans(w, tile, passes).size()));
  }
}

TEST(RunTiled, DiffersWhenTheHaloIsSmallerThanTheReceptiveRadius) {
  const int channels = 1, h = 40, w = 40, scale = 2, passes = 3;
  const std::vector<float> image = testing::random_vector<float>(size_t(h) * w, 5);
  std::vector<float> whole(size_t(h) * scale * w * scale);
  box_network(image.data(), channels, h, w, passes, scale, whole.data());
  const std::vector<float> tiled = run_tiled(image.data(), channels, h, w, scale, 12, passes - 1,
                                             [&](const float* in, int th, int tw, float* out) {
                                               box_network(in, channels, th, tw, passes, scale, out);
                                             });
  EXPECT_NE(tiled, whole);
}

}  // namespace
}  // namespace gancu::app
