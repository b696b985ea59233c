// Data-set files written by the tests (IDX headers, gzip) and the check of the readers' one-line errors.
#pragma once
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace gancu::testing {

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// An IDX3 file of `count` images h×w; pixel k of the file is (k * 7 + 3) mod 256.
inline std::string idx_bytes(uint32_t count, uint32_t h, uint32_t w, uint32_t magic = 0x803) {
  std::string out = be32(magic) + be32(count) + be32(h) + be32(w);
  for (uint32_t k = 0; k < count * h * w; ++k) out += static_cast<char>((k * 7 + 3) % 256);
  return out;
}

inline void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// Expects `load` to throw a one-line runtime_error that starts with `file` and mentions `fragment`.
template <class F> void expect_error(F load, const std::string& file, const std::string& fragment) {
  try {
    load();
    ADD_FAILURE() << "no error for " << file;
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(file + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

}  // namespace gancu::testing
