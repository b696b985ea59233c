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
#include "core/memory.h"
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

// A file read front to back, inflated if it is gzip-compressed (zlib passes plain files through unchanged). Read in
// pieces, so that a header is checked before anything is sized by it: memory grows only with the bytes actually read,
// and a small gzip file that inflates to gigabytes is refused once its header is read, not after inflating it all.
class MaybeGzippedFile {
 public:
  explicit MaybeGzippedFile(const std::string& path) : path_(path) {
    if (!fs::is_regular_file(path)) fail(path, fs::exists(path) ? "not a regular file" : "no such file");
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) fail(path, "cannot open");
  }
  MaybeGzippedFile(const MaybeGzippedFile&) = delete;
  MaybeGzippedFile& operator=(const MaybeGzippedFile&) = delete;
  ~MaybeGzippedFile() { gzclose(file_); }

  // Appends up to `bytes` bytes to `out` (fewer only at the end of the file); returns how many.
  uint64_t read(uint64_t bytes, std::vector<uint8_t>& out) {
    uint64_t done = 0;
    while (done < bytes) {
      const size_t at = out.size();
      out.resize(at + static_cast<size_t>(std::min<uint64_t>(bytes - done, kChunk)));  // grows geometrically
      const int n = read_some(out.data() + at, static_cast<unsigned>(out.size() - at));
      out.resize(at + static_cast<size_t>(n));
      if (n == 0) break;
      done += static_cast<uint64_t>(n);
    }
    return done;
  }
  // Reads to the end, keeping nothing; returns how many bytes there were.
  uint64_t skip_to_end() {
    std::vector<uint8_t> chunk(kChunk);
    uint64_t skipped = 0;
    while (const int n = read_some(chunk.data(), static_cast<unsigned>(chunk.size())))
      skipped += static_cast<uint64_t>(n);
    return skipped;
  }

 private:
  static constexpr uint64_t kChunk = 1 << 16;

  // gzread, or a one-line error for corrupt data; 0 at the end of the file.
  int read_some(uint8_t* out, unsigned bytes) {
    const int n = gzread(file_, out, bytes);
    // A gzip stream cut short reads as a clean end of file; zlib reports it only through gzerror.
    int code = Z_OK;
    const std::string why = gz_problem(file_, path_, &code);
    if (n < 0 || (code != Z_OK && code != Z_STREAM_END)) fail(path_, "corrupt gzip data (" + why + ")");
    return n;
  }

  std::string path_;
  gzFile file_ = nullptr;
};

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// "wrong magic 0x… (expected 0x…, <what>; …)", saying what the file is instead when it is another kind of IDX file.
std::string wrong_idx_magic(uint32_t magic, uint32_t expected, const std::string& what) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%08x", magic);
  std::string problem = std::string("wrong magic ") + hex;
  std::snprintf(hex, sizeof hex, "0x%08x", expected);
  problem += std::string(" (expected ") + hex + ", " + what;
  const uint32_t type = (magic >> 8) & 0xff, rank = magic & 0xff;
  if (magic >> 16 != 0) return problem + "; not an IDX file)";
  if (type != 0x08) {
    std::snprintf(hex, sizeof hex, "0x%02x", type);
    return problem + "; element type " + hex + ", not unsigned byte)";
  }
  return problem + "; this one has rank " + std::to_string(rank) + ")";
}

// Appends b's images and labels to a (same image size, both labelled with the same classes or both unlabelled).
void append_images(const std::string& path, ImageSet& a, const ImageSet& b) {
  if (a.channels != b.channels || a.height != b.height || a.width != b.width)
    fail(path, "image size " + std::to_string(b.channels) + "x" + std::to_string(b.height) + "x" +
                   std::to_string(b.width) + " differs from " + a.source + "'s " + std::to_string(a.channels) + "x" +
                   std::to_string(a.height) + "x" + std::to_string(a.width));
  if (a.labelled() != b.labelled())
    fail(path, std::string(b.labelled() ? "labelled" : "unlabelled") + " but " + a.source + " is " +
                   (a.labelled() ? "labelled" : "unlabelled"));
  if (a.class_names != b.class_names)
    fail(path, std::to_string(b.num_classes()) + " classes differ from " + a.source + "'s " +
                   std::to_string(a.num_classes()));
  a.pixels.insert(a.pixels.end(), b.pixels.begin(), b.pixels.end());
  a.labels.insert(a.labels.end(), b.labels.begin(), b.labels.end());
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

// The class index in decimal, for sets that name no classes.
std::vector<std::string> index_names(int num_classes) {
  std::vector<std::string> names;
  for (int c = 0; c < num_classes; ++c) names.push_back(std::to_string(c));
  return names;
}

// Which known set an IDX image file holds, by its name (see load_idx_images).
const std::vector<std::string>* known_idx_classes(const fs::path& images) {
  const std::string name = lower(images.filename().string()), folder = lower(images.parent_path().filename().string());
  if (name.find("fashion") != std::string::npos || folder.find("fashion") != std::string::npos)
    return &fashion_mnist_class_names();
  const std::string base = ends_with(name, ".gz") ? name.substr(0, name.size() - 3) : name;
  if (base == "train-images-idx3-ubyte" || base == "t10k-images-idx3-ubyte" || base == "mnist-images-idx3-ubyte")
    return &mnist_class_names();
  return nullptr;
}

std::string trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r"), last = s.find_last_not_of(" \t\r");
  return first == std::string::npos ? "" : s.substr(first, last - first + 1);
}

// CIFAR-10's class names from batches.meta.txt in `folder`, or its own when the file is not there.
std::vector<std::string> cifar10_names_in(const fs::path& folder) {
  const fs::path meta = folder / "batches.meta.txt";
  if (!fs::exists(meta)) return cifar10_class_names();
  const std::vector<char> bytes = read_file(meta.string());
  std::vector<std::string> names;
  std::string line;
  for (size_t i = 0; i <= bytes.size(); ++i) {
    if (i < bytes.size() && bytes[i] != '\n') {
      line += bytes[i];
      continue;
    }
    if (!trim(line).empty()) names.push_back(trim(line));
    line.clear();
  }
  if (names.size() != 10)
    fail(meta.string(), std::to_string(names.size()) + " class names (CIFAR-10 has 10, one a line)");
  return names;
}

// The sorted *.png files directly in `dir`.
std::vector<fs::path> png_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && lower(entry.path().extension().string()) == ".png") files.push_back(entry.path());
  std::sort(files.begin(), files.end());  // directory order is arbitrary; sorting keeps runs reproducible
  return files;
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

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

const std::vector<std::string>& mnist_class_names() {
  static const std::vector<std::string> names = index_names(10);
  return names;
}

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

ImageSet load_idx_images(const std::string& path) {
  MaybeGzippedFile file(path);
  std::vector<uint8_t> header;
  if (file.read(16, header) < 16) fail(path, "truncated IDX header (" + std::to_string(header.size()) + " bytes)");
  const uint32_t magic = big_endian_u32(header.data());
  if (magic != 0x00000803) fail(path, wrong_idx_magic(magic, 0x00000803, "an IDX3 unsigned-byte image file"));
  const uint32_t count = big_endian_u32(header.data() + 4), rows = big_endian_u32(header.data() + 8),
                 cols = big_endian_u32(header.data() + 12);
  if (count == 0 || rows == 0 || cols == 0 || rows > 16384 || cols > 16384)
    fail(path, "bad dimensions " + std::to_string(count) + "x" + std::to_string(rows) + "x" + std::to_string(cols));
  const uint64_t expected = uint64_t(count) * rows * cols;
  std::vector<uint8_t> pixels;
  const uint64_t actual = file.read(expected, pixels);
  if (actual < expected)
    fail(path, "truncated: header says " + std::to_string(count) + " images of " + std::to_string(rows) + "x" +
                   std::to_string(cols) + " but only " + std::to_string(actual) + " of " + std::to_string(expected) +
                   " pixel bytes are present");
  if (const uint64_t extra = file.skip_to_end(); extra > 0)
    fail(path, std::to_string(extra) + " unexpected bytes after the images");
  ImageSet set;
  set.count = count;
  set.channels = 1;
  set.height = static_cast<int>(rows);
  set.width = static_cast<int>(cols);
  set.pixels = std::move(pixels);
  set.source = path;

  const std::string labels_path = idx_labels_path(path);
  if (labels_path.empty() || !fs::exists(labels_path)) return set;
  const std::vector<std::string>* known = known_idx_classes(path);
  set.labels = load_idx_labels(labels_path, known ? static_cast<int>(known->size()) : 0);
  if (static_cast<int64_t>(set.labels.size()) != set.count)
    fail(labels_path, std::to_string(set.labels.size()) + " labels for the " + std::to_string(set.count) +
                          " images of " + path);
  set.class_names = known ? *known : index_names(*std::max_element(set.labels.begin(), set.labels.end()) + 1);
  return set;
}

std::string idx_labels_path(const std::string& images_path) {
  const fs::path images(images_path);
  const std::string name = images.filename().string();
  const std::string kImages = "images-idx3-ubyte", kLabels = "labels-idx1-ubyte";
  const size_t at = name.rfind(kImages);
  if (at == std::string::npos) return "";
  const std::string suffix = name.substr(at + kImages.size());
  if (!suffix.empty() && suffix != ".gz") return "";
  const std::string stem = name.substr(0, at) + kLabels;
  const fs::path same = images.parent_path() / (stem + suffix);
  const fs::path other = images.parent_path() / (suffix.empty() ? stem + ".gz" : stem);
  return (fs::exists(same) || !fs::exists(other) ? same : other).string();
}

std::vector<int32_t> load_idx_labels(const std::string& path, int num_classes) {
  MaybeGzippedFile file(path);
  std::vector<uint8_t> bytes;
  if (file.read(8, bytes) < 8) fail(path, "truncated IDX header (" + std::to_string(bytes.size()) + " bytes)");
  const uint32_t magic = big_endian_u32(bytes.data());
  if (magic != 0x00000801) fail(path, wrong_idx_magic(magic, 0x00000801, "an IDX1 unsigned-byte label file"));
  const uint64_t count = big_endian_u32(bytes.data() + 4);
  if (count == 0) fail(path, "the header declares no labels");
  bytes.clear();
  const uint64_t actual = file.read(count, bytes);
  if (actual < count)
    fail(path, "truncated: header says " + std::to_string(count) + " labels but only " + std::to_string(actual) +
                   " are present");
  if (const uint64_t extra = file.skip_to_end(); extra > 0)
    fail(path, std::to_string(extra) + " unexpected bytes after the labels");
  std::vector<int32_t> labels(bytes.begin(), bytes.end());
  for (size_t i = 0; num_classes > 0 && i < labels.size(); ++i)
    if (labels[i] >= num_classes)
      fail(path, "label " + std::to_string(labels[i]) + " of item " + std::to_string(i) + " is out of range (" +
                     std::to_string(num_classes) + " classes: 0-" + std::to_string(num_classes - 1) + ")");
  return labels;
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
  set.labels.resize(static_cast<size_t>(set.count));
  set.class_names = cifar10_names_in(fs::path(path).parent_path());
  for (int64_t i = 0; i < set.count; ++i) {
    const char* record = bytes.data() + i * kRecord;
    if (static_cast<uint8_t>(record[0]) > 9)
      fail(path, "record " + std::to_string(i) + " has label " + std::to_string(uint8_t(record[0])) +
                     " (CIFAR-10 labels are 0-9): not a CIFAR-10 file");
    set.labels[i] = static_cast<uint8_t>(record[0]);
    std::memcpy(set.pixels.data() + i * (kRecord - 1), record + 1, kRecord - 1);  // already planar R, G, B
  }
  return set;
}

ImageSet load_png_folder(const std::string& dir, int channels, int size) {
  if (channels != 1 && channels != 3) fail(dir, "channels must be 1 or 3, not " + std::to_string(channels));
  if (size <= 0) fail(dir, "image size must be positive");
  if (!fs::is_directory(dir)) fail(dir, "not a folder");
  std::vector<fs::path> files = png_files(dir);
  std::vector<int32_t> labels;
  std::vector<std::string> class_names;
  if (files.empty()) {  // one sub-folder of PNGs per class?
    std::vector<fs::path> class_dirs;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir))
      if (entry.is_directory() && entry.path().filename().string().rfind('.', 0) != 0)
        class_dirs.push_back(entry.path());
    std::sort(class_dirs.begin(), class_dirs.end());
    std::vector<std::vector<fs::path>> per_class;
    for (const fs::path& class_dir : class_dirs) per_class.push_back(png_files(class_dir));
    for (size_t c = 0; c < class_dirs.size(); ++c) {
      files.insert(files.end(), per_class[c].begin(), per_class[c].end());
      labels.insert(labels.end(), per_class[c].size(), static_cast<int32_t>(c));
      class_names.push_back(class_dirs[c].filename().string());
    }
    if (!files.empty())
      for (size_t c = 0; c < class_dirs.size(); ++c)
        if (per_class[c].empty())
          fail(class_dirs[c].string(), "no .png files in this class folder (each sub-folder of " + dir +
                                           " is a class)");
  }
  if (files.empty()) fail(dir, "no .png files in the folder or in sub-folders of it");

  ImageSet set;
  set.count = static_cast<int64_t>(files.size());
  set.channels = channels;
  set.height = set.width = size;
  set.source = dir;
  set.labels = std::move(labels);
  set.class_names = std::move(class_names);
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
  out.labels = std::move(set.labels);
  out.class_names = std::move(set.class_names);
  const size_t out_bytes = static_cast<size_t>(channels) * size * size;
  const int64_t total = static_cast<int64_t>(out_bytes) * set.count, available = available_host_memory_bytes();
  if (available >= 0 && total > available)
    fail(set.source, std::to_string(set.count) + " images at " + std::to_string(size) + "x" + std::to_string(size) + "x" +
                         std::to_string(channels) + " need " + human_bytes(total) + ", and " + human_bytes(available) +
                         " is available; use a smaller image size");
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

int native_channels(const std::string& spec) {
  if (spec.empty() || spec == "fashion-mnist" || spec == "mnist") return 1;
  return spec.find("idx3-ubyte") != std::string::npos ? 1 : 3;
}

ImageSet load_dataset(const std::string& spec, int channels, int size, const DatasetOptions& options) {
  ImageSet set;
  std::string idx_file;  // the IDX image file whose labels a labelled request needs
  if (spec.empty() || spec == "fashion-mnist") {
    const std::string dir = kFashionMnistDir;
    if (!fs::is_directory(dir)) fail(dir, "not found (Debian package dataset-fashion-mnist)");
    idx_file = dir + "/train-images-idx3-ubyte.gz";
    set = load_idx_images(idx_file);
    const std::string t10k = dir + "/t10k-images-idx3-ubyte.gz";
    append_images(t10k, set, load_idx_images(t10k));
    set.source = "fashion-mnist (" + dir + ")";
  } else if (spec == "mnist") {
    idx_file = find_mnist();
    set = load_idx_images(idx_file);
  } else if (fs::is_directory(spec)) {
    if (fs::exists(fs::path(spec) / "data_batch_1.bin")) {
      set = load_cifar10(spec);
    } else {
      set = load_png_folder(spec, channels, size);
      if (options.require_labels && !set.labelled())
        fail(spec, "no labels: the PNGs are not sorted into one sub-folder per class");
      return set;
    }
  } else if (fs::is_regular_file(spec)) {
    const std::string name = lower(fs::path(spec).filename().string());
    if (ends_with(name, ".bin")) set = load_cifar10(spec);
    else if (ends_with(name, ".png")) fail(spec, "a single PNG is not a data set (give its folder)");
    else set = load_idx_images(idx_file = spec);
  } else {
    fail(spec, "unknown data set (expected fashion-mnist, mnist, an IDX file, a CIFAR-10 batch or folder, or a PNG "
               "folder)");
  }
  if (options.require_labels && !set.labelled()) {
    const std::string labels = idx_labels_path(idx_file);
    fail(idx_file, labels.empty() ? "no labels: only IDX files named *images-idx3-ubyte[.gz] have them (in "
                                    "*labels-idx1-ubyte[.gz] beside the images)"
                                  : "no labels: " + labels + " is not there");
  }
  return conform_images(std::move(set), channels, size);
}

int class_index(const std::vector<std::string>& class_names, const std::string& spec, const std::string& source) {
  // An exact match first, so that a set with classes "Cat" and "cat" still has a way to name each.
  for (size_t c = 0; c < class_names.size(); ++c)
    if (class_names[c] == spec) return static_cast<int>(c);
  std::vector<int> matches;
  for (size_t c = 0; c < class_names.size(); ++c)
    if (lower(class_names[c]) == lower(spec)) matches.push_back(static_cast<int>(c));
  std::string listed;
  for (size_t c = 0; c < class_names.size(); ++c)
    listed += (c ? ", " : "") + std::to_string(c) + " " + class_names[c];
  if (matches.size() > 1)
    fail(source, "class '" + spec + "' matches " + std::to_string(matches.size()) +
                     " classes by case alone; give the exact name or the index (classes: " + listed + ")");
  if (matches.size() == 1) return matches[0];
  const bool decimal = !spec.empty() && spec.size() <= 9 &&
                       std::all_of(spec.begin(), spec.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (decimal && std::stoi(spec) < static_cast<int>(class_names.size())) return std::stoi(spec);
  fail(source, "no class '" + spec + "' (classes: " + listed + "; give a name or an index)");
}

ImageSet select_class(ImageSet set, const std::string& spec) {
  if (!set.labelled()) fail(set.source, "has no labels, so no class can be chosen");
  if (static_cast<int64_t>(set.labels.size()) != set.count)
    fail(set.source, std::to_string(set.labels.size()) + " labels for " + std::to_string(set.count) + " images");
  const int chosen = class_index(set.class_names, spec, set.source);
  // The class's images move to the front of the set's own pixels, in order: no second copy of a large set.
  const size_t image_bytes = static_cast<size_t>(set.channels) * set.height * set.width;
  if (set.pixels.size() != image_bytes * static_cast<size_t>(set.count))
    fail(set.source, std::to_string(set.pixels.size()) + " pixel bytes for " + std::to_string(set.count) + " images");
  size_t kept = 0;
  for (size_t i = 0; i < static_cast<size_t>(set.count); ++i) {
    if (set.labels[i] != chosen) continue;
    if (kept != i)
      std::memmove(set.pixels.data() + kept * image_bytes, set.pixels.data() + i * image_bytes, image_bytes);
    ++kept;
  }
  if (kept == 0)
    fail(set.source, "class " + std::to_string(chosen) + " (" + set.class_names[chosen] + ") has no images");
  set.pixels.resize(kept * image_bytes);
  set.pixels.shrink_to_fit();
  set.labels.assign(kept, chosen);
  set.count = static_cast<int64_t>(kept);
  set.source += " (class " + std::to_string(chosen) + " " + set.class_names[chosen] + ")";
  return set;
}

BatchLoader::BatchLoader(const ImageSet& set, int batch_size, uint64_t seed)
    : set_(&set), batch_size_(batch_size), seed_(seed) {
  if (set.count <= 0) throw std::invalid_argument("BatchLoader: " + set.source + ": the image set is empty");
  if (batch_size <= 0) throw std::invalid_argument("BatchLoader: batch size must be positive");
  if (set.labelled() && static_cast<int64_t>(set.labels.size()) != set.count)
    throw std::invalid_argument("BatchLoader: " + set.source + ": " + std::to_string(set.labels.size()) +
                                " labels for " + std::to_string(set.count) + " images");
  shuffle_for_epoch();
}

void BatchLoader::shuffle_for_epoch() {
  order_.resize(static_cast<size_t>(set_->count));
  for (int64_t i = 0; i < set_->count; ++i) order_[i] = i;
  Rng rng(seed_, static_cast<uint64_t>(epoch_));
  for (int64_t i = set_->count - 1; i > 0; --i)
    std::swap(order_[i], order_[static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
}

void BatchLoader::next(float* out, int32_t* labels) {
  if (labels && !set_->labelled())
    throw std::invalid_argument("BatchLoader: " + set_->source + ": labels asked of an unlabelled image set");
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
    const int64_t image = order_[position_++];
    if (labels) labels[b] = set_->labels[image];
    const uint8_t* src = set_->pixels.data() + image * image_size;
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
