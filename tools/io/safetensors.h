// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
// "__metadata__": {"key": "value"}} padded with spaces to 8-byte alignment, then the raw little-endian tensor bytes.
// Files written here load with safetensors.torch.load_file; only F32 tensors of rank ≤ 4 are read back.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace gancu {

// Names must be unique, non-empty and not "__metadata__". Written atomically: on any failure the previous file at
// `path` is left untouched.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Validates the whole file (header bounds, JSON, dtypes, shapes, offsets that tile the data exactly) and throws
// std::runtime_error("<path>: <problem>") otherwise. `metadata`, when given, receives "__metadata__" (or nothing).
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);

}  // namespace gancu
