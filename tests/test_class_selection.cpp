// One class of a labelled set (select_class, class_index): by name or index, on the real Fashion-MNIST test set and
// on class-folder PNGs, with its errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
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

class ClassSelectionTest : public testing::TempDirTest {};

// The bytes of the images of `set` whose label is `label`, in order: what select_class must return.
std::vector<uint8_t> pixels_of_class(const ImageSet& set, int32_t label) {
  const size_t image = static_cast<size_t>(set.channels) * set.height * set.width;
  std::vector<uint8_t> out;
  for (int64_t i = 0; i < set.count; ++i)
    if (set.labels[i] == label)
      out.insert(out.end(), set.pixels.begin() + static_cast<std::ptrdiff_t>(i * image),
                 set.pixels.begin() + static_cast<std::ptrdiff_t>((i + 1) * image));
  return out;
}

void write_grey_png(const std::string& file, uint8_t value) {
  write_png(file, Image{8, 8, 1, std::vector<uint8_t>(64, value)});
}

TEST_F(ClassSelectionTest, RealFashionMnistByNameAndIndex) {
  const std::string file = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(file)) GTEST_SKIP() << file << " is not installed (Debian package dataset-fashion-mnist)";
  const ImageSet all = load_idx_images(file);
  ASSERT_EQ(all.count, 10000);

  const ImageSet sneakers = select_class(all, "sneaker");
  EXPECT_EQ(sneakers.count, 1000);  // t10k holds 1,000 of each class
  EXPECT_EQ(sneakers.labels, std::vector<int32_t>(1000, 7));
  EXPECT_EQ(sneakers.class_names, fashion_mnist_class_names());
  EXPECT_EQ(sneakers.channels, 1);
  EXPECT_EQ(sneakers.height, 28);
  EXPECT_EQ(sneakers.width, 28);
  EXPECT_EQ(sneakers.pixels, pixels_of_class(all, 7));
  EXPECT_NE(sneakers.pixels, pixels_of_class(all, 5));  // sandals are other images
  EXPECT_EQ(sneakers.source, file + " (class 7 Sneaker)");

  // Any case, names with spaces and slashes, and the index all name the same class.
  for (const char* spec : {"Sneaker", "SNEAKER", "7"})
    EXPECT_EQ(select_class(all, spec).pixels, sneakers.pixels) << spec;
  EXPECT_EQ(select_class(all, "ankle boot").labels.front(), 9);
  EXPECT_EQ(select_class(all, "t-shirt/top").labels.front(), 0);
  EXPECT_EQ(select_class(all, "0").labels.front(), 0);

  const std::string listed = "(classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, "
                             "7 Sneaker, 8 Bag, 9 Ankle boot; give a name or an index)";
  expect_error([&] { select_class(all, "sock"); }, file, "no class 'sock' " + listed);
  expect_error([&] { select_class(all, "10"); }, file, "no class '10' ");
  expect_error([&] { select_class(all, "-1"); }, file, "no class '-1' ");
  expect_error([&] { select_class(all, ""); }, file, "no class '' ");
  expect_error([&] { select_class(all, "99999999999"); }, file, "no class '99999999999' ");

  // After conforming to 32x32 (as training loads it) the class is the same images, padded.
  const ImageSet padded = select_class(load_dataset(file, 1, 32), "Trouser");
  EXPECT_EQ(padded.count, 1000);
  EXPECT_EQ(padded.width, 32);
  EXPECT_EQ(padded.labels, std::vector<int32_t>(1000, 1));
  const ImageSet trousers = select_class(all, "trouser");
  for (int y = 0; y < 28; ++y)  // row y of the first trousers image is row y + 2, columns 2-29, of the padded one
    for (int x = 0; x < 28; ++x) ASSERT_EQ(padded.pixels[(y + 2) * 32 + x + 2], trousers.pixels[y * 28 + x]);

  // The selected set trains like any other: the loader hands out its (single) label.
  BatchLoader loader(sneakers, 16, 3);
  std::vector<float> images(16 * 28 * 28);
  std::vector<int32_t> labels(16, -1);
  loader.next(images.data(), labels.data());
  EXPECT_EQ(labels, std::vector<int32_t>(16, 7));
}

TEST_F(ClassSelectionTest, PngClassFolders) {
  // Folders "10" and "3" sort before the animals: classes 0 "10", 1 "3", 2 ant, 3 bee, 4 cat.
  for (const char* dir : {"set/cat", "set/ant", "set/bee", "set/3", "set/10"}) fs::create_directories(path(dir));
  write_grey_png(path("set/10/a.png"), 100);
  write_grey_png(path("set/3/a.png"), 30);
  write_grey_png(path("set/3/b.png"), 31);
  write_grey_png(path("set/ant/a.png"), 1);
  write_grey_png(path("set/bee/a.png"), 2);
  write_grey_png(path("set/cat/b.png"), 41);
  write_grey_png(path("set/cat/a.png"), 40);
  const ImageSet set = load_dataset(path("set"), 1, 8);
  ASSERT_EQ(set.class_names, (std::vector<std::string>{"10", "3", "ant", "bee", "cat"}));

  const ImageSet cats = select_class(set, "CAT");
  ASSERT_EQ(cats.count, 2);
  EXPECT_EQ(cats.labels, (std::vector<int32_t>{4, 4}));
  EXPECT_EQ(cats.class_names, set.class_names);
  EXPECT_EQ(cats.pixels[0], 40);  // sorted by file name within the class
  EXPECT_EQ(cats.pixels[64], 41);
  EXPECT_EQ(cats.source, path("set") + " (class 4 cat)");

  // A name wins over an index: "3" is the folder named 3 (class 1), "0" is class 0 (the folder named 10).
  const ImageSet three = select_class(set, "3");
  EXPECT_EQ(three.count, 2);
  EXPECT_EQ(three.labels, (std::vector<int32_t>{1, 1}));
  EXPECT_EQ(three.pixels[0], 30);
  EXPECT_EQ(select_class(set, "0").pixels[0], 100);
  EXPECT_EQ(select_class(set, "10").pixels[0], 100);
  EXPECT_EQ(select_class(set, "4").pixels[0], 40);
  expect_error([&] { select_class(set, "5"); }, path("set"),
               "no class '5' (classes: 0 10, 1 3, 2 ant, 3 bee, 4 cat; give a name or an index)");

  // Two folders that differ only by case: the exact name picks one, another case is ambiguous.
  fs::create_directories(path("set/Cat"));
  write_grey_png(path("set/Cat/a.png"), 50);
  const ImageSet both = load_dataset(path("set"), 1, 8);
  EXPECT_EQ(select_class(both, "Cat").pixels[0], 50);
  EXPECT_EQ(select_class(both, "cat").pixels[0], 40);
  expect_error([&] { select_class(both, "CAT"); }, path("set"), "class 'CAT' matches 2 classes by case alone");
}

TEST_F(ClassSelectionTest, Errors) {
  // An unlabelled set: an IDX file without its label file, and a PNG folder without class folders.
  write_file_atomic(path("train-images-idx3-ubyte"), idx_bytes(4, 28, 28));
  const ImageSet unlabelled = load_idx_images(path("train-images-idx3-ubyte"));
  expect_error([&] { select_class(unlabelled, "0"); }, path("train-images-idx3-ubyte"),
               "has no labels, so no class can be chosen");
  fs::create_directories(path("flat"));
  write_grey_png(path("flat/a.png"), 1);
  expect_error([&] { select_class(load_dataset(path("flat"), 1, 8), "a"); }, path("flat"),
               "has no labels, so no class can be chosen");

  // A known class that has no images in this set (MNIST digits, none of them a 5).
  write_file_atomic(path("train-labels-idx1-ubyte"), be32(0x801) + be32(4) + std::string{0, 2, 2, 9});
  const ImageSet digits = load_idx_images(path("train-images-idx3-ubyte"));
  ASSERT_EQ(digits.num_classes(), 10);
  expect_error([&] { select_class(digits, "5"); }, path("train-images-idx3-ubyte"), "class 5 (5) has no images");
  const ImageSet twos = select_class(digits, "2");
  EXPECT_EQ(twos.count, 2);
  EXPECT_EQ(twos.pixels, pixels_of_class(digits, 2));

  // A set whose labels or pixels do not match its count (built by hand) is refused, not read past its end.
  ImageSet broken = digits;
  broken.labels.pop_back();
  expect_error([&] { select_class(broken, "2"); }, path("train-images-idx3-ubyte"), "3 labels for 4 images");
  broken = digits;
  broken.pixels.pop_back();
  expect_error([&] { select_class(broken, "2"); }, path("train-images-idx3-ubyte"), "3135 pixel bytes for 4 images");

  // class_index on its own, as a sampler naming a class of a checkpoint would use it.
  EXPECT_EQ(class_index(cifar10_class_names(), "Frog", "cifar"), 6);
  EXPECT_EQ(class_index(cifar10_class_names(), "9", "cifar"), 9);
  expect_error([&] { class_index(cifar10_class_names(), "frogs", "cifar"); }, "cifar", "no class 'frogs'");
}

}  // namespace
}  // namespace gancu
