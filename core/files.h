// Whole-file reads and atomic writes. Every file gancu writes (checkpoints, .npy, PNG, reports) goes through
// write_file_atomic, so a crash or a full disk never leaves a half-written file in place of a good one.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace gancu {

// Reads the whole file; throws std::runtime_error("<path>: <reason>") if it cannot.
std::vector<char> read_file(const std::string& path);
// Writes to "<path>.tmp.<pid>", fsyncs it, renames it over path and fsyncs the directory.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace gancu
