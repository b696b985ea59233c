// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
// "__metadata__": {"key": "value"}} padded with spaces to 8-byte alignment, then the raw little-endian tensor bytes.
// Files written here load with safetensors.torch.load_file; F32 tensors of rank ≤ 4 are read back as Tensors, and F64
// arrays of any rank through the *_f64 pair (statistics kept in double, e.g. tools/eval's FID reference stats).
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
// Reads a file as strictly as the reference implementation, and throws one-line std::runtime_error("<path>: <problem>")
// for: a header over 100 MB or running past the file; a header that is not a UTF-8 JSON object, repeats a key, or
// nests deeper than 128; an unknown dtype; a shape with a negative, fractional or over-large dimension or a byte size
// overflowing 64 bits; data_offsets not spanning exactly dtype size × element count; offsets that do not tile the data
// section from 0 to the end of the file (gaps, overlaps, trailing or missing bytes); "__metadata__" that is not a
// string→string map. All of that is checked before any tensor data is allocated. Every tensor must then be F32 of
// rank ≤ 4. `metadata`, when given, receives "__metadata__" (or nothing).
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);
// The same checks, then reads only the `expected` tensors, each of which must be present, F32 and of exactly that
// shape (refused before its data is allocated); other tensors in the file are validated but not read.
std::map<std::string, Tensor> load_safetensors(const std::string& path, const std::map<std::string, Shape>& expected,
                                               std::map<std::string, std::string>* metadata = nullptr);
// Refuses weights that hold NaN or ±Inf (a run that diverged, or a damaged file): throws one-line
// std::runtime_error("<path>: tensor \"<name>\" holds NaN at element <i> of <n>; ...") for the first such value, in name
// order. Call it on what load_safetensors returned wherever weights are loaded to be used.
void require_finite(const std::map<std::string, Tensor>& tensors, const std::string& path);
// The same checks of the whole file, reading no tensor data: "__metadata__", e.g. to learn a checkpoint's model
// configuration before loading its tensors with expected shapes.
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

// A float64 array, which Tensor (float32) cannot hold: row-major, values.size() == product of shape.
struct F64Array {
  std::vector<int64_t> shape;
  std::vector<double> values;
};
// As save_safetensors, with F64 arrays (each array's values must match its shape).
void save_safetensors_f64(const std::string& path, const std::vector<std::pair<std::string, F64Array>>& arrays,
                          const std::map<std::string, std::string>& metadata = {});
// The checks of load_safetensors on the whole file, then reads only the named tensors, each of which must be present
// and F64 (any shape); other tensors in the file are validated but not read.
std::map<std::string, F64Array> load_safetensors_f64(const std::string& path, const std::vector<std::string>& names,
                                                     std::map<std::string, std::string>* metadata = nullptr);

}  // namespace gancu
