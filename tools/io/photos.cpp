#include "tools/io/photos.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "core/rng.h"
#include "kernels/cpu/resize.h"
#include "tools/io/jpeg.h"

#ifndef GANCU_SR_PHOTOS_MANIFEST
#error "GANCU_SR_PHOTOS_MANIFEST (the path of tools/sr_photos.txt) is set by CMake"
#endif

namespace gancu {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& where, const std::string& problem) {
  throw std::runtime_error(where + ": " + problem);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool photo_extension(const fs::path& path) {
  const std::string ext = lower(path.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// Grey PNGs become RGB by replication; RGB passes through.
Image as_rgb(Image img) {
  if (img.channels == 3) return img;
  Image rgb;
  rgb.width = img.width;
  rgb.height = img.height;
  rgb.channels = 3;
  rgb.pixels.resize(img.pixels.size() * 3);
  for (size_t i = 0; i < img.pixels.size(); ++i)
    rgb.pixels[3 * i] = rgb.pixels[3 * i + 1] = rgb.pixels[3 * i + 2] = img.pixels[i];
  return rgb;
}

std::string size_text(const Image& img) { return std::to_string(img.width) + "x" + std::to_string(img.height); }

// Mixed into the run's seed so that the crop draws share no Philox stream with other draws of the same seed (the
// batch loader's shuffles use Rng(seed, epoch)).
constexpr uint64_t kCropSeedSalt = 0x5352'4352'4F50'0000ull;  // "SRCROP"

}  // namespace

int64_t PhotoSet::total_pixels() const {
  int64_t total = 0;
  for (const Photo& p : photos) total += int64_t{p.image.width} * p.image.height;
  return total;
}

int PhotoSet::min_side() const {
  int side = std::numeric_limits<int>::max();
  for (const Photo& p : photos) side = std::min({side, p.image.width, p.image.height});
  return photos.empty() ? 0 : side;
}

PhotoSet load_photo_files(const std::vector<std::string>& paths, const std::string& source) {
  if (paths.empty()) fail(source, "no photos");
  PhotoSet set;
  set.source = source;
  set.photos.reserve(paths.size());
  for (const std::string& path : paths) set.photos.push_back({path, as_rgb(load_image(path))});
  return set;
}

PhotoSet load_photo_folder(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, "not a folder");
  std::vector<std::string> paths;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && photo_extension(entry.path())) paths.push_back(entry.path().string());
  if (paths.empty()) fail(dir, "no .png, .jpg or .jpeg files in this folder (sub-folders are not searched)");
  std::sort(paths.begin(), paths.end());
  return load_photo_files(paths, dir);
}

std::string default_photo_manifest() {
  const char* env = std::getenv("GANCU_SR_PHOTOS");
  return env && *env ? env : GANCU_SR_PHOTOS_MANIFEST;
}

std::vector<std::string> photo_manifest_files(const std::string& split, const std::string& manifest) {
  std::ifstream in(manifest);
  if (!in) fail(manifest, "cannot read the photo manifest");
  std::vector<std::string> paths;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::istringstream fields(line);
    std::string line_split, path, package;
    if (!(fields >> line_split) || line_split[0] == '#') continue;
    if ((line_split != "train" && line_split != "val") || !(fields >> path) || path[0] != '/')
      fail(manifest + ":" + std::to_string(number), "expected \"train|val <absolute path> <package> [credit]\"");
    fields >> package;
    if (line_split != split) continue;
    if (!fs::is_regular_file(path))
      fail(path, "missing (listed in " + manifest + (package.empty() ? "" : "; install Debian's " + package) +
                     ", or run tools/setup_debian.sh)");
    paths.push_back(path);
  }
  if (paths.empty()) fail(manifest, "lists no \"" + split + "\" photos");
  return paths;
}

PhotoSet load_photos(const std::string& spec) {
  if (spec == kDebianPhotos) return load_photo_files(photo_manifest_files("train", default_photo_manifest()), spec);
  if (spec == kDebianPhotosVal) return load_photo_files(photo_manifest_files("val", default_photo_manifest()), spec);
  return load_photo_folder(spec);
}

void crop_with_symmetry(const Image& src, int top, int left, int size, int symmetry, uint8_t* out) {
  if (src.channels != 3 || size <= 0 || top < 0 || left < 0 || top + size > src.height || left + size > src.width ||
      symmetry < 0 || symmetry > 7)
    throw std::invalid_argument("crop_with_symmetry: window or symmetry outside the image");
  const size_t plane = size_t(size) * size;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      // Undo the quarter turns, then the mirror: where in the window the output pixel (y, x) comes from. One
      // counter-clockwise turn maps window pixel (r, c) to (size − 1 − c, r), so it reads (r, c) = (x, size − 1 − y).
      int sy = y, sx = x;
      for (int turn = 0; turn < symmetry >> 1; ++turn) {
        const int r = sx, c = size - 1 - sy;
        sy = r;
        sx = c;
      }
      if (symmetry & 1) sx = size - 1 - sx;
      const uint8_t* pixel = src.pixels.data() + (size_t(top + sy) * src.width + left + sx) * 3;
      for (int ch = 0; ch < 3; ++ch) out[ch * plane + size_t(y) * size + x] = pixel[ch];
    }
}

std::vector<double> downsample_unit(const uint8_t* hr, int h, int w, int scale) {
  std::vector<double> x(size_t(3) * h * w);
  for (size_t i = 0; i < x.size(); ++i) x[i] = hr[i] / 255.0;
  std::vector<double> y(size_t(3) * (h / scale) * (w / scale));
  ref::bicubic_downsample<double>(1, 3, h, w, scale, x.data(), y.data());
  return y;
}

std::vector<uint8_t> make_lr(const uint8_t* hr, int h, int w, int scale) {
  const std::vector<double> unit = downsample_unit(hr, h, w, scale);
  std::vector<uint8_t> lr(unit.size());
  for (size_t i = 0; i < unit.size(); ++i)
    lr[i] = static_cast<uint8_t>(std::lround(std::clamp(unit[i] * 255.0, 0.0, 255.0)));
  return lr;
}

SrCropSampler::SrCropSampler(const PhotoSet& photos, int hr_size, int scale)
    : photos_(&photos), hr_size_(hr_size), scale_(scale) {
  if (scale < 1 || hr_size < scale || hr_size % scale != 0)
    fail(photos.source, "the HR crop size " + std::to_string(hr_size) + " must be a positive multiple of the scale " +
                            std::to_string(scale));
  if (photos.photos.empty()) fail(photos.source, "no photos");
  for (const Photo& p : photos.photos)
    if (p.image.width < hr_size || p.image.height < hr_size)
      fail(p.path, "a " + size_text(p.image) + " photo is smaller than the " + std::to_string(hr_size) + "x" +
                       std::to_string(hr_size) + " HR crop");
}

SrBatch SrCropSampler::sample(uint64_t seed, int64_t step, int batch) const {
  if (batch <= 0 || step < 0) throw std::invalid_argument("SrCropSampler::sample: batch must be positive, step >= 0");
  SrBatch out;
  out.batch = batch;
  out.hr_size = hr_size_;
  out.scale = scale_;
  const int s = hr_size_, lr_size = hr_size_ / scale_;
  const size_t hr_count = size_t(3) * s * s, lr_count = size_t(3) * lr_size * lr_size;
  out.hr.resize(hr_count * batch);
  out.lr.resize(lr_count * batch);
  Rng rng(seed ^ kCropSeedSalt, static_cast<uint64_t>(step));
  std::vector<uint8_t> crop(hr_count);
  for (int b = 0; b < batch; ++b) {
    const Image& img = photos_->photos[rng.below(photos_->photos.size())].image;
    const int top = static_cast<int>(rng.below(uint64_t(img.height - s + 1)));
    const int left = static_cast<int>(rng.below(uint64_t(img.width - s + 1)));
    const int symmetry = static_cast<int>(rng.below(8));
    crop_with_symmetry(img, top, left, s, symmetry, crop.data());
    const std::vector<uint8_t> lr = make_lr(crop.data(), s, s, scale_);
    float* hr_out = out.hr.data() + b * hr_count;
    float* lr_out = out.lr.data() + b * lr_count;
    for (size_t i = 0; i < hr_count; ++i) hr_out[i] = crop[i] / 127.5f - 1.0f;
    for (size_t i = 0; i < lr_count; ++i) lr_out[i] = lr[i] / 127.5f - 1.0f;
  }
  return out;
}

Image image_from_planar(const uint8_t* planar, int h, int w) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = 3;
  img.pixels.resize(size_t(3) * h * w);
  const size_t plane = size_t(h) * w;
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) img.pixels[3 * i + c] = planar[c * plane + i];
  return img;
}

std::vector<uint8_t> planar_from_image(const Image& img) {
  if (img.channels != 3) throw std::invalid_argument("planar_from_image: not an RGB image");
  const size_t plane = size_t(img.height) * img.width;
  std::vector<uint8_t> planar(3 * plane);
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) planar[c * plane + i] = img.pixels[3 * i + c];
  return planar;
}

std::vector<SrPair> validation_pairs(const PhotoSet& photos, int scale, int crop) {
  if (scale < 1 || crop < 0 || crop % scale != 0)
    fail(photos.source, "the validation crop " + std::to_string(crop) + " must be 0 or a multiple of the scale " +
                            std::to_string(scale));
  std::vector<SrPair> pairs;
  for (const Photo& p : photos.photos) {
    const Image& img = p.image;
    int h = img.height - img.height % scale, w = img.width - img.width % scale, top = 0, left = 0;
    if (crop > 0) {
      if (img.width < crop || img.height < crop)
        fail(p.path, "a " + size_text(img) + " photo is smaller than the " + std::to_string(crop) + "x" +
                         std::to_string(crop) + " validation crop");
      top = (img.height - crop) / 2;
      left = (img.width - crop) / 2;
      h = w = crop;
    }
    if (h == 0 || w == 0) fail(p.path, "a " + size_text(img) + " photo is smaller than the scale");
    std::vector<uint8_t> planar(size_t(3) * h * w);
    const size_t plane = size_t(h) * w;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c)
          planar[c * plane + size_t(y) * w + x] = img.pixels[(size_t(top + y) * img.width + left + x) * 3 + c];
    const std::vector<uint8_t> lr = make_lr(planar.data(), h, w, scale);
    pairs.push_back(
        {p.path, image_from_planar(planar.data(), h, w), image_from_planar(lr.data(), h / scale, w / scale)});
  }
  return pairs;
}

}  // namespace gancu
