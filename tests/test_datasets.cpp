#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "tests/dataset_files.h"
#include "tests/temp_dir.h"
#include "tools/io/dataset.h"
#include "tools/io/png.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;

class DatasetTest : public testing::TempDirTest {};

using testing::expect_error;
using testing::idx_bytes;
using testing::write_gzip;

ImageSet small_set(int64_t count, int channels = 1, int size = 2) {
  ImageSet set{count, channels, size, size, {}, "small"};
  for (int64_t i = 0; i < count * channels * size * size; ++i) set.pixels.push_back(static_cast<uint8_t>(i % 256));
  return set;
}

// Batches as lists of image indices, recovered from the first float of each image of small_set(count, 1, 1).
std::vector<int> next_indices(BatchLoader& loader, int batch) {
  std::vector<float> out(batch);
  loader.next(out.data());
  std::vector<int> idx;
  for (float v : out) idx.push_back(static_cast<int>(std::lround((v + 1.0f) * 127.5f)));
  return idx;
}

TEST_F(DatasetTest, RealFashionMnistTestSet) {
  const std::string file = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(file)) GTEST_SKIP() << file << " is not installed (Debian package dataset-fashion-mnist)";
  const ImageSet set = load_idx_images(file);
  EXPECT_EQ(set.count, 10000);
  EXPECT_EQ(set.channels, 1);
  EXPECT_EQ(set.height, 28);
  EXPECT_EQ(set.width, 28);
  ASSERT_EQ(set.pixels.size(), 10000u * 28 * 28);
  // Reference values computed once with numpy from the same file.
  const int64_t sum = std::accumulate(set.pixels.begin(), set.pixels.end(), int64_t{0});
  EXPECT_EQ(sum, 573469082);
  EXPECT_NEAR(double(sum) / double(set.pixels.size()), 73.1, 0.1);
  EXPECT_EQ(std::accumulate(set.pixels.begin(), set.pixels.begin() + 784, 0), 33456);
  const std::vector<uint8_t> row14(set.pixels.begin() + 14 * 28 + 10, set.pixels.begin() + 14 * 28 + 18);
  EXPECT_EQ(row14, (std::vector<uint8_t>{0, 0, 98, 136, 110, 109, 110, 162}));
}

TEST_F(DatasetTest, FashionMnistSpecIsTrainPlusTestPadded) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "not installed";
  const ImageSet set = load_dataset("fashion-mnist", 1, 32, {.require_labels = true});
  EXPECT_EQ(set.count, 70000);
  EXPECT_EQ(set.height, 32);
  EXPECT_EQ(set.width, 32);
  EXPECT_EQ(set.pixels.size(), 70000u * 32 * 32);
  // The t10k images come last: image 60000, row 14 (16 after padding), the same bytes as in the test above.
  const uint8_t* row = set.pixels.data() + 60000 * 1024 + 16 * 32 + 2;
  EXPECT_EQ(std::vector<uint8_t>(row + 10, row + 18), (std::vector<uint8_t>{0, 0, 98, 136, 110, 109, 110, 162}));
  // Labels follow their images through the concatenation and the padding (reference values read with Python).
  ASSERT_EQ(set.labels.size(), 70000u);
  EXPECT_EQ(set.class_names, fashion_mnist_class_names());
  EXPECT_EQ(std::vector<int32_t>(set.labels.begin(), set.labels.begin() + 10),
            (std::vector<int32_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  EXPECT_EQ(std::vector<int32_t>(set.labels.begin() + 60000, set.labels.begin() + 60010),
            (std::vector<int32_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  std::vector<int> per_class(10, 0);
  for (int32_t label : set.labels) ++per_class.at(static_cast<size_t>(label));
  EXPECT_EQ(per_class, std::vector<int>(10, 7000));
}

TEST_F(DatasetTest, IdxRoundTripPlainAndGzip) {
  const std::string bytes = idx_bytes(3, 4, 5);
  write_file_atomic(path("x-idx3-ubyte"), bytes);
  write_gzip(path("x-idx3-ubyte.gz"), bytes);
  for (const std::string& p : {path("x-idx3-ubyte"), path("x-idx3-ubyte.gz")}) {
    const ImageSet set = load_idx_images(p);
    EXPECT_EQ(set.count, 3);
    EXPECT_EQ(set.height, 4);
    EXPECT_EQ(set.width, 5);
    EXPECT_EQ(set.source, p);
    EXPECT_EQ(std::string(set.pixels.begin(), set.pixels.end()), bytes.substr(16));
  }
}

TEST_F(DatasetTest, IdxErrors) {
  const std::string bytes = idx_bytes(3, 4, 5);
  write_file_atomic(path("short"), bytes.substr(0, bytes.size() - 1));
  expect_error([&] { load_idx_images(path("short")); }, path("short"), "truncated");
  write_gzip(path("short.gz"), bytes.substr(0, bytes.size() - 7));
  expect_error([&] { load_idx_images(path("short.gz")); }, path("short.gz"), "truncated");
  write_file_atomic(path("header"), bytes.substr(0, 10));
  expect_error([&] { load_idx_images(path("header")); }, path("header"), "truncated IDX header");
  write_file_atomic(path("labels"), idx_bytes(3, 4, 5, 0x801));  // a label file is not an image file
  expect_error([&] { load_idx_images(path("labels")); }, path("labels"), "wrong magic 0x00000801");
  write_file_atomic(path("zero"), idx_bytes(0, 4, 5));
  expect_error([&] { load_idx_images(path("zero")); }, path("zero"), "bad dimensions");
  write_file_atomic(path("long"), bytes + "xx");
  expect_error([&] { load_idx_images(path("long")); }, path("long"), "unexpected bytes");
  // A gzip file cut in the middle of its stream.
  write_gzip(path("full.gz"), idx_bytes(50, 28, 28));
  const std::vector<char> gz = read_file(path("full.gz"));
  write_file_atomic(path("cut.gz"), std::string(gz.begin(), gz.begin() + gz.size() / 2));
  expect_error([&] { load_idx_images(path("cut.gz")); }, path("cut.gz"), "corrupt gzip data (unexpected end of file)");
  expect_error([&] { load_idx_images(path("absent")); }, path("absent"), "no such file");
}

TEST_F(DatasetTest, CifarFileAndFolder) {
  auto records = [](int n, int first) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      out += static_cast<char>((first + i) % 10);  // label
      for (int k = 0; k < 3072; ++k) out += static_cast<char>((first + i + k) % 251);
    }
    return out;
  };
  write_file_atomic(path("one.bin"), records(3, 0));
  ImageSet set = load_cifar10(path("one.bin"));
  EXPECT_EQ(set.count, 3);
  EXPECT_EQ(set.channels, 3);
  EXPECT_EQ(set.height, 32);
  EXPECT_EQ(set.width, 32);
  EXPECT_EQ(set.pixels[0], 0);
  EXPECT_EQ(set.pixels[3072 + 1024], (1 + 1024) % 251);  // image 1, green plane, first pixel

  fs::create_directories(path("cifar"));
  for (int b = 1; b <= 5; ++b)
    write_file_atomic(path("cifar/data_batch_" + std::to_string(b) + ".bin"), records(2, 2 * (b - 1)));
  set = load_dataset(path("cifar"), 3, 32);
  EXPECT_EQ(set.count, 10);
  EXPECT_EQ(set.pixels[9 * 3072 + 5], (9 + 5) % 251);

  fs::remove(path("cifar/data_batch_4.bin"));
  expect_error([&] { load_cifar10(path("cifar")); }, path("cifar/data_batch_4.bin"), "cannot open");
  write_file_atomic(path("bad.bin"), records(2, 0).substr(0, 5000));
  expect_error([&] { load_cifar10(path("bad.bin")); }, path("bad.bin"), "3073-byte");
}

TEST_F(DatasetTest, PngFolder) {
  fs::create_directories(path("png"));
  Image rgb{32, 32, 3, {}};
  for (int i = 0; i < 32 * 32 * 3; ++i) rgb.pixels.push_back(static_cast<uint8_t>(i % 256));
  write_png(path("png/a.png"), rgb);
  Image grey{32, 32, 1, std::vector<uint8_t>(32 * 32, 77)};
  write_png(path("png/b.PNG"), grey);
  write_file_atomic(path("png/notes.txt"), "ignored");

  ImageSet set = load_png_folder(path("png"), 3, 32);
  ASSERT_EQ(set.count, 2);
  EXPECT_EQ(set.pixels[0], 0);                  // a.png first (sorted), R plane, pixel 0
  EXPECT_EQ(set.pixels[1024 + 1], (3 + 1) % 256);  // G plane, pixel 1 comes from HWC byte 4
  for (int c = 0; c < 3; ++c) EXPECT_EQ(set.pixels[3072 + c * 1024 + 500], 77);  // grey replicated

  set = load_png_folder(path("png"), 1, 32);
  // ITU-R 601 luma of (R, G, B) = (0, 1, 2): 0.587 + 0.228 = 0.815 → 1.
  EXPECT_EQ(set.pixels[0], 1);
  EXPECT_EQ(set.pixels[1024 + 7], 77);

  // Non-square images are centre-cropped: a 48x32 image whose centre 32x32 is 200 and sides are 0.
  Image wide{48, 32, 1, std::vector<uint8_t>(48 * 32, 0)};
  for (int y = 0; y < 32; ++y)
    for (int x = 8; x < 40; ++x) wide.pixels[y * 48 + x] = 200;
  fs::create_directories(path("wide"));
  write_png(path("wide/w.png"), wide);
  set = load_png_folder(path("wide"), 1, 32);
  EXPECT_EQ(set.pixels, std::vector<uint8_t>(32 * 32, 200));

  fs::create_directories(path("empty"));
  expect_error([&] { load_png_folder(path("empty"), 3, 32); }, path("empty"), "no .png files");
  write_file_atomic(path("png/c.png"), "not really a png");
  expect_error([&] { load_png_folder(path("png"), 3, 32); }, path("png/c.png"), "bad signature");
}

TEST_F(DatasetTest, PadsTwentyEightToThirtyTwo) {
  ImageSet set = small_set(2, 1, 28);
  for (auto& p : set.pixels) p = static_cast<uint8_t>(p | 1);  // no zeros inside the image
  const ImageSet padded = conform_images(set, 1, 32);
  ASSERT_EQ(padded.count, 2);
  ASSERT_EQ(padded.height, 32);
  for (int64_t i = 0; i < 2; ++i)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const uint8_t v = padded.pixels[i * 1024 + y * 32 + x];
        const bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
        if (inside) ASSERT_EQ(v, set.pixels[i * 784 + (y - 2) * 28 + (x - 2)]) << y << "," << x;
        else ASSERT_EQ(v, 0) << y << "," << x;
      }
  const ImageSet rgb = conform_images(set, 3, 32);
  EXPECT_EQ(rgb.channels, 3);
  EXPECT_EQ(rgb.pixels[2 * 1024 + 5 * 32 + 7], set.pixels[3 * 28 + 5]);  // blue plane of image 0
}

// A million 2x2 images asked for at 4096x4096 (16 TiB) are refused with the numbers before anything is allocated.
TEST_F(DatasetTest, AnImageSizeBeyondMemoryIsRefusedWithItsNumbers) {
  ImageSet tiny{1000000, 1, 2, 2, std::vector<uint8_t>(4000000, 7), "tiny.idx"};
  expect_error([&] { conform_images(tiny, 1, 4096); }, "tiny.idx", "1000000 images at 4096x4096x1 need 15.3 TiB");
}

TEST_F(DatasetTest, ResizesOtherSizesBicubically) {
  ImageSet flat{3, 1, 28, 28, std::vector<uint8_t>(3 * 784, 90), "flat"};
  const ImageSet big = conform_images(flat, 1, 64);
  EXPECT_EQ(big.height, 64);
  EXPECT_EQ(big.pixels, std::vector<uint8_t>(3 * 64 * 64, 90));  // a constant image stays constant
  const ImageSet small = conform_images(flat, 3, 16);
  EXPECT_EQ(small.pixels, std::vector<uint8_t>(3 * 3 * 16 * 16, 90));
}

TEST_F(DatasetTest, DatasetSpecs) {
  fs::create_directories(path("data/mnist"));
  write_file_atomic(path("data/mnist/mnist-images-idx3-ubyte"), idx_bytes(4, 28, 28));
  ::setenv("GANCU_DATA_DIR", path("data").c_str(), 1);
  const ImageSet mnist = load_dataset("mnist", 1, 28);
  ::unsetenv("GANCU_DATA_DIR");
  EXPECT_EQ(mnist.count, 4);
  EXPECT_EQ(mnist.height, 28);

  write_file_atomic(path("x-idx3-ubyte"), idx_bytes(2, 28, 28));
  EXPECT_EQ(load_dataset(path("x-idx3-ubyte"), 1, 32).width, 32);
  expect_error([&] { load_dataset(path("nothing-here"), 1, 32); }, path("nothing-here"), "unknown data set");
}

TEST_F(DatasetTest, LoaderScalesToMinusOneOne) {
  ImageSet set{3, 1, 1, 1, {0, 255, 51}, "three"};
  BatchLoader loader(set, 3, 1);
  std::vector<float> out(3);
  loader.next(out.data());
  std::multiset<float> values(out.begin(), out.end());
  EXPECT_EQ(values, (std::multiset<float>{-1.0f, 1.0f, 51 / 127.5f - 1.0f}));
}

TEST_F(DatasetTest, LoaderShufflesDeterministicallyAndCoversEachEpoch) {
  const ImageSet set = small_set(20, 1, 1);
  BatchLoader a(set, 5, 42), b(set, 5, 42), c(set, 5, 43);
  std::vector<int> seq_a, seq_b, seq_c;
  for (int i = 0; i < 8; ++i) {  // two epochs
    for (int v : next_indices(a, 5)) seq_a.push_back(v);
    for (int v : next_indices(b, 5)) seq_b.push_back(v);
    for (int v : next_indices(c, 5)) seq_c.push_back(v);
  }
  EXPECT_EQ(seq_a, seq_b);
  EXPECT_NE(seq_a, seq_c);
  std::vector<int> identity(20);
  std::iota(identity.begin(), identity.end(), 0);
  std::vector<int> epoch0(seq_a.begin(), seq_a.begin() + 20), epoch1(seq_a.begin() + 20, seq_a.end());
  EXPECT_NE(epoch0, identity);  // shuffled
  EXPECT_NE(epoch0, epoch1);    // reshuffled per epoch
  std::sort(epoch0.begin(), epoch0.end());
  std::sort(epoch1.begin(), epoch1.end());
  EXPECT_EQ(epoch0, identity);  // each image exactly once per epoch
  EXPECT_EQ(epoch1, identity);
  EXPECT_EQ(a.epoch(), 1);
  EXPECT_EQ(a.position(), 20);
}

TEST_F(DatasetTest, RestoreContinuesTheSameSequence) {
  const ImageSet set = small_set(23, 1, 1);  // 23 is not a multiple of 7: batches straddle epochs
  BatchLoader uninterrupted(set, 7, 9);
  std::vector<int> expected;
  for (int i = 0; i < 12; ++i) {
    const std::vector<int> batch = next_indices(uninterrupted, 7);
    if (i >= 5) expected.insert(expected.end(), batch.begin(), batch.end());
  }
  BatchLoader first(set, 7, 9);
  for (int i = 0; i < 5; ++i) next_indices(first, 7);
  BatchLoader resumed(set, 7, 9);
  resumed.restore(first.epoch(), first.position());
  std::vector<int> got;
  for (int i = 5; i < 12; ++i)
    for (int v : next_indices(resumed, 7)) got.push_back(v);
  EXPECT_EQ(got, expected);
  EXPECT_THROW(resumed.restore(0, 24), std::invalid_argument);
  EXPECT_THROW(BatchLoader(ImageSet{}, 4, 1), std::invalid_argument);
}

}  // namespace
}  // namespace gancu
