#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "tests/temp_dir.h"
#include "tools/io/png.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;

class PngTest : public testing::TempDirTest {};

Image pattern(int w, int h, int channels) {
  Image img{w, h, channels, {}};
  for (int i = 0; i < w * h * channels; ++i) img.pixels.push_back(static_cast<uint8_t>((i * 37 + 11) % 256));
  return img;
}

// A minimal PNG encoder written straight from the PNG specification, independent of libpng, so the reader is
// tested on layouts gancu never writes itself (palette, 16-bit, 2-bit grey, grey+alpha).
std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  return be32(static_cast<uint32_t>(data.size())) + body + be32(crc);
}
// `rows` holds the raw scanlines without filter bytes.
std::string handmade_png(int w, int h, int bit_depth, int colour_type, const std::vector<std::string>& rows,
                         const std::string& plte = "", const std::string& trns = "") {
  std::string ihdr = be32(w) + be32(h);
  ihdr += static_cast<char>(bit_depth);
  ihdr += static_cast<char>(colour_type);
  ihdr += std::string(3, '\0');  // deflate, adaptive filtering, no interlace
  std::string raw;
  for (const std::string& row : rows) raw += '\0' + row;  // filter type None
  std::string packed(compressBound(static_cast<uLong>(raw.size())), '\0');
  uLongf packed_size = static_cast<uLongf>(packed.size());
  compress(reinterpret_cast<Bytef*>(packed.data()), &packed_size, reinterpret_cast<const Bytef*>(raw.data()),
           static_cast<uLong>(raw.size()));
  packed.resize(packed_size);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  png += chunk("IHDR", ihdr);
  if (!plte.empty()) png += chunk("PLTE", plte);
  if (!trns.empty()) png += chunk("tRNS", trns);
  return png + chunk("IDAT", packed) + chunk("IEND", "");
}

void expect_rejected(const std::string& path, const std::string& fragment) {
  try {
    read_png(path);
    ADD_FAILURE() << path << " was accepted";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST_F(PngTest, GreyAndRgbRoundTrip) {
  for (int channels : {1, 3}) {
    const Image img = pattern(7, 5, channels);
    const std::string p = path("img" + std::to_string(channels) + ".png");
    write_png(p, img);
    const Image back = read_png(p);
    EXPECT_EQ(back.width, 7);
    EXPECT_EQ(back.height, 5);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, img.pixels);
  }
}

TEST_F(PngTest, RgbaLosesItsAlpha) {
  const Image rgba = pattern(3, 2, 4);
  write_png(path("rgba.png"), rgba);
  const Image back = read_png(path("rgba.png"));
  ASSERT_EQ(back.channels, 3);
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(back.pixels[i * 3 + c], rgba.pixels[i * 4 + c]);
}

TEST_F(PngTest, ReadsPaletteSixteenBitLowBitAndGreyAlpha) {
  // Palette, 8-bit indices 0 1 / 2 1, with a tRNS entry that must be dropped, not composited.
  const std::string plte("\xff\x00\x00\x00\xff\x00\x10\x20\x30", 9);
  write_file_atomic(path("pal.png"), handmade_png(2, 2, 8, 3, {std::string("\x00\x01", 2), std::string("\x02\x01", 2)},
                                                  plte, std::string("\x00", 1)));
  Image img = read_png(path("pal.png"));
  ASSERT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 16, 32, 48, 0, 255, 0}));

  // 16-bit RGB: 0xFFFF → 255, 0x0000 → 0, 0x8080 → 128.
  write_file_atomic(path("16.png"), handmade_png(1, 1, 16, 2, {std::string("\xff\xff\x00\x00\x80\x80", 6)}));
  img = read_png(path("16.png"));
  ASSERT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{255, 0, 128}));

  // 2-bit grey, levels 0..3 → 0, 85, 170, 255.
  write_file_atomic(path("2bit.png"), handmade_png(4, 1, 2, 0, {std::string("\x1b", 1)}));
  img = read_png(path("2bit.png"));
  ASSERT_EQ(img.channels, 1);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0, 85, 170, 255}));

  // Grey + alpha: the alpha byte disappears.
  write_file_atomic(path("ga.png"), handmade_png(2, 1, 8, 4, {std::string("\x40\x00\xc0\xff", 4)}));
  img = read_png(path("ga.png"));
  ASSERT_EQ(img.channels, 1);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0x40, 0xc0}));
}

TEST_F(PngTest, RejectsCorruptFiles) {
  write_png(path("good.png"), pattern(16, 16, 3));
  const std::vector<char> good = read_file(path("good.png"));
  const std::string bytes(good.begin(), good.end());

  write_file_atomic(path("truncated.png"), bytes.substr(0, bytes.size() / 2));
  expect_rejected(path("truncated.png"), "corrupt PNG");

  std::string bad_signature = bytes;
  bad_signature[1] = 'X';
  write_file_atomic(path("signature.png"), bad_signature);
  expect_rejected(path("signature.png"), "bad signature");

  write_file_atomic(path("empty.png"), "");
  expect_rejected(path("empty.png"), "bad signature");

  std::string bad_crc = bytes;
  bad_crc[30] ^= 0x55;  // inside IHDR: a critical chunk with a wrong CRC
  write_file_atomic(path("crc.png"), bad_crc);
  expect_rejected(path("crc.png"), "corrupt PNG");

  expect_rejected(path("absent.png"), "cannot open");
}

TEST_F(PngTest, WriteRejectsInconsistentImages) {
  Image img = pattern(4, 4, 3);
  img.pixels.pop_back();
  EXPECT_THROW(write_png(path("bad.png"), img), std::runtime_error);
  EXPECT_FALSE(fs::exists(path("bad.png")));
}

TEST_F(PngTest, GridPlacesTilesLikeTorchvision) {
  // Five 1-channel 2x3 images, nrow 3, padding 1 → 2 rows x 3 columns of tiles; image i is filled with a value
  // whose byte is 50 · (i + 1).
  const int n = 5, h = 2, w = 3, nrow = 3, padding = 1;
  std::vector<float> images(n * h * w);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < h * w; ++k) images[i * h * w + k] = 50.0f * (i + 1) / 127.5f - 1.0f;
  const Image grid = make_grid(images.data(), n, 1, h, w, nrow, padding);
  ASSERT_EQ(grid.width, 3 * (w + padding) + padding);
  ASSERT_EQ(grid.height, 2 * (h + padding) + padding);
  ASSERT_EQ(grid.channels, 1);
  auto at = [&](int x, int y) { return grid.pixels[y * grid.width + x]; };
  for (int i = 0; i < n; ++i) {
    const int top = (i / nrow) * (h + padding) + padding, left = (i % nrow) * (w + padding) + padding;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) EXPECT_EQ(at(left + x, top + y), 50 * (i + 1)) << i;
  }
  EXPECT_EQ(at(0, 0), 0);                    // outer padding
  EXPECT_EQ(at(w + padding, padding), 0);    // between columns
  EXPECT_EQ(at(padding, h + padding), 0);    // between rows
  EXPECT_EQ(at(grid.width - 2, grid.height - 2), 0);  // the empty sixth slot
}

TEST_F(PngTest, GridMapsValueRangeAndChannels) {
  // One RGB 1x2 image: R = −1 and 1, G = 0, B = out of range (clamped).
  const std::vector<float> image = {-1.0f, 1.0f, 0.0f, 0.0f, -3.0f, 3.0f};
  const Image grid = make_grid(image.data(), 1, 3, 1, 2, 8, 0);
  ASSERT_EQ(grid.width, 2);
  ASSERT_EQ(grid.height, 1);
  EXPECT_EQ(grid.pixels, (std::vector<uint8_t>{0, 128, 0, 255, 128, 255}));
}

TEST_F(PngTest, LossPlotDecodesToTheRequestedSize) {
  std::vector<double> d_loss, g_loss;
  for (int i = 0; i < 300; ++i) {
    d_loss.push_back(1.4 * std::exp(-i / 80.0) + 0.1);
    g_loss.push_back(0.7 + 0.3 * std::sin(i / 10.0));
  }
  g_loss[17] = std::nan("");  // gaps are tolerated
  std::vector<double> steps;
  for (int i = 0; i < 300; ++i) steps.push_back(10.0 * (i + 1));
  write_loss_plot(path("loss.png"), steps, {{"loss_D", d_loss}, {"loss_G", g_loss}}, 640, 320);
  const Image plot = read_png(path("loss.png"));
  EXPECT_EQ(plot.width, 640);
  EXPECT_EQ(plot.height, 320);
  EXPECT_EQ(plot.channels, 3);
  // Both series' colours appear (the first two palette entries), so the lines were drawn.
  auto count_colour = [&](uint8_t r, uint8_t g, uint8_t b) {
    int count = 0;
    for (size_t i = 0; i < plot.pixels.size(); i += 3)
      count += plot.pixels[i] == r && plot.pixels[i + 1] == g && plot.pixels[i + 2] == b;
    return count;
  };
  EXPECT_GT(count_colour(31, 119, 180), 300);
  EXPECT_GT(count_colour(255, 127, 14), 300);

  write_loss_plot(path("empty.png"), {}, {}, 200, 100);  // no series: axes only, still a valid file
  EXPECT_EQ(read_png(path("empty.png")).width, 200);
  EXPECT_THROW(write_loss_plot(path("tiny.png"), {}, {}, 10, 10), std::invalid_argument);
  EXPECT_THROW(write_loss_plot(path("short.png"), {1, 2}, {{"loss", {1.0}}}, 640, 320), std::invalid_argument);
}

}  // namespace
}  // namespace gancu
