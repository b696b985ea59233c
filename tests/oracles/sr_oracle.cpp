// gancu's side of tests/sr_against_pytorch_skimage.py: for each photo given, writes into OUT_DIR what the script
// recomputes with PyTorch and scikit-image, and prints one JSON object describing it.
//   gancu_sr_oracle OUT_DIR PHOTO...
// Per photo i (files named p<i>-…):
//   crop-wide.u8     the 96-wide, 64-high window at (top, left), planar RGB bytes [3, 64, 96];
//   lr-unit.f64      its downsample_unit x4: [3, 16, 24] doubles in [0, 1], unrounded;
//   crop-sym<s>.u8   the 64x64 window at (top, left) under symmetry s = 0…7 (crop_with_symmetry), [3, 64, 64];
//   hr.u8, lr.u8, bicubic.u8, mirror.u8   the 256x256 validation pair (HWC bytes), the bicubic x4 of its LR, and
//                    the HR mirrored left-right; the JSON holds score_sr of bicubic and of mirror against HR.
// Plus batch-hr.f32 / batch-lr.f32: SrCropSampler(photos, 96, 4).sample(seed 7, step 3, batch 4).
#include <cstdio>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/eval/sr_metrics.h"
#include "tools/io/photos.h"

namespace {

template <class T>
void write_raw(const std::string& path, const T* data, size_t count) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
  if (!out) throw std::runtime_error(path + ": cannot write");
}

nlohmann::json score_json(const gancu::eval::SrScore& s) { return {{"psnr", s.psnr}, {"ssim", s.ssim}}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR PHOTO...\n", argv[0]);
    return 2;
  }
  try {
    using namespace gancu;
    const std::string out = argv[1];
    const PhotoSet photos = load_photo_files(std::vector<std::string>(argv + 2, argv + argc), "oracle");
    const std::vector<SrPair> pairs = validation_pairs(photos, 4, 256);
    nlohmann::json report = {{"photos", nlohmann::json::array()}};
    for (size_t i = 0; i < photos.photos.size(); ++i) {
      const Image& img = photos.photos[i].image;
      const std::string prefix = out + "/p" + std::to_string(i) + "-";
      const int top = img.height / 3, left = img.width / 5;
      std::vector<uint8_t> crop(3 * 64 * 96);
      // crop_with_symmetry takes squares: the 96x96 window, of which the first 64 rows make the wide crop.
      std::vector<uint8_t> square(3 * 96 * 96);
      crop_with_symmetry(img, top, left, 96, 0, square.data());
      for (int c = 0; c < 3; ++c) std::copy_n(square.begin() + c * 96 * 96, 64 * 96, crop.begin() + c * 64 * 96);
      write_raw(prefix + "crop-wide.u8", crop.data(), crop.size());
      const std::vector<double> lr_unit = downsample_unit(crop.data(), 64, 96, 4);
      write_raw(prefix + "lr-unit.f64", lr_unit.data(), lr_unit.size());
      for (int s = 0; s < 8; ++s) {
        std::vector<uint8_t> sym(3 * 64 * 64);
        crop_with_symmetry(img, top, left, 64, s, sym.data());
        write_raw(prefix + "crop-sym" + std::to_string(s) + ".u8", sym.data(), sym.size());
      }
      const SrPair& pair = pairs[i];
      const Image bicubic = eval::bicubic_upscale(pair.lr, 4);
      Image mirror = pair.hr;
      for (int y = 0; y < mirror.height; ++y)
        for (int x = 0; x < mirror.width; ++x)
          for (int c = 0; c < 3; ++c)
            mirror.pixels[(size_t(y) * mirror.width + x) * 3 + c] =
                pair.hr.pixels[(size_t(y) * mirror.width + mirror.width - 1 - x) * 3 + c];
      write_raw(prefix + "hr.u8", pair.hr.pixels.data(), pair.hr.pixels.size());
      write_raw(prefix + "lr.u8", pair.lr.pixels.data(), pair.lr.pixels.size());
      write_raw(prefix + "bicubic.u8", bicubic.pixels.data(), bicubic.pixels.size());
      write_raw(prefix + "mirror.u8", mirror.pixels.data(), mirror.pixels.size());
      report["photos"].push_back({{"path", photos.photos[i].path},
                                  {"top", top},
                                  {"left", left},
                                  {"width", img.width},
                                  {"height", img.height},
                                  {"bicubic", score_json(eval::score_sr(pair.hr, bicubic, 4))},
                                  {"mirror", score_json(eval::score_sr(pair.hr, mirror, 4))}});
    }
    const SrBatch batch = SrCropSampler(photos, 96, 4).sample(7, 3, 4);
    write_raw(out + "/batch-hr.f32", batch.hr.data(), batch.hr.size());
    write_raw(out + "/batch-lr.f32", batch.lr.data(), batch.lr.size());
    std::printf("%s\n", report.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gancu_sr_oracle: %s\n", e.what());
    return 1;
  }
}
