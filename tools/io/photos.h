// Photos for super-resolution: folders of PNG and JPEG photos kept at their own sizes, the default photo sets of
// Debian packages (tools/sr_photos.txt), and the (high-resolution, low-resolution) pairs SRGAN trains and is scored
// on. Low resolution is made as the paper makes it: x`scale` antialiased bicubic downsampling (kernels/cpu/resize.h,
// PyTorch's interpolate(mode="bicubic", antialias=True)), rounded to bytes as a saved LR photo would be.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tools/io/png.h"

namespace gancu {

struct Photo {
  std::string path;
  Image image;  // RGB (3 channels), HWC bytes, the photo's own size
};

struct PhotoSet {
  std::vector<Photo> photos;
  std::string source;  // the folder or spec, for messages
  int64_t total_pixels() const;
  int min_side() const;  // the smallest height or width of any photo
};

// Every *.png, *.jpg and *.jpeg (any case) directly in `dir`, sorted by name; sub-folders are not entered (a
// validation folder may sit inside the training one). Each file is decoded by its content (load_image): a .jpg that
// is really a PNG is fine, one that is neither is an error. Grey images become RGB. Throws
// std::runtime_error("<dir>: …") when the folder is missing or holds no such file.
PhotoSet load_photo_folder(const std::string& dir);
// The given files, in that order (PNG or JPEG each), under the name `source`.
PhotoSet load_photo_files(const std::vector<std::string>& paths, const std::string& source);

// The default photo sets: the files the manifest lists for `split` ("train" or "val"). Manifest lines are
// "<split> <absolute path> <credit…>"; blank lines and lines starting with '#' are skipped. Throws
// std::runtime_error naming the first missing file and the Debian package that ships it (the credit's first word)
// when a package is not installed, or naming the manifest when it cannot be read or is malformed.
inline constexpr const char* kDebianPhotos = "debian-photos";         // the training split
inline constexpr const char* kDebianPhotosVal = "debian-photos-val";  // the validation split
// tools/sr_photos.txt of the source tree gancu was built from, or $GANCU_SR_PHOTOS when set.
std::string default_photo_manifest();
std::vector<std::string> photo_manifest_files(const std::string& split, const std::string& manifest);
// "debian-photos" / "debian-photos-val" → the manifest's split (default_photo_manifest()); anything else is a folder.
PhotoSet load_photos(const std::string& spec);

// HR crops and their LR twins as the network sees them: floats in [-1, 1], NCHW, HR [batch, 3, hr_size, hr_size] and
// LR [batch, 3, hr_size / scale, hr_size / scale].
struct SrBatch {
  int batch = 0, hr_size = 0, scale = 0;
  std::vector<float> hr, lr;
};

// Random training crops, a pure function of (seed, step): a resumed run draws what the uninterrupted one drew, and
// batches can be made in any order or in parallel. For each crop: a photo, uniformly (each photo equally often,
// whatever its size); a position, uniformly over every hr_size × hr_size window in it; and one of the 8 symmetries of
// the square, uniformly (bit 0: mirror left-right first; bits 1-2: then that many quarter turns counter-clockwise), so
// that no orientation is preferred. The LR crop is made from the transformed HR crop (make_lr); the transforms commute
// with the resize, so the order only fixes the rounding.
class SrCropSampler {
 public:
  // `photos` must outlive the sampler. hr_size must be a positive multiple of scale, and every photo at least hr_size
  // on each side (std::runtime_error naming the first that is not, and its size).
  SrCropSampler(const PhotoSet& photos, int hr_size = 96, int scale = 4);
  SrBatch sample(uint64_t seed, int64_t step, int batch) const;
  int hr_size() const { return hr_size_; }
  int scale() const { return scale_; }

 private:
  const PhotoSet* photos_;
  int hr_size_, scale_;
};

// One crop of `src` (RGB): the size × size window at (top, left), transformed by symmetry
// 0-7 (see SrCropSampler), as planar RGB bytes [3, size, size].
void crop_with_symmetry(const Image& src, int top, int left, int size, int symmetry, uint8_t* out);

// HR bytes [3, h, w] → LR [3, h / scale, w / scale] by antialiased bicubic downsampling of the values in [0, 1]
// (computed in double), unrounded: the values the PyTorch oracle is compared with.
std::vector<double> downsample_unit(const uint8_t* hr, int h, int w, int scale);
// The same rounded to bytes, clamped to [0, 255]: the LR photo a camera file would hold.
std::vector<uint8_t> make_lr(const uint8_t* hr, int h, int w, int scale);

// Validation pairs: per photo, an HR image and its LR made by make_lr, kept as RGB HWC bytes (what metrics score). With
// crop > 0 (a multiple of scale, no larger than any photo) the HR image is the photo's centre crop × crop; with crop 0
// it is the whole photo, its bottom and right edges cut to a multiple of scale (MATLAB's "modcrop").
struct SrPair {
  std::string name;  // the photo's path
  Image hr, lr;
};
std::vector<SrPair> validation_pairs(const PhotoSet& photos, int scale = 4, int crop = 0);

// Planar RGB bytes [3, h, w] ↔ interleaved RGB images.
Image image_from_planar(const uint8_t* planar, int h, int w);
std::vector<uint8_t> planar_from_image(const Image& img);

}  // namespace gancu
