#include "tools/io/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/files.h"
#include "core/rng.h"
#include "kernels/cpu/resize.h"
#include "tools/io/png.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

// zlib prefixes its messages with the file name, which our own message already starts with.
std::string gz_problem(gzFile file, const std::string& path, int* code) {
  std::string why = gzerror(file, code);
  if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);
  return why;
}

// Reads a whole file, inflating it if it is gzip-compressed (zlib passes plain files through unchanged).
std::vector<uint8_t> read_maybe_gzipped(const std::string& path) {
  if (!fs::is_regular_file(path)) fail(path, fs::exists(path) ? "not a regular file" : "no such file");
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) fail(path, "cannot open");
  std::vector<uint8_t> bytes;
  std::array<uint8_t, 1 << 16> chunk;
  while (true) {
    const int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string why = gz_problem(file, path, &code);
      gzclose(file);
      fail(path, "corrupt gzip data (" + why + ")");
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk.data(), chunk.data() + n);
  }
  // A gzip stream cut short reads as a clean end of file; zlib reports it only through gzerror.
  int code = Z_OK;
  const std::string why = gz_problem(file, path, &code);
  gzclose(file);
  if (code != Z_OK && code != Z_STREAM_END) fail(path, "corrupt gzip data (" + why + ")");
  return bytes;
}

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Appends b's images to a (same image size).
void append_images(const std::string& path, ImageSet& a, const ImageSet& b) {
  if (a.channels != b.channels || a.height != b.height || a.width != b.width)
    fail(path, "image size " + std::to_string(b.channels) + "x" + std::to_string(b.height) + "x" +
                   std::to_string(b.width) + " differs from " + a.source + "'s " + std::to_string(a.channels) + "x" +
                   std::to_string(a.height) + "x" + std::to_string(a.width));
  a.pixels.insert(a.pixels.end(), b.pixels.begin(), b.pixels.end());
  a.count += b.count;
}

uint8_t to_byte(float v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

// HWC bytes of any channel count → CHW bytes with `channels` channels.
void convert_channels(const uint8_t* in, int in_channels, int64_t pixels_per_plane, bool interleaved, int channels,
                      uint8_t* out) {
  auto sample = [&](int64_t p, int c) {
    return interleaved ? in[p * in_channels + c] : in[static_cast<int64_t>(c) * pixels_per_plane + p];
  };
  for (int64_t p = 0; p < pixels_per_plane; ++p) {
    if (in_channels == channels) {
      for (int c = 0; c < channels; ++c) out[c * pixels_per_plane + p] = sample(p, c);
    } else if (channels == 3) {  // grey → RGB
      for (int c = 0; c < 3; ++c) out[c * pixels_per_plane + p] = sample(p, 0);
    } else {  // RGB → grey, ITU-R BT.601 luma
      out[p] = to_byte(0.299f * sample(p, 0) + 0.587f * sample(p, 1) + 0.114f * sample(p, 2));
    }
  }
}

// One CHW uint8 image → size×size: centre crop to a square, then bicubic resize (or nothing when already the size).
void crop_and_resize(const uint8_t* in, int channels, int h, int w, int size, uint8_t* out) {
  const int side = std::min(h, w), top = (h - side) / 2, left = (w - side) / 2;
  std::vector<float> square(static_cast<size_t>(channels) * side * side);
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x)
        square[(static_cast<size_t>(c) * side + y) * side + x] = in[(static_cast<size_t>(c) * h + top + y) * w + left + x];
  std::vector<float> resized(static_cast<size_t>(channels) * size * size);
  if (side == size) resized = std::move(square);
  else ref::resize_bicubic<float>(1, channels, side, side, size, size, square.data(), resized.data());
  for (size_t i = 0; i < resized.size(); ++i) out[i] = to_byte(resized[i]);  // bicubic overshoot is clamped
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kMnistImages = "mnist-images-idx3-ubyte";

// $GANCU_DATA_DIR/mnist first, then data/mnist in the current folder and its parents (so it is found from a build
// folder inside the project too).
std::string find_mnist() {
  if (const char* root = std::getenv("GANCU_DATA_DIR"); root && *root) {
    const fs::path p = fs::path(root) / "mnist" / kMnistImages;
    if (!fs::exists(p)) fail(p.string(), "no such file (GANCU_DATA_DIR is set; run tools/mnist_to_idx.mjs to create it)");
    return p.string();
  }
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !ec && !dir.empty(); dir = dir.parent_path()) {
    const fs::path p = dir / "data" / "mnist" / kMnistImages;
    if (fs::exists(p)) return p.string();
    if (dir == dir.parent_path()) break;
  }
  fail(std::string("data/mnist/") + kMnistImages,
       "not found in the current folder or its parents (run tools/mnist_to_idx.mjs, or set GANCU_DATA_DIR)");
}

}  // namespace

ImageSet load_idx_images(const std::string& path) {
  const std::vector<uint8_t> bytes = read_maybe_gzipped(path);
  if (bytes.size() < 16) fail(path, "truncated IDX header (" + std::to_string(bytes.size()) + " bytes)");
  const uint32_t magic = big_endian_u32(bytes.data());
  if (magic != 0x00000803) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    fail(path, std::string("wrong magic ") + hex + " (expected 0x00000803, an IDX3 unsigned-byte image file)");
  }
  const uint32_t count = big_endian_u32(bytes.data() + 4), rows = big_endian_u32(bytes.data() + 8),
                 cols = big_endian_u32(bytes.data() + 12);
  if (count == 0 || rows == 0 || cols == 0 || rows > 16384 || cols > 16384)
    fail(path, "bad dimensions " + std::to_string(count) + "x" + std::to_string(rows) + "x" + std::to_string(cols));
  const uint64_t expected = uint64_t(count) * rows * cols;
  const uint64_t actual = bytes.size() - 16;
  if (actual < expected)
    fail(path, "truncated: header says " + std::to_string(count) + " images of " + std::to_string(rows) + "x" +
                   std::to_string(cols) + " but only " + std::to_string(actual) + " of " + std::to_string(expected) +
                   " pixel bytes are present");
  if (actual > expected) fail(path, std::to_string(actual - expected) + " unexpected bytes after the images");
  ImageSet set;
  set.count = count;
  set.channels = 1;
  set.height = static_cast<int>(rows);
  set.width = static_cast<int>(cols);
  set.pixels.assign(bytes.begin() + 16, bytes.end());
  set.source = path;
  return set;
}

ImageSet load_cifar10(const std::string& path) {
  constexpr int64_t kRecord = 1 + 3 * 32 * 32;
  if (fs::is_directory(path)) {
    ImageSet all;
    for (int i = 1; i <= 5; ++i) {
      const std::string batch = (fs::path(path) / ("data_batch_" + std::to_string(i) + ".bin")).string();
      ImageSet part = load_cifar10(batch);
      if (i == 1) all = std::move(part);
      else append_images(batch, all, part);
    }
    all.source = path;
    return all;
  }
  const std::vector<char> bytes = read_file(path);
  if (bytes.empty() || bytes.size() % kRecord != 0)
    fail(path, "size " + std::to_string(bytes.size()) + " is not a positive multiple of the 3073-byte CIFAR-10 record" +
                   (bytes.size() > static_cast<size_t>(kRecord) ? " (truncated?)" : ""));
  ImageSet set;
  set.count = static_cast<int64_t>(bytes.size()) / kRecord;
  set.channels = 3;
  set.height = set.width = 32;
  set.source = path;
  set.pixels.resize(static_cast<size_t>(set.count) * 3 * 32 * 32);
  for (int64_t i = 0; i < set.count; ++i) {
    const char* record = bytes.data() + i * kRecord;
    if (static_cast<uint8_t>(record[0]) > 9)
      fail(path, "record " + std::to_string(i) + " has label " + std::to_string(uint8_t(record[0])) +
                     " (CIFAR-10 labels are 0-9): not a CIFAR-10 file");
    std::memcpy(set.pixels.data() + i * (kRecord - 1), record + 1, kRecord - 1);  // already planar R, G, B
  }
  return set;
}

ImageSet load_png_folder(const std::string& dir, int channels, int size) {
  if (channels != 1 && channels != 3) fail(dir, "channels must be 1 or 3, not " + std::to_string(channels));
  if (size <= 0) fail(dir, "image size must be positive");
  if (!fs::is_directory(dir)) fail(dir, "not a folder");
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && lower(entry.path().extension().string()) == ".png") files.push_back(entry.path());
  if (files.empty()) fail(dir, "no .png files in the folder");
  std::sort(files.begin(), files.end());  // directory order is arbitrary; sorting keeps runs reproducible

  ImageSet set;
  set.count = static_cast<int64_t>(files.size());
  set.channels = channels;
  set.height = set.width = size;
  set.source = dir;
  const size_t image_bytes = static_cast<size_t>(channels) * size * size;
  set.pixels.resize(image_bytes * files.size());
  std::vector<uint8_t> planar;
  for (size_t i = 0; i < files.size(); ++i) {
    const Image img = read_png(files[i].string());
    planar.resize(static_cast<size_t>(channels) * img.width * img.height);
    convert_channels(img.pixels.data(), img.channels, int64_t(img.width) * img.height, /*interleaved=*/true, channels,
                     planar.data());
    crop_and_resize(planar.data(), channels, img.height, img.width, size, set.pixels.data() + i * image_bytes);
  }
  return set;
}

ImageSet conform_images(ImageSet set, int channels, int size) {
  if (channels != 1 && channels != 3) fail(set.source, "channels must be 1 or 3, not " + std::to_string(channels));
  if (size <= 0) fail(set.source, "image size must be positive");
  if (set.channels != 1 && set.channels != 3)
    fail(set.source, "images have " + std::to_string(set.channels) + " channels (expected 1 or 3)");
  if (set.channels == channels && set.height == size && set.width == size) return set;

  const int64_t plane = int64_t(set.height) * set.width;
  const bool pad_28_to_32 = set.height == 28 && set.width == 28 && size == 32;
  ImageSet out;
  out.count = set.count;
  out.channels = channels;
  out.height = out.width = size;
  out.source = set.source;
  const size_t out_bytes = static_cast<size_t>(channels) * size * size;
  out.pixels.assign(out_bytes * set.count, 0);
  // Resize with the fewer channels: RGB→grey converts first, grey→RGB replicates last (a third of the work).
  const int working = std::min(set.channels, channels);
  const int64_t out_plane = int64_t(size) * size;
  std::vector<uint8_t> converted(static_cast<size_t>(working) * plane), spatial(static_cast<size_t>(working) * out_plane);
  for (int64_t i = 0; i < set.count; ++i) {
    convert_channels(set.pixels.data() + i * set.channels * plane, set.channels, plane, /*interleaved=*/false,
                     working, converted.data());
    if (pad_28_to_32) {
      std::fill(spatial.begin(), spatial.end(), 0);
      for (int c = 0; c < working; ++c)
        for (int y = 0; y < 28; ++y)
          std::memcpy(spatial.data() + (static_cast<size_t>(c) * 32 + y + 2) * 32 + 2,
                      converted.data() + (c * 28 + y) * 28, 28);
    } else {
      crop_and_resize(converted.data(), working, set.height, set.width, size, spatial.data());
    }
    convert_channels(spatial.data(), working, out_plane, /*interleaved=*/false, channels,
                     out.pixels.data() + i * out_bytes);
  }
  return out;
}

ImageSet load_dataset(const std::string& spec, int channels, int size) {
  ImageSet set;
  if (spec.empty() || spec == "fashion-mnist") {
    const std::string dir = kFashionMnistDir;
    if (!fs::is_directory(dir)) fail(dir, "not found (Debian package dataset-fashion-mnist)");
    set = load_idx_images(dir + "/train-images-idx3-ubyte.gz");
    const std::string t10k = dir + "/t10k-images-idx3-ubyte.gz";
    append_images(t10k, set, load_idx_images(t10k));
    set.source = "fashion-mnist (" + dir + ")";
  } else if (spec == "mnist") {
    set = load_idx_images(find_mnist());
  } else if (fs::is_directory(spec)) {
    if (fs::exists(fs::path(spec) / "data_batch_1.bin")) set = load_cifar10(spec);
    else return load_png_folder(spec, channels, size);
  } else if (fs::is_regular_file(spec)) {
    const std::string name = lower(fs::path(spec).filename().string());
    if (ends_with(name, ".bin")) set = load_cifar10(spec);
    else if (ends_with(name, ".png")) fail(spec, "a single PNG is not a data set (give its folder)");
    else set = load_idx_images(spec);
  } else {
    fail(spec, "unknown data set (expected fashion-mnist, mnist, an IDX file, a CIFAR-10 batch or folder, or a PNG "
               "folder)");
  }
  return conform_images(std::move(set), channels, size);
}

BatchLoader::BatchLoader(const ImageSet& set, int batch_size, uint64_t seed)
    : set_(&set), batch_size_(batch_size), seed_(seed) {
  if (set.count <= 0) throw std::invalid_argument("BatchLoader: " + set.source + ": the image set is empty");
  if (batch_size <= 0) throw std::invalid_argument("BatchLoader: batch size must be positive");
  shuffle_for_epoch();
}

void BatchLoader::shuffle_for_epoch() {
  order_.resize(static_cast<size_t>(set_->count));
  for (int64_t i = 0; i < set_->count; ++i) order_[i] = i;
  Rng rng(seed_, static_cast<uint64_t>(epoch_));
  for (int64_t i = set_->count - 1; i > 0; --i)
    std::swap(order_[i], order_[static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
}

void BatchLoader::next(float* out) {
  static const std::array<float, 256> kScale = [] {
    std::array<float, 256> table{};
    for (int v = 0; v < 256; ++v) table[v] = static_cast<float>(v) / 127.5f - 1.0f;
    return table;
  }();
  const int64_t image_size = int64_t(set_->channels) * set_->height * set_->width;
  for (int b = 0; b < batch_size_; ++b) {
    if (position_ == set_->count) {
      ++epoch_;
      position_ = 0;
      shuffle_for_epoch();
    }
    const uint8_t* src = set_->pixels.data() + order_[position_++] * image_size;
    float* dst = out + b * image_size;
    for (int64_t k = 0; k < image_size; ++k) dst[k] = kScale[src[k]];
  }
}

void BatchLoader::restore(int64_t epoch, int64_t position) {
  if (epoch < 0 || position < 0 || position > set_->count)
    throw std::invalid_argument("BatchLoader::restore: epoch " + std::to_string(epoch) + ", position " +
                                std::to_string(position) + " is outside a data set of " +
                                std::to_string(set_->count) + " images");
  epoch_ = epoch;
  position_ = position;
  shuffle_for_epoch();
}

}  // namespace gancu
