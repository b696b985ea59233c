// A fresh, empty temporary folder per test, removed afterwards: for tests that write files.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/files.h"

namespace gancu::testing {

// <tmp>/gancu_<name>_<pid>, emptied if it exists.
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("gancu_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fresh_temp_dir(std::string(info->test_suite_name()) + "_" + info->name());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // Writes `bytes` to a file in the folder and returns its path.
  std::string write_bytes(const std::string& name, const std::string& bytes) const {
    write_file_atomic(path(name), bytes);
    return path(name);
  }

  std::filesystem::path dir_;
};

}  // namespace gancu::testing
