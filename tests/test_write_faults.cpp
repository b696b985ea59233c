// core/files under injected write faults (set_write_fault, the seam GANCU_FAULT_WRITE drives in a `gan` process): a
// failed atomic write leaves the old file and no temporary, whatever was being written (raw bytes, a checkpoint, a
// .npy, a PNG); an AppendFile never keeps half an append; and require_finite refuses loaded weights that hold NaN or
// Inf. tests/crash_safety.py does the same through the real `gan train`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/npy.h"
#include "tests/safetensors_bytes.h"
#include "tests/temp_dir.h"
#include "tests/testing.h"
#include "tools/io/png.h"
#include "tools/io/safetensors.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;
using testing::expect_one_line_error;

using testing::error_of;

class WriteFaultTest : public testing::TempDirTest {
 protected:
  void TearDown() override {
    set_write_fault("");
    TempDirTest::TearDown();
  }
  std::string contents(const std::string& name) const {
    const std::vector<char> bytes = read_file(path(name));
    return {bytes.begin(), bytes.end()};
  }
  // The names in the folder: a temporary left behind shows up here.
  std::vector<std::string> names() const {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(dir_)) found.push_back(e.path().filename().string());
    std::sort(found.begin(), found.end());
    return found;
  }
};

TEST_F(WriteFaultTest, AFailedWriteKeepsTheOldFileAndLeavesNoTemporary) {
  for (const auto& [spec, errno_text] : std::vector<std::pair<std::string, std::string>>{
           {"ENOSPC@10", "No space left on device"}, {"EIO@10", "Input/output error"}}) {
    SCOPED_TRACE(spec);
    write_bytes("f", "old contents");
    set_write_fault(spec);
    // 10 of the 100 bytes go to the temporary, then the write fails.
    EXPECT_EQ(error_of([&] { write_file_atomic(path("f"), std::string(100, 'x')); }),
              path("f") + ": write failed (" + errno_text + ")");
    EXPECT_EQ(contents("f"), "old contents");
    EXPECT_EQ(names(), std::vector<std::string>{"f"});
    // A full disk stays full: the next write fails at its first byte.
    EXPECT_EQ(error_of([&] { write_file_atomic(path("g"), "y"); }), path("g") + ": write failed (" + errno_text + ")");
    EXPECT_EQ(names(), std::vector<std::string>{"f"});
    set_write_fault("");
    write_file_atomic(path("f"), "new contents");
    EXPECT_EQ(contents("f"), "new contents");
  }
}

// The byte budget is shared by all the process's writes from the moment the fault is set; a file with nothing to
// write costs nothing.
TEST_F(WriteFaultTest, TheBudgetCountsEveryWrite) {
  set_write_fault("ENOSPC@10");
  write_file_atomic(path("a"), "123456");
  write_file_atomic(path("empty"), "");
  write_file_atomic(path("b"), "7890");  // exactly the last 4 bytes
  EXPECT_NE(error_of([&] { write_file_atomic(path("c"), "1"); }), "");
  EXPECT_EQ(contents("a") + contents("b"), "1234567890");
  EXPECT_EQ(names(), (std::vector<std::string>{"a", "b", "empty"}));
}

// ":<name>" limits the fault to files whose own name contains it; the folders they sit in do not count.
TEST_F(WriteFaultTest, AFaultNamingAFileSparesTheOthers) {
  fs::create_directories(dir_ / "checkpoint_dir");
  set_write_fault("EIO@0:checkpoint.safetensors");
  write_file_atomic(path("metrics.jsonl"), "{}\n");
  write_file_atomic(path("checkpoint_dir/generator.safetensors"), "g");
  EXPECT_EQ(error_of([&] { write_file_atomic(path("checkpoint.safetensors"), "c"); }),
            path("checkpoint.safetensors") + ": write failed (Input/output error)");
  EXPECT_EQ(names(), (std::vector<std::string>{"checkpoint_dir", "metrics.jsonl"}));
}

TEST_F(WriteFaultTest, AnAppendIsWrittenWholeOrCutOff) {
  write_bytes("log", "line 0\n");
  AppendFile log(path("log"));
  log.append("line 1\n");
  set_write_fault("ENOSPC@3:log");
  EXPECT_EQ(error_of([&] { log.append("line 2\n"); }), path("log") + ": write failed (No space left on device)");
  EXPECT_EQ(contents("log"), "line 0\nline 1\n");  // the 3 bytes that went through are cut off again
  set_write_fault("");
  log.append("line 3\n");
  EXPECT_EQ(contents("log"), "line 0\nline 1\nline 3\n");
  EXPECT_EQ(error_of([&] { AppendFile(path("no/such/folder/log")); }),
            path("no/such/folder/log") + ": cannot open for appending (No such file or directory)");
}

// Each writer on top of write_file_atomic keeps the last good file: checkpoints, .npy latents, PNG grids.
TEST_F(WriteFaultTest, CheckpointsNpyAndPngKeepTheLastGoodFile) {
  const Tensor good = Tensor::filled(Shape{4, 8}, 1.5f), newer = Tensor::filled(Shape{4, 8}, -2.0f);
  save_safetensors(path("c.safetensors"), {{"w", good}}, {{"step", "1"}});
  write_npy(path("z.npy"), good);
  const Image grid = make_grid(good.data(), 2, 1, 4, 4, 2);
  write_png(path("g.png"), grid);
  const std::string png_before = contents("g.png");

  set_write_fault("ENOSPC@100");
  expect_one_line_error(error_of([&] { save_safetensors(path("c.safetensors"), {{"w", newer}}, {{"step", "2"}}); }),
                        path("c.safetensors"), "write failed (No space left on device)");
  expect_one_line_error(error_of([&] { write_npy(path("z.npy"), newer); }), path("z.npy"),
                        "write failed (No space left on device)");
  expect_one_line_error(error_of([&] { write_png(path("g.png"), make_grid(newer.data(), 2, 1, 4, 4, 2)); }),
                        path("g.png"), "write failed (No space left on device)");
  set_write_fault("");

  std::map<std::string, std::string> meta;
  const auto back = load_safetensors(path("c.safetensors"), &meta);
  EXPECT_EQ(meta.at("step"), "1");
  EXPECT_EQ(std::memcmp(back.at("w").data(), good.data(), sizeof(float) * 32), 0);
  const Tensor z = read_npy(path("z.npy"));
  EXPECT_EQ(std::memcmp(z.data(), good.data(), sizeof(float) * 32), 0);
  EXPECT_EQ(contents("g.png"), png_before);
  EXPECT_EQ(names(), (std::vector<std::string>{"c.safetensors", "g.png", "z.npy"}));
}

TEST_F(WriteFaultTest, AWriteIntoAMissingFolderFailsCleanly) {
  EXPECT_EQ(error_of([&] { write_file_atomic(path("none/f"), "x"); }),
            path("none/f") + ": cannot create temporary file (No such file or directory)");
  EXPECT_TRUE(names().empty());
}

TEST_F(WriteFaultTest, MalformedSpecsAreRefused) {
  for (const char* spec : {"ENOSPC", "EPERM@1", "ENOSPC@", "ENOSPC@x", "ENOSPC@-1", "ENOSPC@5:", "@5", "enospc@5",
                           "ENOSPC@1234567890123456789"}) {
    SCOPED_TRACE(spec);
    try {
      set_write_fault(spec);
      ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).rfind(std::string(kWriteFaultEnv) + " \"" + spec + "\": ", 0), 0u) << e.what();
    }
  }
  write_file_atomic(path("f"), "no fault is set");
}

// NaN, +Inf and -Inf anywhere in a checkpoint's tensors are refused with the file, the tensor and the element; every
// finite value passes, the extremes and -0 included.
TEST_F(WriteFaultTest, RequireFiniteRefusesNanAndInfNamingTheFileAndTheTensor) {
  constexpr float kMax = std::numeric_limits<float>::max(), kTiny = std::numeric_limits<float>::denorm_min();
  Tensor finite(Shape{6});
  const float extremes[6] = {kMax, -kMax, kTiny, -kTiny, -0.0f, 1.0f};
  std::memcpy(finite.data(), extremes, sizeof extremes);
  for (const auto& [bad, word] : std::vector<std::pair<float, std::string>>{
           {std::numeric_limits<float>::quiet_NaN(), "NaN"},
           {-std::numeric_limits<float>::quiet_NaN(), "NaN"},
           {std::numeric_limits<float>::infinity(), "+Inf"},
           {-std::numeric_limits<float>::infinity(), "-Inf"}}) {
    SCOPED_TRACE(word);
    Tensor weights = Tensor::filled(Shape{2, 4}, 0.25f);
    weights[5] = bad;
    const std::string file = path("diverged.safetensors");
    save_safetensors(file, {{"G.main.0.weight", weights}, {"A.finite", finite}, {"Z.after", weights}});
    const auto loaded = load_safetensors(file);
    expect_one_line_error(error_of([&] { require_finite(loaded, file); }), file,
                          "tensor \"G.main.0.weight\" holds " + word + " at element 5 of 8");
  }
  save_safetensors(path("fine.safetensors"), {{"A.finite", finite}, {"empty", Tensor(Shape{0, 3})}});
  EXPECT_EQ(error_of([&] { require_finite(load_safetensors(path("fine.safetensors")), path("fine.safetensors")); }), "");
}

}  // namespace
}  // namespace gancu
