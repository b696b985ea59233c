#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/npy.h"
#include "tests/temp_dir.h"

namespace gancu {
namespace {

namespace fs = std::filesystem;

// A fresh folder per test, removed afterwards.
class NpyTest : public testing::TempDirTest {};

// Exactly what numpy 1.24.2 writes for
//   np.save(f, (np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1))
// (generated once with /usr/bin/python3; the test itself needs no Python).
const std::string kNumpyF32 =
    std::string("\x93NUMPY\x01\x00v\x00", 10) +
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + std::string(58, ' ') + "\n" +
    std::string("\x00\x00\x80\xbf\x00\x00\x00\xbf\x00\x00\x00\x00\x00\x00\x00\x3f\x00\x00\x80\x3f\x00\x00\xc0\x3f", 24);

// numpy.lib.format.write_array(f, np.array([[1, 2], [3, 255]], dtype=np.uint8), version=(2, 0)), same provenance.
const std::string kNumpyU8V2 = std::string("\x93NUMPY\x02\x00t\x00\x00\x00", 12) +
                               "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }" + std::string(56, ' ') +
                               "\n" + std::string("\x01\x02\x03\xff", 4);

// Builds a v1.0 file around an arbitrary header dict (no padding rules), for the malformed cases.
std::string npy_v1(const std::string& dict, const std::string& payload) {
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict + payload;
}

void expect_rejected(const std::string& path, const std::string& fragment, bool as_u8 = false) {
  try {
    if (as_u8) {
      std::vector<int64_t> shape;
      read_npy_u8(path, &shape);
    } else {
      read_npy(path);
    }
    ADD_FAILURE() << path << " was accepted";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
  }
}

TEST_F(NpyTest, Float32RoundTripEveryRank) {
  const std::vector<Shape> shapes = {Shape{}, Shape{5}, Shape{2, 3}, Shape{2, 1, 3}, Shape{2, 3, 4, 5}, Shape{0, 3}};
  int k = 0;
  for (const Shape& shape : shapes) {
    // Built by appending: GCC 12 at -O3 warns falsely (-Wrestrict) on "literal" + std::to_string(...).
    std::string name = std::to_string(k++);
    name += ".npy";
    Tensor t(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = 0.25f * static_cast<float>(i) - 3.0f;
    const std::string p = path(name);
    write_npy(p, t);
    const Tensor back = read_npy(p);
    ASSERT_EQ(back.shape(), shape) << shape.str();
    for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(back[i], t[i]);
    // numpy aligns the data to 64 bytes; so do we.
    EXPECT_EQ((read_file(p).size() - static_cast<size_t>(t.numel()) * 4) % 64, 0u);
  }
}

TEST_F(NpyTest, Uint8RoundTrip) {
  const std::vector<uint8_t> data = {0, 1, 127, 128, 254, 255};
  const std::string p = path("u8.npy");
  write_npy_u8(p, {1, 2, 3}, data.data());
  std::vector<int64_t> shape;
  EXPECT_EQ(read_npy_u8(p, &shape), data);
  EXPECT_EQ(shape, (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(NpyTest, ReadsWhatNumpyWrites) {
  const Tensor t = read_npy(write_bytes("numpy.npy", kNumpyF32));
  ASSERT_EQ(t.shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t[i], 0.5f * i - 1.0f);
}

TEST_F(NpyTest, WritesExactlyWhatNumpyWrites) {
  Tensor t(Shape{2, 3});
  for (int i = 0; i < 6; ++i) t[i] = 0.5f * i - 1.0f;
  write_npy(path("ours.npy"), t);
  const std::vector<char> ours = read_file(path("ours.npy"));
  EXPECT_EQ(std::string(ours.begin(), ours.end()), kNumpyF32);
}

TEST_F(NpyTest, ReadsVersion2) {
  std::vector<int64_t> shape;
  const std::vector<uint8_t> data = read_npy_u8(write_bytes("v2.npy", kNumpyU8V2), &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(data, (std::vector<uint8_t>{1, 2, 3, 255}));
}

TEST_F(NpyTest, RejectsBadMagic) {
  std::string bytes = kNumpyF32;
  bytes[1] = 'X';
  expect_rejected(write_bytes("magic.npy", bytes), "bad magic");
  expect_rejected(write_bytes("tiny.npy", "\x93NU"), "bad magic");
}

TEST_F(NpyTest, RejectsUnsupportedVersion) {
  std::string bytes = kNumpyF32;
  bytes[6] = '\x03';
  expect_rejected(write_bytes("v3.npy", bytes), "unsupported .npy version 3.0");
}

TEST_F(NpyTest, RejectsOtherDtypes) {
  const std::string payload(24, '\0');
  expect_rejected(write_bytes("be.npy", npy_v1("{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }\n", payload)),
                  "big-endian");
  expect_rejected(write_bytes("f8.npy", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", payload)),
                  "unsupported dtype '<f8'");
  // A float32 file is not a uint8 file.
  expect_rejected(write_bytes("f4.npy", kNumpyF32), "unsupported dtype '<f4'", /*as_u8=*/true);
}

// Class labels as NumPy writes them by default (int64), as int32, or as float32 whole numbers.
TEST_F(NpyTest, IntegersFromInt64Int32AndWholeFloat32) {
  std::string i8, i4, f4;
  const int64_t values[3] = {7, -2, 1LL << 40};
  for (int64_t v : values) i8.append(reinterpret_cast<const char*>(&v), 8);
  for (int64_t v : {int64_t(7), int64_t(-2), int64_t(9)}) {
    const int32_t w = int32_t(v);
    i4.append(reinterpret_cast<const char*>(&w), 4);
    const float f = float(v);
    f4.append(reinterpret_cast<const char*>(&f), 4);
  }
  const auto dict = [](const char* descr) { return std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (3,), }\n"; };
  EXPECT_EQ(read_npy_integers(write_bytes("i8.npy", npy_v1(dict("<i8"), i8))), (std::vector<int64_t>{7, -2, 1LL << 40}));
  EXPECT_EQ(read_npy_integers(write_bytes("i4.npy", npy_v1(dict("<i4"), i4))), (std::vector<int64_t>{7, -2, 9}));
  EXPECT_EQ(read_npy_integers(write_bytes("f4.npy", npy_v1(dict("<f4"), f4))), (std::vector<int64_t>{7, -2, 9}));
  const float half = 2.5f;
  std::string bad = f4.substr(0, 8);
  bad.append(reinterpret_cast<const char*>(&half), 4);
  const std::string file = write_bytes("half.npy", npy_v1(dict("<f4"), bad));
  try {
    read_npy_integers(file);
    ADD_FAILURE() << "2.5 read as an integer";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a whole number"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_npy_integers(write_bytes("short.npy", npy_v1(dict("<i8"), i8.substr(0, 20)))), std::runtime_error);
  EXPECT_THROW(read_npy_integers(write_bytes("f8.npy", npy_v1(dict("<f8"), i8))), std::runtime_error);
}

TEST_F(NpyTest, RejectsFortranOrder) {
  expect_rejected(
      write_bytes("f.npy", npy_v1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", std::string(24, '\0'))),
      "fortran_order");
}

TEST_F(NpyTest, RejectsTruncatedData) {
  expect_rejected(write_bytes("short.npy", kNumpyF32.substr(0, kNumpyF32.size() - 3)), "truncated data");
  expect_rejected(write_bytes("header.npy", kNumpyF32.substr(0, 40)), "truncated .npy header");
}

TEST_F(NpyTest, RejectsMalformedHeaders) {
  const std::string payload(24, '\0');
  expect_rejected(write_bytes("a.npy", npy_v1("'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n", payload)),
                  "malformed");
  expect_rejected(write_bytes("b.npy", npy_v1("{'descr': '<f4', 'shape': (6,), }\n", payload)), "malformed");
  expect_rejected(write_bytes("c.npy", npy_v1("{'descr': '<f4', 'fortran_order': Nope, 'shape': (6,), }\n", payload)),
                  "malformed");
  expect_rejected(write_bytes("d.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }\n", payload)),
                  "malformed");
  expect_rejected(write_bytes("e.npy", npy_v1("{'descr': '<f4, 'fortran_order': False, 'shape': (6,), }\n", payload)),
                  "malformed");
}

TEST_F(NpyTest, RejectsRankAboveFour) {
  expect_rejected(
      write_bytes("r5.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 2, 3), }\n",
                                   std::string(24, '\0'))),
      "rank 5");
}

TEST_F(NpyTest, MissingFileNamesThePath) { expect_rejected(path("absent.npy"), "cannot open"); }

}  // namespace
}  // namespace gancu
