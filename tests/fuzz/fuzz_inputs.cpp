#include "tests/fuzz/fuzz_inputs.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/npy.h"
#include "engine/kernel_choice.h"
#include "recipes/options.h"
#include "tools/eval/fid.h"
#include "tools/io/dataset.h"
#include "tools/io/jpeg.h"
#include "tools/io/photos.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

namespace gancu::fuzz {
namespace {

namespace fs = std::filesystem;

// A broken promise of an accepted input: a bug in the reader, never a refusal.
void require(bool ok, const char* target, const std::string& what) {
  if (!ok) throw std::logic_error(std::string("fuzz target ") + target + ": " + what);
}

// <tmp>/gancu_fuzz_<pid>, made on first use and removed when the process exits normally.
class ScratchFolder {
 public:
  ScratchFolder() : dir_(fs::temp_directory_path() / ("gancu_fuzz_" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~ScratchFolder() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

fs::path scratch(const std::string& name) {
  static const ScratchFolder folder;
  return folder.dir() / name;
}

// Plain stdio rather than write_file_atomic: a fuzzer writes this file hundreds of times a second, and needs no fsync.
std::string write_input(const fs::path& path, const uint8_t* data, size_t size) {
  fs::create_directories(path.parent_path());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::logic_error(path.string() + ": the fuzz harness cannot create its input file");
  const bool written = size == 0 || std::fwrite(data, 1, size, f) == size;
  if (std::fclose(f) != 0 || !written) throw std::logic_error(path.string() + ": the fuzz harness cannot write it");
  return path.string();
}

// Runs `load`; a std::runtime_error is a refusal. Other exceptions pass through: they are bugs.
template <class F> Outcome outcome_of(F load) {
  try {
    load();
    return Outcome::accepted;
  } catch (const std::runtime_error&) {
    return Outcome::refused;
  }
}

// The channel count a target converts to: both, depending on the input, so both conversions are reached.
int channels_for(size_t size) { return size % 2 ? 3 : 1; }

void check_image_set(const char* target, const ImageSet& set, int channels, int height, int width) {
  require(set.count > 0, target, "an accepted set holds no images");
  require(set.channels == channels && set.height == height && set.width == width, target,
          "image size " + std::to_string(set.channels) + "x" + std::to_string(set.height) + "x" +
              std::to_string(set.width) + " differs from the expected " + std::to_string(channels) + "x" +
              std::to_string(height) + "x" + std::to_string(width));
  require(set.pixels.size() == static_cast<size_t>(set.count) * channels * height * width, target,
          "pixel bytes do not match count x channels x height x width");
  require(set.labels.empty() || static_cast<int64_t>(set.labels.size()) == set.count, target,
          "labels do not match the image count");
  for (int32_t label : set.labels)
    require(label >= 0 && label < set.num_classes(), target, "label " + std::to_string(label) + " out of range");
}

// The file is named so that no label file is looked for beside it; IDX label files have their own target. zlib
// reads plain files unchanged, so the same target covers plain and gzip-compressed files.
Outcome idx_images(const uint8_t* data, size_t size) {
  const std::string path = write_input(scratch("idx_images"), data, size);
  return outcome_of([&] {
    const ImageSet set = load_idx_images(path);
    check_image_set("idx_images", set, 1, set.height, set.width);
    require(set.height >= 1 && set.height <= 16384 && set.width >= 1 && set.width <= 16384, "idx_images",
            "dimensions outside 1-16384 accepted");
    // What load_dataset does next with the images (28x28 → 32x32 pads, anything else is cropped and resized); only
    // for small sets, to keep executions fast.
    if (set.count <= 64) {
      const int channels = channels_for(size);
      check_image_set("idx_images", conform_images(set, channels, 32), channels, 32, 32);
    }
  });
}

Outcome idx_labels(const uint8_t* data, size_t size) {
  const std::string path = write_input(scratch("idx_labels"), data, size);
  std::vector<int32_t> any;
  const Outcome unchecked = outcome_of([&] { any = load_idx_labels(path, 0); });
  std::vector<int32_t> ten;
  const Outcome checked = outcome_of([&] { ten = load_idx_labels(path, 10); });
  if (unchecked == Outcome::refused) {
    require(checked == Outcome::refused, "idx_labels", "accepted with 10 classes but refused with no class limit");
    return Outcome::refused;
  }
  require(!any.empty(), "idx_labels", "an accepted label file holds no labels");
  for (int32_t label : any) require(label >= 0 && label <= 255, "idx_labels", "a label outside 0-255");
  const bool all_below_ten = std::all_of(any.begin(), any.end(), [](int32_t label) { return label < 10; });
  require((checked == Outcome::accepted) == all_below_ten, "idx_labels",
          "the 10-class check disagrees with the labels read");
  if (checked == Outcome::accepted) require(ten == any, "idx_labels", "the two reads differ");
  return Outcome::accepted;
}

// A lone batch file (no batches.meta.txt beside it: CIFAR-10's own class names).
Outcome cifar10(const uint8_t* data, size_t size) {
  const std::string path = write_input(scratch("cifar10/data_batch_1.bin"), data, size);
  return outcome_of([&] {
    const ImageSet set = load_cifar10(path);
    check_image_set("cifar10", set, 3, 32, 32);
    require(set.count == static_cast<int64_t>(size / 3073) && size % 3073 == 0, "cifar10",
            "the image count does not match the 3073-byte records");
    require(set.class_names == cifar10_class_names(), "cifar10", "not CIFAR-10's class names");
  });
}

// batches.meta.txt, the class names beside a CIFAR-10 batch (here one valid record).
Outcome cifar10_meta(const uint8_t* data, size_t size) {
  static const std::vector<uint8_t> record = [] {
    std::vector<uint8_t> bytes(3073);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 13 % 251);
    bytes[0] = 4;  // the label
    return bytes;
  }();
  const std::string batch = write_input(scratch("cifar10_meta/data_batch_1.bin"), record.data(), record.size());
  write_input(scratch("cifar10_meta/batches.meta.txt"), data, size);
  return outcome_of([&] {
    const ImageSet set = load_cifar10(batch);
    check_image_set("cifar10_meta", set, 3, 32, 32);
    require(set.num_classes() == 10, "cifar10_meta", std::to_string(set.num_classes()) + " class names accepted");
    for (const std::string& name : set.class_names)
      require(!name.empty() && name.find('\n') == std::string::npos, "cifar10_meta", "an empty or multi-line name");
  });
}

// Decoded from memory (the seam the PNG reader has), then read from a file the way a PNG folder data set reads it:
// channel conversion, centre crop and resize included.
Outcome png(const uint8_t* data, size_t size) {
  const Outcome decoded = outcome_of([&] {
    const Image img = decode_png("fuzz.png", data, size);
    require(img.width > 0 && img.height > 0 && (img.channels == 1 || img.channels == 3), "png",
            "decoded to " + std::to_string(img.width) + "x" + std::to_string(img.height) + "x" +
                std::to_string(img.channels));
    require(img.pixels.size() == static_cast<size_t>(img.width) * img.height * img.channels, "png",
            "pixel bytes do not match width x height x channels");
  });
  if (decoded == Outcome::refused) return decoded;
  write_input(scratch("png/image.png"), data, size);
  const int channels = channels_for(size);
  const Outcome folder = outcome_of([&] {
    check_image_set("png", load_png_folder(scratch("png").string(), channels, 16), channels, 16, 16);
  });
  require(folder == Outcome::accepted, "png", "decoded from memory but refused from a file");
  return decoded;
}

// The fuzzer's malloc limit (128 MB) is below what a valid 100-megapixel JPEG needs, and a few KB of arithmetic-coded
// data can validly hold one; the target decodes under a smaller pixel limit, with the same code path.
constexpr uint64_t kFuzzJpegPixels = uint64_t{1} << 22;

// Decoded from memory, then read as a photo is: from a file in a folder, by its content (load_image), made RGB and
// turned into a validation pair (modcrop and x2 LR) when it is large enough.
Outcome jpeg(const uint8_t* data, size_t size) {
  Image img;
  const Outcome decoded = outcome_of([&] {
    img = decode_jpeg("fuzz.jpg", data, size, kFuzzJpegPixels);
    require(img.width > 0 && img.height > 0 && img.channels == 3, "jpeg",
            "decoded to " + std::to_string(img.width) + "x" + std::to_string(img.height) + "x" +
                std::to_string(img.channels));
    require(img.pixels.size() == static_cast<size_t>(img.width) * img.height * 3, "jpeg",
            "pixel bytes do not match width x height x 3");
  });
  if (decoded == Outcome::refused) return decoded;
  write_input(scratch("jpeg/photo.jpg"), data, size);
  const Outcome folder = outcome_of([&] {
    const PhotoSet photos = load_photo_folder(scratch("jpeg").string());
    require(photos.photos.size() == 1 && photos.photos[0].image.pixels == img.pixels, "jpeg",
            "the file read back differs from the bytes decoded in memory");
    if (img.width >= 2 && img.height >= 2) {
      const std::vector<SrPair> pairs = validation_pairs(photos, 2);
      require(pairs.size() == 1 && pairs[0].lr.width == img.width / 2 && pairs[0].lr.height == img.height / 2, "jpeg",
              "the validation pair has the wrong size");
    }
  });
  require(folder == Outcome::accepted, "jpeg", "decoded from memory but refused from a file");
  return decoded;
}

int64_t product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

// The same file read as float32, as uint8 and as integers: uint8 excludes the others, since each wants its own dtype.
Outcome npy(const uint8_t* data, size_t size) {
  const std::string path = write_input(scratch("fuzz.npy"), data, size);
  const Outcome as_float = outcome_of([&] {
    const Tensor t = read_npy(path);
    require(t.numel() >= 0 && static_cast<size_t>(t.numel()) * sizeof(float) <= size, "npy",
            "a float tensor larger than the file");
  });
  const Outcome as_bytes = outcome_of([&] {
    std::vector<int64_t> shape;
    const std::vector<uint8_t> bytes = read_npy_u8(path, &shape);
    require(static_cast<int64_t>(bytes.size()) == product(shape), "npy", "uint8 data does not match its shape");
  });
  require(as_float == Outcome::refused || as_bytes == Outcome::refused, "npy", "read both as float32 and as uint8");
  // Class labels (gan sample --labels): int64, int32 or whole float32, never more values than the file has bytes / 4.
  const Outcome as_integers = outcome_of([&] {
    const std::vector<int64_t> values = read_npy_integers(path);
    require(values.size() * 4 <= size, "npy", "more integers than the file holds");
  });
  require(as_integers == Outcome::refused || as_bytes == Outcome::refused, "npy", "read both as integers and as uint8");
  return as_float == Outcome::accepted || as_bytes == Outcome::accepted || as_integers == Outcome::accepted
             ? Outcome::accepted
             : Outcome::refused;
}

// The expected map of the shape-checked load: the seeds hold tensors of these names.
const std::map<std::string, Shape>& expected_tensors() {
  static const std::map<std::string, Shape> expected = {{"w", Shape{2, 3}}, {"b", Shape{3}}};
  return expected;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         (a.numel() == 0 || std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0);
}

// The full load, the load of an expected map, and the metadata-only read of one file must agree.
Outcome safetensors(const uint8_t* data, size_t size) {
  const std::string path = write_input(scratch("fuzz.safetensors"), data, size);
  std::map<std::string, Tensor> all;
  std::map<std::string, std::string> metadata;
  const Outcome full = outcome_of([&] { all = load_safetensors(path, &metadata); });
  std::map<std::string, Tensor> some;
  const Outcome expected = outcome_of([&] { some = load_safetensors(path, expected_tensors()); });
  std::map<std::string, std::string> metadata_only;
  const Outcome header = outcome_of([&] { metadata_only = load_safetensors_metadata(path); });

  uint64_t data_bytes = 0;
  for (const auto& [name, t] : all) data_bytes += static_cast<uint64_t>(t.numel()) * sizeof(float);
  require(data_bytes <= size, "safetensors", "tensors larger than the file");
  if (full == Outcome::accepted || expected == Outcome::accepted)
    require(header == Outcome::accepted, "safetensors", "tensors loaded from a file whose header is refused");
  if (full == Outcome::accepted) require(metadata == metadata_only, "safetensors", "the two metadata reads differ");
  if (expected == Outcome::accepted) {
    require(some.size() == expected_tensors().size(), "safetensors", "the expected load returned other tensors");
    for (const auto& [name, shape] : expected_tensors()) {
      require(some.at(name).shape() == shape, "safetensors", "tensor " + name + " has another shape than expected");
      if (full == Outcome::accepted)
        require(same_bits(some.at(name), all.at(name)), "safetensors", "tensor " + name + " differs between loads");
    }
  }
  return full == Outcome::accepted || expected == Outcome::accepted ? Outcome::accepted : Outcome::refused;
}

Outcome safetensors_metadata(const uint8_t* data, size_t size) {
  const std::string path = write_input(scratch("fuzz_metadata.safetensors"), data, size);
  return outcome_of([&] { load_safetensors_metadata(path); });
}

Outcome kernel_choices(const uint8_t* data, size_t size) {
  const std::string path = write_input(scratch("kernel_choices.json"), data, size);
  return outcome_of([&] { KernelChoiceCache cache(path); });
}

// A checkpoint's recipe configuration (its "config" and "run" metadata): recipes::from_json over options of every
// field type the recipes declare, with bounds and choices. Accepted: every field holds a value of its type within
// its bounds.
Outcome recipe_config(const uint8_t* data, size_t size) {
  return outcome_of([&] {
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(data, data + size, nullptr, false);
    if (j.is_discarded()) throw std::runtime_error("config: not JSON");
    int i = 1;
    int64_t steps = 0;
    uint64_t seed = 0;
    double rate = 0.5;
    bool flag = false;
    std::string name = "a", free;
    const std::vector<recipes::Option> options = {
        {"i", "", &i, 1, 4096},           {"steps", "", &steps, 0, 1e12}, {"seed", "", &seed},
        {"rate", "", &rate, 0.0, 1.0},    {"flag", "", &flag},            {"name", "", &name, -1, 1, {"a", "b"}},
        {"free", "", &free}};
    recipes::from_json(options, j, "config");
    require(i >= 1 && i <= 4096 && steps >= 0 && rate >= 0 && rate <= 1 && (name == "a" || name == "b"), "recipe_config",
            "a value outside its bounds was accepted");
  });
}

// FID reference statistics (tools/eval/fid.h). Accepted: well-formed, finite stats; small ones then go through the
// Fréchet distance, whose safeguards may refuse a matrix no data set gives (std::runtime_error) but must not crash.
Outcome fid_stats(const uint8_t* data, size_t size) {
  const std::string path = write_input(scratch("fid_stats.safetensors"), data, size);
  return outcome_of([&] {
    const eval::FeatureStats s = eval::load_feature_stats(path);
    const size_t d = static_cast<size_t>(s.dim);
    require(s.n >= 2 && s.dim >= 1 && s.mean.size() == d && s.cov.size() == d * d, "fid_stats",
            "malformed stats accepted");
    require((s.mean.size() + s.cov.size()) * sizeof(double) <= size, "fid_stats", "stats larger than the file");
    for (double v : s.mean) require(std::isfinite(v), "fid_stats", "a non-finite mean accepted");
    for (double v : s.cov) require(std::isfinite(v), "fid_stats", "a non-finite covariance accepted");
    if (s.dim <= 8) {
      try {
        eval::frechet_distance(s, s);
      } catch (const std::runtime_error&) {
      }
    }
  });
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"idx_images", idx_images},   {"idx_labels", idx_labels},
      {"cifar10", cifar10},         {"cifar10_meta", cifar10_meta},
      {"png", png},                 {"jpeg", jpeg},
      {"npy", npy},                 {"safetensors", safetensors},
      {"safetensors_metadata", safetensors_metadata}, {"kernel_choices", kernel_choices},
      {"recipe_config", recipe_config}, {"fid_stats", fid_stats},
  };
  return all;
}

const Target& find_target(std::string_view name) {
  for (const Target& t : targets())
    if (name == t.name) return t;
  throw std::logic_error("no fuzz target named " + std::string(name));
}

}  // namespace gancu::fuzz
