// Hand-built safetensors files for the reader's tests: raw bytes straight from the format specification, so a
// hostile file is exactly what the test says it is.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "tools/io/safetensors.h"

namespace gancu::testing {

inline std::string le64(uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

inline std::string floats(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), sizeof v);
  return out;
}

// Length prefix, JSON header padded with spaces to a multiple of 8, data.
inline std::string safetensors_bytes(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

// The error is one line that starts with the path and contains `fragment`.
inline void expect_one_line_error(const std::string& msg, const std::string& path, const std::string& fragment) {
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

inline void expect_rejected(const std::string& path, const std::string& fragment) {
  try {
    load_safetensors(path);
    ADD_FAILURE() << path << " was accepted";
  } catch (const std::runtime_error& e) {
    expect_one_line_error(e.what(), path, fragment);
  }
}

}  // namespace gancu::testing
