// The safetensors reader is as strict as the reference implementation (huggingface/safetensors): one hand-built
// hostile file per rule, each refused with a one-line error naming the file, and the valid corner cases accepted.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>

#include "tests/safetensors_bytes.h"
#include "tests/temp_dir.h"
#include "tools/gan/sample.h"
#include "tools/io/safetensors.h"

namespace gancu {
namespace {

using testing::expect_one_line_error;
using testing::expect_rejected;
using testing::floats;
using testing::le64;
using testing::safetensors_bytes;

class SafetensorsStrictTest : public testing::TempDirTest {
 protected:
  // A file with `header` (padded) and `data_bytes` zero bytes of data; returns its path.
  std::string file(const std::string& name, const std::string& header, size_t data_bytes) const {
    return write_bytes(name, safetensors_bytes(header, std::string(data_bytes, '\0')));
  }
  void reject(const std::string& name, const std::string& header, size_t data_bytes, const std::string& fragment) const {
    SCOPED_TRACE(name);
    expect_rejected(file(name, header, data_bytes), fragment);
  }
};

TEST_F(SafetensorsStrictTest, HeaderOver100MBIsRefusedBeforeItIsRead) {
  // Tiny files claiming huge headers: the limit is checked first, so nothing of that size is ever allocated.
  expect_rejected(write_bytes("over", le64(100'000'001) + "{}      "), "exceeds the limit of 100000000 bytes");
  expect_rejected(write_bytes("max", le64(UINT64_MAX) + "{}      "), "exceeds the limit");
  // At the limit the length is legal; this one then runs past the end of the file.
  expect_rejected(write_bytes("at", le64(100'000'000) + "{}      "), "runs past the end");
}

TEST_F(SafetensorsStrictTest, FileLengthIsExactlyPrefixPlusHeaderPlusData) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(load_safetensors(file("exact", header, 8)).at("a").numel(), 2);
  reject("trailing", header, 9, "1 bytes after the last tensor belong to no tensor");
  reject("truncated", header, 7, "run past the 7-byte data section");
  reject("empty_with_data", "{}", 4, "4 bytes after the last tensor");
  const std::string whole = safetensors_bytes(header, std::string(8, '\0'));
  expect_rejected(write_bytes("cut_in_header", whole.substr(0, 30)), "runs past the end");
  expect_rejected(write_bytes("cut_in_prefix", whole.substr(0, 7)), "too short");
}

TEST_F(SafetensorsStrictTest, OffsetsTileTheDataFromZeroWithoutGapsOrOverlaps) {
  const auto two = [](const std::string& a, const std::string& b) {
    return R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + a + R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":)" +
           b + "}}";
  };
  reject("not_from_zero", two("[4,12]", "[12,20]"), 20, "a gap of 4 bytes before tensor \"a\"");
  reject("gap", two("[0,8]", "[12,20]"), 20, "a gap of 4 bytes before tensor \"b\"");
  reject("overlap", two("[0,8]", "[4,12]"), 12, "tensor \"b\" overlaps");
  reject("same_bytes", two("[0,8]", "[0,8]"), 8, "overlaps");
  reject("zero_size_inside", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
         8, "tensor \"z\" overlaps");
  reject("zero_size_past_end", R"({"z":{"dtype":"F32","shape":[0],"data_offsets":[12,12]}})", 8, "run past");
  reject("reversed", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8, "end before they begin");
  reject("three_offsets", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", 8, "two non-negative");
  reject("negative_offset", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8, "two non-negative");
  reject("float_offset", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", 8, "two non-negative");
  // Key order and data order are independent.
  EXPECT_EQ(load_safetensors(file("any_order", two("[8,16]", "[0,8]"), 16)).size(), 2u);
}

TEST_F(SafetensorsStrictTest, ByteSizeIsDtypeSizeTimesElementsWithOverflowChecks) {
  reject("f32_short", R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20, "needs 24");
  reject("f16_size", R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8, "F16 needs 4");
  reject("f64_size", R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", 8, "F64 needs 16");
  // 2^32 · 2^32 elements: the product overflows; with U8 it would wrap to exactly 0 bytes.
  reject("overflow", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0,
         "overflows 64 bits");
  reject("wraps_to_zero", R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0,
         "overflows 64 bits");
  reject("dtype_overflow", R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0,
         "overflows 64 bits");
  reject("dim_over_int64", R"({"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}})", 0,
         "above 2^63 - 1");
  reject("dim_over_uint64", R"({"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}})", 0,
         "non-integer or negative");
  reject("negative_dim", R"({"a":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}})", 16, "negative");
  reject("fractional_dim", R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}})", 10, "non-integer");
  reject("float_dim", R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8, "non-integer");
  reject("string_dim", R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", 8, "non-integer");
  reject("shape_not_list", R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8, "not a list");
  // A zero dimension makes the tensor empty however large the others are, but gancu's int64 element count must not
  // overflow on the way there.
  const auto empty = load_safetensors(
      file("zero_huge", R"({"a":{"dtype":"F32","shape":[0,9223372036854775807],"data_offsets":[0,0]}})", 0));
  EXPECT_EQ(empty.at("a").numel(), 0);
  reject("partial_overflow", R"({"a":{"dtype":"F32","shape":[9223372036854775807,2,0],"data_offsets":[0,0]}})", 0,
         "too large for gancu");
}

TEST_F(SafetensorsStrictTest, DuplicateKeysAreRefused) {
  const std::string a0 = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  const std::string a1 = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})";
  // Without the check the JSON parser would keep the second "a" and the offsets would even tile: [4,8] then... no,
  // a gap; so also a pair whose survivor tiles perfectly.
  reject("two_tensors", "{" + a0 + "," + a1 + "}", 8, "duplicate tensor name \"a\"");
  reject("shadowed", "{" + a1 + "," + a0 + "}", 4, "duplicate tensor name \"a\"");
  reject("two_metadata", R"({"__metadata__":{"x":"1"},"__metadata__":{"x":"2"}})", 0,
         "duplicate tensor name \"__metadata__\"");
  reject("metadata_key", R"({"__metadata__":{"x":"1","x":"2"}})", 0, "duplicate key \"x\"");
  reject("entry_field", R"({"a":{"dtype":"F16","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4,
         "duplicate key \"dtype\"");
  // The same key in different objects is fine.
  EXPECT_EQ(load_safetensors(file("distinct", R"({"__metadata__":{"a":"x"},)" + a0 + "}", 4)).size(), 1u);
}

TEST_F(SafetensorsStrictTest, HeaderIsAUtf8JsonObject) {
  const std::string tail = R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  reject("invalid_byte", "{\"\xff" + tail, 4, "not valid UTF-8 (at byte 10)");
  reject("overlong", "{\"\xc0\xaf" + tail, 4, "not valid UTF-8");
  reject("surrogate", "{\"\xed\xa0\x80" + tail, 4, "not valid UTF-8");
  reject("above_max", "{\"\xf4\x90\x80\x80" + tail, 4, "not valid UTF-8");
  reject("cut_sequence", "{\"\xe2\x82" + tail, 4, "not valid UTF-8");
  reject("escaped_lone_surrogate", "{\"\\ud800" + tail, 4, "invalid JSON");
  EXPECT_TRUE(load_safetensors(file("utf8_name", "{\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80" + tail, 4))
                  .contains("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80"));

  reject("array", "[]", 0, "not a safetensors file");
  reject("leading_space", " {}", 0, "not a safetensors file");
  reject("string", "\"{}\"", 0, "not a safetensors file");
  reject("unterminated", R"({"a":{"dtype":"F32")", 0, "invalid JSON");
  reject("two_values", "{} {}", 0, "invalid JSON");
  // nlohmann::json alone would stop at the NUL and accept the file, ignoring what follows.
  reject("nul_padding", std::string("{}") + '\0', 0, "NUL byte (at byte 10)");
  reject("nul_then_more", std::string("{}") + '\0' + R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4,
         "NUL byte");
  reject("nul_in_name", std::string("{\"a") + '\0' + R"(b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4,
         "NUL byte");
  reject("deep", R"({"a":{"x":)" + std::string(130, '[') + std::string(130, ']') + "}}", 0, "nests JSON deeper");
  reject("entry_not_object", R"({"a":[1]})", 0, "tensor \"a\" is not a JSON object");
  reject("no_offsets", R"({"a":{"dtype":"F32","shape":[1]}})", 4, "has no \"data_offsets\"");
  // A name that would break the line is escaped in the message.
  reject("newline_name", R"({"a\nb":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4, R"("a\nb")");
}

TEST_F(SafetensorsStrictTest, MetadataIsAStringToStringMap) {
  reject("meta_string", R"({"__metadata__":"x"})", 0, "__metadata__ is not a JSON object");
  reject("meta_null", R"({"__metadata__":null})", 0, "__metadata__ is not a JSON object");
  reject("meta_array", R"({"__metadata__":["x"]})", 0, "__metadata__ is not a JSON object");
  reject("meta_number", R"({"__metadata__":{"step":3}})", 0, "value for \"step\" is not a string");
  reject("meta_nested", R"({"__metadata__":{"cfg":{"a":"b"}}})", 0, "value for \"cfg\" is not a string");
  std::map<std::string, std::string> meta;
  EXPECT_TRUE(load_safetensors(file("meta_empty", R"({"__metadata__":{}})", 0), &meta).empty());
  EXPECT_TRUE(meta.empty());
}

TEST_F(SafetensorsStrictTest, UnknownDtypesAreRefusedKnownOthersUnsupported) {
  reject("unknown", R"({"a":{"dtype":"F24","shape":[1],"data_offsets":[0,3]}})", 3, "unknown dtype \"F24\"");
  reject("lower_case", R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4, "unknown dtype \"f32\"");
  reject("not_string", R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4, "dtype is not a string");
  reject("bf16", R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4, "unsupported dtype BF16");
  reject("i64", R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8, "unsupported dtype I64");
}

TEST_F(SafetensorsStrictTest, ExpectedShapesAndDtypesAreCheckedBeforeData) {
  const std::string p = write_bytes(
      "w", safetensors_bytes(R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},)"
                             R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
                             floats({0, 1, 2, 3, 4, 5}) + std::string(4, '\0')));
  const auto expect_refused = [&](const std::map<std::string, Shape>& expected, const std::string& fragment) {
    try {
      load_safetensors(p, expected);
      ADD_FAILURE() << "accepted";
    } catch (const std::runtime_error& e) {
      expect_one_line_error(e.what(), p, fragment);
    }
  };
  expect_refused({{"w", Shape{3, 2}}}, "tensor \"w\" has shape [2, 3], expected [3, 2]");
  expect_refused({{"w", Shape{6}}}, "has shape [2, 3], expected [6]");
  expect_refused({{"w", Shape{2, 3, 1}}}, "expected [2, 3, 1]");
  expect_refused({{"h", Shape{2}}}, "tensor \"h\" has dtype F16, expected F32");
  expect_refused({{"v", Shape{2}}}, "missing tensor \"v\"");
  // Only what is asked for is read; the F16 tensor that a full load refuses is validated but skipped.
  EXPECT_TRUE(load_safetensors_metadata(p).empty());
  const auto loaded = load_safetensors(p, {{"w", Shape{2, 3}}});
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded.at("w")[5], 5.0f);
  expect_rejected(p, "unsupported dtype F16");
}

// A 4 GiB tensor in a sparse file: under an address-space limit of 1 GiB more than the process uses, reading it
// fails to allocate, while a wrong expected shape is refused without trying.
TEST_F(SafetensorsStrictTest, ShapeMismatchIsRefusedWithoutAllocating) {
  const uint64_t bytes = uint64_t{1} << 32;
  const std::string p = write_bytes("big", safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1073741824],)"
                                                             R"("data_offsets":[0,4294967296]}})",
                                                             ""));
  std::filesystem::resize_file(p, std::filesystem::file_size(p) + bytes);
  const auto run_limited = [&](bool with_expectation) {
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (rlim_t{1} << 30);
    const rlimit rl{limit, limit};
    if (setrlimit(RLIMIT_AS, &rl) != 0) std::_Exit(4);
    try {
      if (with_expectation)
        load_safetensors(p, {{"w", Shape{1024, 1024}}});
      else
        load_safetensors(p);
      std::_Exit(1);
    } catch (const std::bad_alloc&) {
      std::_Exit(3);
    } catch (const std::runtime_error& e) {
      std::_Exit(std::string(e.what()).find("expected [1024, 1024]") != std::string::npos ? 0 : 2);
    }
  };
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: no inherited threads or allocations
  EXPECT_EXIT(run_limited(true), ::testing::ExitedWithCode(0), "");
  // The control: the same limit does stop a full load of that tensor, so the check above can fail. Not under
  // AddressSanitizer, whose allocator aborts the process on a failed allocation instead of throwing std::bad_alloc
  // (the plain build, which CI also runs, keeps the control).
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_EXIT(run_limited(false), ::testing::ExitedWithCode(3), "");
#endif
  GTEST_FLAG_SET(death_test_style, style);
}

TEST_F(SafetensorsStrictTest, MetadataOnlyReadValidatesTheWholeFile) {
  const std::string meta = R"("__metadata__":{"step":"3"})";
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  EXPECT_EQ(load_safetensors_metadata(file("ok", "{" + meta + "," + a + "}", 8)).at("step"), "3");
  const auto refuse = [&](const std::string& name, const std::string& header, size_t data, const std::string& fragment) {
    const std::string p = file(name, header, data);
    try {
      load_safetensors_metadata(p);
      ADD_FAILURE() << name << " accepted";
    } catch (const std::runtime_error& e) {
      expect_one_line_error(e.what(), p, fragment);
    }
  };
  refuse("tail", "{" + meta + "," + a + "}", 12, "4 bytes after the last tensor");
  refuse("dup", "{" + meta + "," + a + "," + a + "}", 8, "duplicate tensor name \"a\"");
  refuse("size", "{" + meta + R"(,"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})", 8, "needs 16");
  refuse("meta", R"({"__metadata__":{"step":3}})", 0, "not a string");
}

TEST_F(SafetensorsStrictTest, ValidCornerCasesAreAccepted) {
  // Zero-size tensors first, between, last, and sharing offsets with their neighbours; a 0-d tensor; extra fields
  // in an entry (the reference ignores them); no metadata.
  const std::string p = write_bytes(
      "corners", safetensors_bytes(R"({"z0":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                                   R"("a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},)"
                                   R"("z1":{"dtype":"F32","shape":[3,0,2],"data_offsets":[8,8]},)"
                                   R"("s":{"dtype":"F32","shape":[],"data_offsets":[8,12],"extra":[1,{"k":2}]},)"
                                   R"("z2":{"dtype":"F32","shape":[0,0,0,0],"data_offsets":[12,12]}})",
                                   floats({1.5f, -2.0f, 7.0f})));
  std::map<std::string, std::string> meta{{"stale", "x"}};
  const auto t = load_safetensors(p, &meta);
  EXPECT_TRUE(meta.empty());
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(t.at("a").shape(), (Shape{1, 2}));
  EXPECT_EQ(t.at("a")[1], -2.0f);
  EXPECT_EQ(t.at("s")[0], 7.0f);
  EXPECT_EQ(t.at("z1").shape(), (Shape{3, 0, 2}));
  EXPECT_EQ(t.at("z2").numel(), 0);
  // An empty file of tensors.
  EXPECT_TRUE(load_safetensors(write_bytes("none", safetensors_bytes("{}", ""))).empty());
  // The layout Python's safetensors writes: metadata first, compact JSON, space padding, F32 data.
  const std::string py = R"({"__metadata__":{"format":"pt"},"bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("weight":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]}})";
  const auto from_python = load_safetensors(write_bytes("py", safetensors_bytes(py, floats({1, 2, 3, 4}))), &meta);
  EXPECT_EQ(meta.at("format"), "pt");
  EXPECT_EQ(from_python.at("weight")[1], 4.0f);
}

TEST_F(SafetensorsStrictTest, WriterOutputRoundTripsThroughTheStrictReader) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (int i = 0; i < 6; ++i) {
    Tensor t(i % 3 == 0 ? Shape{0, 3} : Shape{i, 2, 1, 3});
    for (int64_t k = 0; k < t.numel(); ++k) t[k] = 0.25f * static_cast<float>(k + 7 * i);
    tensors.emplace_back("layer" + std::to_string(i) + ".weight", std::move(t));
  }
  save_safetensors(path("ckpt"), tensors, {{"config", "{\"a\": \"\\u00e9\\n\"}"}, {"step", "12"}});
  std::map<std::string, std::string> meta;
  const auto back = load_safetensors(path("ckpt"), &meta);
  EXPECT_EQ(meta.at("config"), "{\"a\": \"\\u00e9\\n\"}");
  ASSERT_EQ(back.size(), tensors.size());
  std::map<std::string, Shape> expected;
  for (const auto& [name, t] : tensors) {
    ASSERT_EQ(back.at(name).shape(), t.shape()) << name;
    for (int64_t k = 0; k < t.numel(); ++k) ASSERT_EQ(back.at(name)[k], t[k]) << name;
    expected.emplace(name, t.shape());
  }
  EXPECT_EQ(load_safetensors(path("ckpt"), expected).size(), tensors.size());
  EXPECT_EQ(load_safetensors_metadata(path("ckpt")), meta);
}

// `gan sample --checkpoint <hostile file>`: the loader's refusal reaches the user as the subcommand's error.
const std::string kDuplicateHeader = R"({"__metadata__":{"format":"pytorch-state-dict","network":"G"},)"
                                     R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                     R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";

TEST_F(SafetensorsStrictTest, SampleRefusesAHostileCheckpoint) {
  const std::string p = write_bytes("hostile.safetensors", safetensors_bytes(kDuplicateHeader, floats({1})));
  app::SampleOptions o;
  o.checkpoint = p;
  o.out = path("samples.png");
  try {
    app::run_sample(o);
    ADD_FAILURE() << "sampled from a hostile file";
  } catch (const std::runtime_error& e) {
    expect_one_line_error(e.what(), p, "duplicate tensor name \"w\"");
  }
  EXPECT_FALSE(std::filesystem::exists(o.out));
}

TEST_F(SafetensorsStrictTest, GanSampleExitsNonZeroWithOneLine) {
  const std::string gan = std::string(GANCU_BINARY_DIR) + "/gan";
  if (!std::filesystem::exists(gan)) GTEST_SKIP() << gan << " is not built (cmake --build build --target gan)";
  const std::string p = write_bytes("hostile.safetensors", safetensors_bytes(kDuplicateHeader, floats({1})));
  const std::string command = "'" + gan + "' sample --checkpoint '" + p + "' --out '" + path("s.png") + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_NE(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(output, "gan: error: " + p + ": duplicate tensor name \"w\" in the header\n");
  EXPECT_FALSE(std::filesystem::exists(path("s.png")));
}

}  // namespace
}  // namespace gancu
