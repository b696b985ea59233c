#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "tests/safetensors_bytes.h"
#include "tests/temp_dir.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;
using testing::expect_rejected;
using testing::floats;
using testing::le64;
using testing::safetensors_bytes;

class SafetensorsTest : public testing::TempDirTest {
 protected:
  std::string contents(const std::string& name) const {
    const std::vector<char> bytes = read_file(path(name));
    return {bytes.begin(), bytes.end()};
  }
};

Tensor counting(const Shape& shape, float offset) {
  Tensor t(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = offset + 0.5f * static_cast<float>(i);
  return t;
}

TEST_F(SafetensorsTest, RoundTripWithMetadata) {
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"gen.conv1.weight", counting(Shape{4, 3, 2, 2}, -3.0f)},
      {"gen.bn1.running_var", counting(Shape{4}, 1.0f)},
      {"step", counting(Shape{}, 1234.0f)},
      {"empty", Tensor(Shape{0, 5})},
      {"matrix", counting(Shape{2, 3}, 7.0f)},
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"model", "dcgan"}, {"step", "1234"}};
  save_safetensors(path("ckpt.safetensors"), tensors, metadata);

  std::map<std::string, std::string> meta_back;
  const auto loaded = load_safetensors(path("ckpt.safetensors"), &meta_back);
  EXPECT_EQ(meta_back, metadata);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(loaded.contains(name)) << name;
    const Tensor& back = loaded.at(name);
    ASSERT_EQ(back.shape(), t.shape()) << name;
    for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(back[i], t[i]) << name;
  }

  // Layout rules: the data section starts 8-byte aligned and the header is a JSON object padded with spaces.
  const std::string bytes = contents("ckpt.safetensors");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ(bytes.size(), 8 + header_len + (48 + 4 + 1 + 0 + 6) * 4);

  // Saving the same tensors twice gives identical files.
  save_safetensors(path("again.safetensors"), tensors, metadata);
  EXPECT_EQ(contents("again.safetensors"), bytes);
}

TEST_F(SafetensorsTest, ReadsAHandBuiltSpecFile) {
  // Keys deliberately out of data order; a 0-d tensor; offsets not in key order.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
      R"("b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  const std::string p = write_bytes("spec.safetensors", safetensors_bytes(header, floats({-0.5f, 1.0f, 2.0f})));
  std::map<std::string, std::string> meta;
  const auto loaded = load_safetensors(p, &meta);
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded.at("a").shape(), Shape{2});
  EXPECT_EQ(loaded.at("a")[0], 1.0f);
  EXPECT_EQ(loaded.at("a")[1], 2.0f);
  EXPECT_EQ(loaded.at("b").shape().rank(), 0);
  EXPECT_EQ(loaded.at("b")[0], -0.5f);
}

TEST_F(SafetensorsTest, RejectsTruncatedAndForeignFiles) {
  save_safetensors(path("good.safetensors"), {{"w", counting(Shape{8, 8}, 0.0f)}});
  const std::string good = contents("good.safetensors");
  expect_rejected(write_bytes("cut_data", good.substr(0, good.size() - 3)), "run past");
  expect_rejected(write_bytes("cut_header", good.substr(0, 20)), "header length");
  expect_rejected(write_bytes("tiny", "abc"), "too short");

  Image img{4, 4, 3, std::vector<uint8_t>(48, 9)};
  write_png(path("image.png"), img);
  expect_rejected(path("image.png"), "header length");
  // A foreign file whose first 8 bytes happen to give a small length.
  expect_rejected(write_bytes("text", le64(4) + "abcd"), "not a safetensors file");
  expect_rejected(path("absent"), "cannot open");
}

TEST_F(SafetensorsTest, RejectsBadHeaders) {
  const std::string data = floats({1, 2, 3, 4});
  auto reject = [&](const std::string& name, const std::string& header, const std::string& fragment) {
    expect_rejected(write_bytes(name, safetensors_bytes(header, data)), fragment);
  };
  reject("json", R"({"a":{"dtype":"F32",)", "invalid JSON");
  reject("unknown", R"({"a":{"dtype":"Q7","shape":[4],"data_offsets":[0,16]}})", "unknown dtype \"Q7\"");
  reject("f16", R"({"a":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}})", "unsupported dtype F16");
  reject("size", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", "needs 12");
  reject("past", R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", "run past");
  reject("overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
         "overlaps");
  reject("gap", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})", "gap of 4 bytes");
  reject("tail", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", "4 bytes after the last tensor");
  reject("reversed", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})", "end before they begin");
  reject("negative", R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", "negative");
  reject("rank", R"({"a":{"dtype":"F32","shape":[1,1,1,1,4],"data_offsets":[0,16]}})", "rank 5");
  reject("missing", R"({"a":{"dtype":"F32","data_offsets":[0,16]}})", "no \"shape\"");
  reject("meta", R"({"__metadata__":{"n":3},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "not a string");
  reject("array", R"(["a"])", "not a safetensors file");
}

TEST_F(SafetensorsTest, RejectsBadNamesWithoutTouchingTheFile) {
  save_safetensors(path("ckpt"), {{"w", counting(Shape{3}, 1.0f)}});
  const std::string before = contents("ckpt");
  EXPECT_THROW(save_safetensors(path("ckpt"), {{"w", Tensor(Shape{2})}, {"w", Tensor(Shape{2})}}), std::runtime_error);
  EXPECT_THROW(save_safetensors(path("ckpt"), {{"__metadata__", Tensor(Shape{2})}}), std::runtime_error);
  EXPECT_THROW(save_safetensors(path("ckpt"), {{"", Tensor(Shape{2})}}), std::runtime_error);
  EXPECT_EQ(contents("ckpt"), before);
}

TEST_F(SafetensorsTest, FailedSaveLeavesThePreviousFileIntact) {
  save_safetensors(path("ckpt.safetensors"), {{"w", counting(Shape{16}, 1.0f)}}, {{"step", "100"}});
  const std::string before = contents("ckpt.safetensors");
  // write_file_atomic writes "<path>.tmp.<pid>" first; a folder in that place makes the write fail (even as root,
  // unlike a read-only folder), exactly like a full disk would, after the old file was already there.
  fs::create_directory(path("ckpt.safetensors") + ".tmp." + std::to_string(::getpid()));
  try {
    save_safetensors(path("ckpt.safetensors"), {{"w", counting(Shape{32}, 5.0f)}}, {{"step", "200"}});
    ADD_FAILURE() << "save did not fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path("ckpt.safetensors")), std::string::npos) << e.what();
  }
  EXPECT_EQ(contents("ckpt.safetensors"), before);
  std::map<std::string, std::string> meta;
  EXPECT_EQ(load_safetensors(path("ckpt.safetensors"), &meta).at("w").numel(), 16);
  EXPECT_EQ(meta.at("step"), "100");

  // A folder that does not exist fails cleanly too.
  EXPECT_THROW(save_safetensors(path("missing/ckpt.safetensors"), {{"w", Tensor(Shape{1})}}), std::runtime_error);
}

TEST_F(SafetensorsTest, F64ArraysRoundTripBitExactAndKeepToTheirDtype) {
  const F64Array vector{{3}, {0.1, -1e300, 5e-324}}, matrix{{2, 2}, {1.0 / 3, 2.0, -0.0, 1e-17}}, scalar{{}, {42.5}};
  save_safetensors_f64(path("stats.safetensors"), {{"v", vector}, {"m", matrix}, {"s", scalar}}, {{"n", "7"}});
  std::map<std::string, std::string> meta;
  const auto back = load_safetensors_f64(path("stats.safetensors"), {"m", "v", "s"}, &meta);
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"n", "7"}}));
  for (const auto& [name, want] : std::map<std::string, F64Array>{{"v", vector}, {"m", matrix}, {"s", scalar}}) {
    EXPECT_EQ(back.at(name).shape, want.shape) << name;
    ASSERT_EQ(back.at(name).values.size(), want.values.size()) << name;
    EXPECT_EQ(std::memcmp(back.at(name).values.data(), want.values.data(), want.values.size() * 8), 0) << name;
  }
  // The file is what the specification says: "F64", the shape, 8 bytes per value, little-endian.
  const std::string bytes = contents("stats.safetensors");
  EXPECT_NE(bytes.find(R"("m":{"data_offsets":[0,32],"dtype":"F64","shape":[2,2]})"), std::string::npos) << bytes;
  EXPECT_EQ(bytes.size() % 8, 0u);
  double last = 0;
  std::memcpy(&last, bytes.data() + bytes.size() - 8, 8);
  EXPECT_EQ(last, 5e-324);  // "v" is the last in name order
  // Only the named arrays are read; a missing one, an F32 tensor and an F64 array read as F32 are refused.
  EXPECT_EQ(load_safetensors_f64(path("stats.safetensors"), {"v"}).size(), 1u);
  try {
    load_safetensors_f64(path("stats.safetensors"), {"w"});
    ADD_FAILURE() << "a missing array was read";
  } catch (const std::runtime_error& e) {
    testing::expect_one_line_error(e.what(), path("stats.safetensors"), "missing tensor \"w\"");
  }
  expect_rejected(path("stats.safetensors"), "unsupported dtype F64");
  save_safetensors(path("f32.safetensors"), {{"v", counting(Shape{3}, 0.0f)}});
  try {
    load_safetensors_f64(path("f32.safetensors"), {"v"});
    ADD_FAILURE() << "an F32 tensor was read as F64";
  } catch (const std::runtime_error& e) {
    testing::expect_one_line_error(e.what(), path("f32.safetensors"), "has dtype F32, expected F64");
  }
  // A truncated file is refused by the shared layout checks before anything is allocated.
  const std::string p = write_bytes("cut.safetensors", bytes.substr(0, bytes.size() - 8));
  EXPECT_THROW(load_safetensors_f64(p, {"v"}), std::runtime_error);
  EXPECT_THROW(save_safetensors_f64(path("bad"), {{"x", F64Array{{2, 2}, {1, 2, 3}}}}), std::runtime_error);
}

}  // namespace
}  // namespace gancu
