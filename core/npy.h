// NumPy .npy files (format 1.0 and 2.0, little-endian, C order): float32 tensors and uint8 arrays, so any tensor can
// be dumped and compared with NumPy or PyTorch. Errors throw std::runtime_error with a one-line message naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace gancu {

void write_npy(const std::string& path, const Tensor& t);                 // '<f4', written atomically
Tensor read_npy(const std::string& path);                                  // '<f4' only, rank ≤ 4
void write_npy_u8(const std::string& path, const std::vector<int64_t>& shape, const uint8_t* data);
std::vector<uint8_t> read_npy_u8(const std::string& path, std::vector<int64_t>* shape);  // '|u1'
// Integers of any shape, flattened: '<i8' (NumPy's default int), '<i4', or '<f4' holding whole numbers (class labels).
std::vector<int64_t> read_npy_integers(const std::string& path);

}  // namespace gancu
