#include "tools/gan/sr_train.h"

#include <algorithm>
#include <stdexcept>

#include "tools/io/png.h"

namespace gancu::app {

Tensor unit_tensor_from_image(const Image& image) {
  if (image.channels != 3) throw std::invalid_argument("super-resolution works on RGB images");
  const int h = image.height, w = image.width;
  Tensor t(Shape{1, 3, h, w});
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        t.data()[(int64_t(c) * h + y) * w + x] = image.pixels[(size_t(y) * w + x) * 3 + size_t(c)] / 127.5f - 1.0f;
  return t;
}

Image image_from_unit_tensor(const Tensor& images, int index) {
  const Shape& s = images.shape();
  if (s.rank() != 4 || s[1] != 3 || index < 0 || index >= s[0])
    throw std::invalid_argument("image_from_unit_tensor: " + s.str() + ", image " + std::to_string(index));
  Image out;
  out.channels = 3;
  out.height = static_cast<int>(s[2]);
  out.width = static_cast<int>(s[3]);
  out.pixels.resize(size_t(out.height) * out.width * 3);
  const float* base = images.data() + int64_t(index) * 3 * out.height * out.width;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x)
        out.pixels[(size_t(y) * out.width + x) * 3 + size_t(c)] =
            byte_from_unit(base[(int64_t(c) * out.height + y) * out.width + x]);
  return out;
}

SrValidation::SrValidation(const std::string& spec, int crop, int scale) : scale_(scale) {
  const PhotoSet photos = load_photos(spec);
  source_ = photos.source;
  pairs_ = validation_pairs(photos, scale, crop);
}

Image SrValidation::upscale(Trainer& trainer, const Image& lr) const {
  return image_from_unit_tensor(trainer.upscale(unit_tensor_from_image(lr)));
}

Image SrValidation::progress_grid(Trainer& trainer, int rows) const {
  const int n = std::min<int>(rows, static_cast<int>(pairs_.size()));
  if (n == 0) throw std::invalid_argument(source_ + ": no validation photos");
  const int h = pairs_[0].hr.height, w = pairs_[0].hr.width;
  // Three tiles a row, as floats in [-1, 1] for make_grid: bicubic, SR, HR.
  Tensor tiles(Shape{3 * n, 3, h, w});
  auto put = [&](int tile, const Image& image) {
    if (image.height != h || image.width != w)
      throw std::invalid_argument("progress grid: validation crops differ in size (use --val-crop)");
    const Tensor t = unit_tensor_from_image(image);
    std::copy(t.data(), t.data() + t.numel(), tiles.data() + int64_t(tile) * 3 * h * w);
  };
  for (int i = 0; i < n; ++i) {
    put(3 * i, eval::bicubic_upscale(pairs_[size_t(i)].lr, scale_));
    put(3 * i + 1, upscale(trainer, pairs_[size_t(i)].lr));
    put(3 * i + 2, pairs_[size_t(i)].hr);
  }
  return make_grid(tiles.data(), 3 * n, 3, h, w, 3);
}

eval::SrSetScore SrValidation::score(Trainer& trainer) const {
  return eval::score_sr_set(pairs_, scale_, [&](const Image& lr) { return upscale(trainer, lr); });
}

}  // namespace gancu::app
