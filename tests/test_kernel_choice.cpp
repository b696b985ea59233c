// The `--kernels auto` choice file (engine/kernel_choice.h): keys, lookups, the atomic save and the load, and the
// one-line errors for a file that is not one. The measuring half needs a GPU (tests/gpu/test_cuda_backend.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/files.h"
#include "engine/kernel_choice.h"
#include "tests/temp_dir.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;
using KernelChoiceFile = testing::TempDirTest;

Conv2dParams dcgan_d1() {  // D's first layer at DCGAN-64, batch 128
  Conv2dParams p;
  p.batch = 128;
  p.in_channels = 3;
  p.in_h = p.in_w = 64;
  p.out_channels = 64;
  p.kernel = 4;
  p.stride = 2;
  p.pad = 1;
  return p;
}

TEST(KernelChoiceKey, NamesEveryField) {
  EXPECT_EQ(conv_shape_key(dcgan_d1()), "n128 c3x64x64 k4 s2 p1 -> c64x32x32");
  ConvTranspose2dParams t;
  t.batch = 64;
  t.in_channels = 100;
  t.in_h = t.in_w = 1;
  t.out_channels = 512;
  t.kernel = 4;
  EXPECT_EQ(conv_shape_key(t), "n64 c100x1x1 k4 s1 p0 -> c512x4x4");
  t.output_pad = 1;  // a different output size is a different key
  EXPECT_EQ(conv_shape_key(t), "n64 c100x1x1 k4 s1 p0 -> c512x5x5");
  Conv2dParams other = dcgan_d1();
  other.batch = 64;
  EXPECT_NE(conv_shape_key(other), conv_shape_key(dcgan_d1()));
}

TEST(KernelChoiceCacheTest, FindsOnlyTheExactDeviceMathOpAndShape) {
  KernelChoiceCache cache;
  const std::string shape = conv_shape_key(dcgan_d1());
  EXPECT_EQ(cache.find("H100", "tf32", "conv2d", shape), nullptr);
  cache.insert("H100", "tf32", "conv2d", shape, {true, 0.5, 0.25});
  const KernelChoice* c = cache.find("H100", "tf32", "conv2d", shape);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->cudnn);
  EXPECT_DOUBLE_EQ(c->custom_ms, 0.5);
  EXPECT_DOUBLE_EQ(c->cudnn_ms, 0.25);
  EXPECT_EQ(cache.find("A100", "tf32", "conv2d", shape), nullptr);
  EXPECT_EQ(cache.find("H100", "fp32", "conv2d", shape), nullptr);
  EXPECT_EQ(cache.find("H100", "tf32", "conv2d_backward_weight", shape), nullptr);
  EXPECT_EQ(cache.find("H100", "tf32", "conv2d", "n1 c1x1x1 k1 s1 p0 -> c1x1x1"), nullptr);
  cache.save_if_changed();  // in memory only: writes nothing, throws nothing
}

TEST_F(KernelChoiceFile, SavesAtomicallyAndLoadsBack) {
  const std::string file = path("kernel_choices.json");
  const std::string shape = conv_shape_key(dcgan_d1());
  {
    KernelChoiceCache cache(file);  // no file yet: empty
    EXPECT_EQ(cache.size(), 0u);
    cache.insert("NVIDIA H100 80GB HBM3", "tf32", "conv2d", shape, {false, 0.125, 0.375});
    cache.insert("NVIDIA H100 80GB HBM3", "tf32", "conv2d_backward_weight", shape, {true, 0.5, 0.25});
    cache.save_if_changed();
  }
  ASSERT_TRUE(fs::exists(file));
  for (const auto& entry : fs::directory_iterator(dir_))  // no temporary file left behind
    EXPECT_EQ(entry.path().filename(), "kernel_choices.json");
  KernelChoiceCache loaded(file);
  EXPECT_EQ(loaded.size(), 2u);
  const KernelChoice* fwd = loaded.find("NVIDIA H100 80GB HBM3", "tf32", "conv2d", shape);
  const KernelChoice* bw = loaded.find("NVIDIA H100 80GB HBM3", "tf32", "conv2d_backward_weight", shape);
  ASSERT_NE(fwd, nullptr);
  ASSERT_NE(bw, nullptr);
  EXPECT_FALSE(fwd->cudnn);
  EXPECT_DOUBLE_EQ(fwd->custom_ms, 0.125);
  EXPECT_DOUBLE_EQ(fwd->cudnn_ms, 0.375);
  EXPECT_TRUE(bw->cudnn);

  // Nothing new: no write (the file is removed to see it is not recreated).
  fs::remove(file);
  loaded.save_if_changed();
  EXPECT_FALSE(fs::exists(file));
  // Something new: the whole cache is written, old entries and new.
  loaded.insert("NVIDIA H200", "fp32", "conv2d", shape, {true, 2.0, 1.0});
  loaded.save_if_changed();
  EXPECT_EQ(KernelChoiceCache(file).size(), 3u);
}

TEST_F(KernelChoiceFile, RejectsAFileThatIsNotOneAndLeavesItAlone) {
  const std::string entry =
      R"({"device": "H100", "math": "tf32", "op": "conv2d", "shape": "s", "kernels": "custom", "custom_ms": 1, "cudnn_ms": 2})";
  const std::string cases[] = {
      "not json at all",
      R"({"format": "something else", "choices": []})",
      R"({"format": 1, "choices": []})",
      R"({"format": "gancu kernel choices 1"})",
      R"({"format": "gancu kernel choices 1", "choices": [{"device": "H100"}]})",
      R"({"format": "gancu kernel choices 1", "choices": [)" + std::string(entry).replace(entry.find("custom\""), 6, "fastest") + "]}",
      R"({"format": "gancu kernel choices 1", "choices": [)" + entry + ",",  // truncated
  };
  for (const std::string& text : cases) {
    const std::string file = write_bytes("kernel_choices.json", text);
    try {
      KernelChoiceCache cache(file);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(file + ": ", 0), 0u) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    const std::vector<char> after = read_file(file);
    EXPECT_EQ(std::string(after.begin(), after.end()), text);
  }
  // The well-formed version of the same entry loads.
  EXPECT_EQ(KernelChoiceCache(write_bytes("ok.json", R"({"format": "gancu kernel choices 1", "choices": [)" + entry + "]}"))
                .size(),
            1u);
}

}  // namespace
}  // namespace gancu
