// Training images held in memory as bytes, and a shuffling batch loader that turns them into [-1, 1] floats.
// Loaders throw std::runtime_error("<path>: <problem>") on missing, truncated or malformed data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gancu {

struct ImageSet {
  int64_t count = 0;
  int channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;  // NCHW
  std::string source;           // where the images came from, for logs and error messages
};

// An IDX3 image file (magic 0x00000803), plain or gzip-compressed.
ImageSet load_idx_images(const std::string& path);
// A CIFAR-10 binary batch (3073-byte records: label + 3x32x32) or a folder holding data_batch_1.bin … data_batch_5.bin.
ImageSet load_cifar10(const std::string& path);
// Every *.png in `dir` (sorted by name), centre-cropped to a square, resized to size×size, converted to `channels`.
ImageSet load_png_folder(const std::string& dir, int channels, int size);

// spec: "fashion-mnist" or "" (Debian's /usr/share/datasets/fashion-mnist, train + t10k = 70,000 images), "mnist"
// (the IDX written by tools/mnist_to_idx.mjs, in $GANCU_DATA_DIR/mnist or data/mnist in the current folder or one
// of its parents), an IDX file, a CIFAR-10 batch file or folder, or a folder of PNGs.
// The result has `channels` channels (1 or 3) and size×size pixels; see conform_images.
ImageSet load_dataset(const std::string& spec, int channels, int size);

// Converts channels (grey→RGB by replication, RGB→grey by ITU-R 601 luma) and makes images size×size: 28x28 → 32x32
// by zero padding (2 pixels each side, as DCGAN-style MNIST training does), otherwise centre crop to a square and
// antialiased bicubic resize.
ImageSet conform_images(ImageSet set, int channels, int size);

// Deterministic shuffled mini-batches. Epoch e visits the images in a Fisher-Yates permutation drawn from
// Rng(seed, e), so (epoch, position) is enough to resume exactly where a run stopped.
class BatchLoader {
 public:
  // `set` must outlive the loader.
  BatchLoader(const ImageSet& set, int batch_size, uint64_t seed);

  // Fills out[batch, C, H, W] with x / 127.5 − 1; a batch that reaches the end of an epoch continues in the next.
  void next(float* out);

  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }  // images of the current epoch already handed out
  int batch_size() const { return batch_size_; }
  // Resumes as if next() had been called until (epoch, position).
  void restore(int64_t epoch, int64_t position);

 private:
  void shuffle_for_epoch();

  const ImageSet* set_;
  int batch_size_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace gancu
