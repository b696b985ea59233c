// JPEG reading, photo folders and manifests, SR crops and pairs, PSNR/SSIM: the properties that need no outside
// oracle. tests/sr_against_pytorch_skimage.py checks the numbers against PyTorch and scikit-image on real photos.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/rng.h"
#include "tests/temp_dir.h"
#include "tools/eval/sr_metrics.h"
#include "tools/gan/sr_eval.h"
#include "tools/io/jpeg.h"
#include "tools/io/photos.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;

const fs::path kJpegCorpus = fs::path(GANCU_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "jpeg";

std::string corpus_bytes(const std::string& name) {
  const std::vector<char> bytes = read_file((kJpegCorpus / name).string());
  return {bytes.begin(), bytes.end()};
}

// A w x h RGB image of seeded random bytes.
Image random_image(int w, int h, uint64_t seed) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = 3;
  img.pixels.resize(size_t(w) * h * 3);
  Rng rng(seed);
  for (uint8_t& p : img.pixels) p = static_cast<uint8_t>(rng.below(256));
  return img;
}

// Smooth content (gradients and a few waves) with a little noise: what photos look like to SSIM.
Image smooth_image(int w, int h, uint64_t seed) {
  Image img = random_image(w, h, seed);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const double v = 128 + 60 * std::sin(0.07 * x + c) + 50 * std::cos(0.05 * y - c) +
                         (img.pixels[(size_t(y) * w + x) * 3 + c] % 9) - 4;
        img.pixels[(size_t(y) * w + x) * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      }
  return img;
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

class JpegTest : public testing::TempDirTest {};

TEST_F(JpegTest, DecodesColourAndGreyToRgb) {
  const Image rgb = read_jpeg((kJpegCorpus / "ok-rgb-9x7").string());
  EXPECT_EQ(rgb.width, 9);
  EXPECT_EQ(rgb.height, 7);
  EXPECT_EQ(rgb.channels, 3);
  ASSERT_EQ(rgb.pixels.size(), 9u * 7 * 3);
  const Image grey = read_jpeg((kJpegCorpus / "ok-grey-5x3").string());
  ASSERT_EQ(grey.channels, 3);
  ASSERT_EQ(grey.pixels.size(), 5u * 3 * 3);
  std::set<uint8_t> levels;
  for (size_t i = 0; i < grey.pixels.size(); i += 3) {
    EXPECT_EQ(grey.pixels[i], grey.pixels[i + 1]);
    EXPECT_EQ(grey.pixels[i], grey.pixels[i + 2]);
    levels.insert(grey.pixels[i]);
  }
  EXPECT_GT(levels.size(), 3u);  // not a flat image
  // Progressive and arithmetic-coded files of the same picture decode close to the baseline one.
  for (const char* other : {"ok-progressive-9x7", "ok-arithmetic-9x7"}) {
    if (!fs::exists(kJpegCorpus / other)) continue;
    const Image img = read_jpeg((kJpegCorpus / other).string());
    ASSERT_EQ(img.pixels.size(), rgb.pixels.size()) << other;
    double diff = 0;
    for (size_t i = 0; i < img.pixels.size(); ++i) diff += std::abs(int(img.pixels[i]) - int(rgb.pixels[i]));
    EXPECT_LT(diff / double(img.pixels.size()), 24.0) << other;
  }
}

TEST_F(JpegTest, RefusalsNameTheFileAndTheProblem) {
  const auto refusal = [&](const std::string& name) {
    const std::string file = write_bytes(name, corpus_bytes(name));
    return error_of([&] { read_jpeg(file); });
  };
  EXPECT_NE(refusal("bad-truncated-half").find("bad-truncated-half: corrupt or unsupported JPEG"), std::string::npos);
  EXPECT_NE(refusal("bad-truncated-before-eoi").find("Premature end"), std::string::npos);
  EXPECT_NE(refusal("bad-cmyk").find("CMYK"), std::string::npos);
  EXPECT_NE(refusal("bad-huge-declared-65500x65500").find("65500x65500 pixels, over the limit"), std::string::npos);
  EXPECT_NE(refusal("bad-png-signature").find("not a JPEG"), std::string::npos);
  EXPECT_NE(refusal("bad-empty").find("not a JPEG"), std::string::npos);
  // Under the limit, a short file declaring a large image fails at its end.
  EXPECT_NE(refusal("bad-declared-3000x3000-truncated").find("corrupt"), std::string::npos);
  EXPECT_NE(refusal("bad-progressive-declared-2000x2000").find("a progressive 2000x2000 image, more than the"),
            std::string::npos);
  // A lower limit refuses a valid image.
  const std::string ok = write_bytes("ok.jpg", corpus_bytes("ok-rgb-9x7"));
  EXPECT_NE(error_of([&] { read_jpeg(ok, 62); }).find("9x7 pixels, over the limit of 62"), std::string::npos);
  EXPECT_EQ(error_of([&] { read_jpeg(ok, 63); }), "");
}

TEST_F(JpegTest, LoadImageGoesByContentNotName) {
  const std::string jpeg_named_png = write_bytes("photo.png", corpus_bytes("ok-rgb-9x7"));
  Image png_image = random_image(4, 3, 1);
  const std::string png_named_jpg = write_bytes("photo.jpg", encode_png("x", png_image));
  const Image a = load_image(jpeg_named_png);
  EXPECT_EQ(a.width, 9);
  EXPECT_EQ(a.pixels, read_jpeg(jpeg_named_png).pixels);
  EXPECT_EQ(load_image(png_named_jpg).pixels, png_image.pixels);
  const std::string text = write_bytes("notes.jpg", "not an image");
  EXPECT_NE(error_of([&] { load_image(text); }).find("notes.jpg: neither a PNG nor a JPEG"), std::string::npos);
}

class PhotosTest : public testing::TempDirTest {};

TEST_F(PhotosTest, FolderHoldsItsPngsAndJpegsSortedAtTheirOwnSizes) {
  write_png(path("b.png"), random_image(20, 10, 2));
  Image grey;
  grey.width = 6;
  grey.height = 5;
  grey.channels = 1;
  grey.pixels.assign(30, 77);
  write_png(path("c.PNG"), grey);
  write_bytes("a.jpeg", corpus_bytes("ok-rgb-9x7"));
  write_bytes("readme.txt", "not a photo");
  fs::create_directories(dir_ / "val");
  write_png(path("val/d.png"), random_image(8, 8, 3));
  const PhotoSet set = load_photo_folder(dir_.string());
  ASSERT_EQ(set.photos.size(), 3u);
  EXPECT_EQ(fs::path(set.photos[0].path).filename(), "a.jpeg");
  EXPECT_EQ(fs::path(set.photos[1].path).filename(), "b.png");
  EXPECT_EQ(fs::path(set.photos[2].path).filename(), "c.PNG");
  EXPECT_EQ(set.photos[1].image.width, 20);
  EXPECT_EQ(set.photos[2].image.channels, 3);  // grey made RGB
  EXPECT_EQ(set.photos[2].image.pixels, std::vector<uint8_t>(90, 77));
  EXPECT_EQ(set.total_pixels(), 63 + 200 + 30);
  EXPECT_EQ(set.min_side(), 5);
  EXPECT_EQ(load_photo_folder(path("val")).photos.size(), 1u);
  fs::create_directories(dir_ / "empty");
  EXPECT_NE(error_of([&] { load_photo_folder(path("empty")); }).find("no .png, .jpg or .jpeg files"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_photo_folder(path("missing")); }).find("not a folder"), std::string::npos);
}

TEST_F(PhotosTest, SamplerRefusesPhotosSmallerThanTheCrop) {
  write_png(path("big.png"), random_image(100, 100, 4));
  write_png(path("small.png"), random_image(100, 95, 5));
  const PhotoSet set = load_photo_folder(dir_.string());
  EXPECT_NE(
      error_of([&] { SrCropSampler(set, 96, 4); }).find("small.png: a 100x95 photo is smaller than the 96x96 HR crop"),
      std::string::npos);
  EXPECT_NE(error_of([&] { SrCropSampler(set, 90, 4); }).find("multiple of the scale"), std::string::npos);
  EXPECT_EQ(error_of([&] { SrCropSampler(set, 92, 4); }), "");
}

TEST(CropSymmetry, TheEightAreMirrorThenQuarterTurns) {
  const Image img = random_image(13, 11, 6);
  const int top = 2, left = 3, n = 7;
  std::vector<std::vector<uint8_t>> variants;
  for (int s = 0; s < 8; ++s) {
    std::vector<uint8_t> out(3 * n * n);
    crop_with_symmetry(img, top, left, n, s, out.data());
    variants.push_back(out);
  }
  const auto src = [&](int c, int y, int x) { return img.pixels[(size_t(top + y) * img.width + left + x) * 3 + c]; };
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        const size_t i = (size_t(c) * n + y) * n + x;
        EXPECT_EQ(variants[0][i], src(c, y, x));
        EXPECT_EQ(variants[1][i], src(c, y, n - 1 - x));          // mirrored left-right
        EXPECT_EQ(variants[2][i], src(c, x, n - 1 - y));          // a quarter turn counter-clockwise
        EXPECT_EQ(variants[4][i], src(c, n - 1 - y, n - 1 - x));  // a half turn
      }
  for (int i = 0; i < 8; ++i)
    for (int j = i + 1; j < 8; ++j) EXPECT_NE(variants[i], variants[j]) << i << " and " << j;
}

TEST_F(PhotosTest, SamplerIsAFunctionOfSeedAndStep) {
  write_png(path("a.png"), smooth_image(130, 100, 7));
  write_png(path("b.png"), smooth_image(100, 140, 8));
  const PhotoSet set = load_photo_folder(dir_.string());
  const SrCropSampler sampler(set, 96, 4);
  const SrBatch a = sampler.sample(5, 10, 6), again = sampler.sample(5, 10, 6);
  EXPECT_EQ(a.hr, again.hr);
  EXPECT_EQ(a.lr, again.lr);
  ASSERT_EQ(a.hr.size(), 6u * 3 * 96 * 96);
  ASSERT_EQ(a.lr.size(), 6u * 3 * 24 * 24);
  EXPECT_NE(sampler.sample(5, 11, 6).hr, a.hr);
  EXPECT_NE(sampler.sample(6, 10, 6).hr, a.hr);
  // Each LR crop is make_lr of its HR crop's bytes, and every value lies in [-1, 1].
  for (int b = 0; b < 6; ++b) {
    std::vector<uint8_t> hr(3 * 96 * 96);
    for (size_t i = 0; i < hr.size(); ++i) {
      const float v = a.hr[b * hr.size() + i];
      ASSERT_TRUE(v >= -1 && v <= 1);
      hr[i] = static_cast<uint8_t>(std::lround((v + 1) * 127.5f));
    }
    const std::vector<uint8_t> lr = make_lr(hr.data(), 96, 96, 4);
    for (size_t i = 0; i < lr.size(); ++i) ASSERT_EQ(a.lr[b * lr.size() + i], lr[i] / 127.5f - 1.0f) << b << " " << i;
  }
}

TEST_F(PhotosTest, ValidationPairsAreCentreCropsOrModcroppedPhotos) {
  const Image img = smooth_image(103, 70, 9);
  write_png(path("a.png"), img);
  const PhotoSet set = load_photo_folder(dir_.string());
  const std::vector<SrPair> whole = validation_pairs(set, 4, 0);
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].hr.width, 100);
  EXPECT_EQ(whole[0].hr.height, 68);
  EXPECT_EQ(whole[0].lr.width, 25);
  EXPECT_EQ(whole[0].lr.height, 17);
  EXPECT_EQ(whole[0].hr.pixels[(5 * 100 + 7) * 3 + 1], img.pixels[(5 * 103 + 7) * 3 + 1]);  // top-left kept
  const std::vector<SrPair> crops = validation_pairs(set, 4, 64);
  EXPECT_EQ(crops[0].hr.width, 64);
  EXPECT_EQ(crops[0].lr.width, 16);
  EXPECT_EQ(crops[0].hr.pixels[0], img.pixels[((3 * 103) + 19) * 3]);  // (70 − 64) / 2 = 3, (103 − 64) / 2 = 19
  EXPECT_NE(error_of([&] { validation_pairs(set, 4, 72); }).find("smaller than the 72x72 validation crop"),
            std::string::npos);
}

TEST_F(PhotosTest, ManifestListsASplitAndNamesTheMissingPackage) {
  write_png(path("a.png"), random_image(8, 8, 10));
  write_png(path("b.png"), random_image(8, 8, 11));
  const std::string manifest = write_bytes(
      "photos.txt", "# comment\n\ntrain " + path("a.png") + " pkg-a Someone\nval " + path("b.png") + " pkg-b\n");
  EXPECT_EQ(photo_manifest_files("train", manifest), std::vector<std::string>{path("a.png")});
  EXPECT_EQ(photo_manifest_files("val", manifest), std::vector<std::string>{path("b.png")});
  const std::string missing = write_bytes("missing.txt", "val " + path("gone.jpg") + " lomiri-wallpapers-16.04 X\n");
  EXPECT_NE(error_of([&] { photo_manifest_files("val", missing); }).find("gone.jpg: missing (listed in"),
            std::string::npos);
  EXPECT_NE(error_of([&] { photo_manifest_files("val", missing); }).find("install Debian's lomiri-wallpapers-16.04"),
            std::string::npos);
  const std::string bad = write_bytes("bad.txt", "train a.png pkg\n");
  EXPECT_NE(error_of([&] { photo_manifest_files("train", bad); }).find("bad.txt:1: expected"), std::string::npos);
  EXPECT_NE(error_of([&] { photo_manifest_files("test", manifest); }).find("lists no \"test\" photos"),
            std::string::npos);
}

// The repository's own manifest: both splits, disjoint, absolute paths of photos from the packages named.
TEST(PhotoManifest, DefaultSetsAreDisjoint) {
  const std::string manifest = (fs::path(GANCU_SOURCE_DIR) / "tools" / "sr_photos.txt").string();
  std::ifstream in(manifest);
  std::set<std::string> train, val;
  std::string split, path;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    if (!(fields >> split >> path) || split[0] == '#') continue;
    (split == "train" ? train : val).insert(path);
  }
  EXPECT_EQ(train.size(), 52u);
  EXPECT_EQ(val.size(), 14u);
  for (const std::string& p : val) EXPECT_EQ(train.count(p), 0u) << p;
}

TEST(SrMetrics, IdenticalImagesScorePerfectly) {
  const Image img = smooth_image(40, 30, 12);
  const eval::SrScore s = eval::score_sr(img, img, 4);
  EXPECT_TRUE(std::isinf(s.psnr) && s.psnr > 0);
  EXPECT_DOUBLE_EQ(s.ssim, 1.0);
}

TEST(SrMetrics, PsnrOfAKnownLumaOffset) {
  // One byte more in every channel moves Y by (65.481 + 128.553 + 24.966) / 255 = 219 / 255 everywhere, also at the
  // border, which is cut anyway.
  const Image a = smooth_image(40, 30, 13);
  Image b = a;
  for (uint8_t& p : b.pixels) p = static_cast<uint8_t>(std::min(p + 1, 255));
  for (uint8_t p : a.pixels) ASSERT_LT(p, 255);
  const double dy = 219.0 / 255.0;
  EXPECT_NEAR(eval::score_sr(a, b, 4).psnr, 10 * std::log10(255.0 * 255.0 / (dy * dy)), 1e-9);
  EXPECT_EQ(eval::luma_bt601(b).size(), 1200u);
}

TEST(SrMetrics, SsimFallsWithNoiseAndIsSymmetric) {
  const Image clean = smooth_image(64, 48, 14);
  Image slight = clean, heavy = clean;
  Rng rng(15);
  for (size_t i = 0; i < clean.pixels.size(); ++i) {
    const int noise = static_cast<int>(rng.below(41)) - 20;
    slight.pixels[i] = static_cast<uint8_t>(std::clamp(clean.pixels[i] + noise / 8, 0, 255));
    heavy.pixels[i] = static_cast<uint8_t>(std::clamp(clean.pixels[i] + 2 * noise, 0, 255));
  }
  const eval::SrScore s = eval::score_sr(clean, slight, 4), h = eval::score_sr(clean, heavy, 4);
  EXPECT_GT(s.ssim, h.ssim);
  EXPECT_GT(s.psnr, h.psnr);
  EXPECT_LT(s.ssim, 1.0);
  EXPECT_GT(h.ssim, -1.0);
  EXPECT_DOUBLE_EQ(eval::score_sr(heavy, clean, 4).ssim, h.ssim);
  EXPECT_THROW(eval::score_sr(clean, smooth_image(64, 40, 16), 4), std::invalid_argument);
  EXPECT_THROW(eval::score_sr(smooth_image(18, 18, 17), smooth_image(18, 18, 17), 4), std::invalid_argument);
}

TEST(SrMetrics, SetScoresAverageImagesAndTakeAnUpscaler) {
  std::vector<SrPair> pairs;
  for (int i = 0; i < 3; ++i) {
    const Image hr = smooth_image(64, 48, 20 + i);
    const std::vector<uint8_t> planar = planar_from_image(hr);
    const std::vector<uint8_t> lr = make_lr(planar.data(), 48, 64, 4);
    pairs.push_back({"p" + std::to_string(i), hr, image_from_planar(lr.data(), 12, 16)});
  }
  const eval::SrSetScore bicubic = eval::score_sr_set(pairs, 4);
  double mean = 0;
  for (const auto& s : bicubic.images) {
    EXPECT_EQ(s.method.psnr, s.bicubic.psnr);
    mean += s.bicubic.psnr / 3;
  }
  EXPECT_NEAR(bicubic.bicubic_mean.psnr, mean, 1e-12);
  EXPECT_GT(bicubic.bicubic_mean.psnr, 20.0);
  // An oracle upscaler that returns the HR image itself scores perfectly, beside the same bicubic numbers.
  size_t next = 0;
  const eval::SrSetScore perfect = eval::score_sr_set(pairs, 4, [&](const Image&) { return pairs[next++].hr; });
  EXPECT_DOUBLE_EQ(perfect.method_mean.ssim, 1.0);
  EXPECT_EQ(perfect.bicubic_mean.psnr, bicubic.bicubic_mean.psnr);
}

TEST_F(PhotosTest, SrEvalScoresAFolderAndWritesJson) {
  write_png(path("a.png"), smooth_image(64, 48, 30));
  write_png(path("b.png"), smooth_image(72, 52, 31));
  app::SrEvalOptions options;
  options.data = dir_.string();
  options.json = path("scores.json");
  ASSERT_EQ(app::run_sr_eval(options), 0);
  const std::vector<char> bytes = read_file(options.json);
  const nlohmann::json result = nlohmann::json::parse(bytes.begin(), bytes.end());
  ASSERT_EQ(result["images"].size(), 2u);
  EXPECT_EQ(result["method"], "bicubic");
  EXPECT_EQ(result["images"][1]["width"], 72);
  EXPECT_EQ(result["psnr"], result["bicubic_psnr"]);
  const double mean = (result["images"][0]["ssim"].get<double>() + result["images"][1]["ssim"].get<double>()) / 2;
  EXPECT_NEAR(result["ssim"].get<double>(), mean, 1e-12);
  EXPECT_GT(result["ssim"].get<double>(), 0.5);
}

}  // namespace
}  // namespace gancu
