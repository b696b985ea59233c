#include "tools/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "core/files.h"

namespace gancu {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so must the host be");

namespace {

using nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
// The reference implementation refuses headers above 100 MB; so do we, before allocating anything that large.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

// Every dtype the format defines, so a foreign-but-valid file gets "unsupported" rather than "unknown".
bool is_known_dtype(const std::string& dtype) {
  static const std::set<std::string> kKnown = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                                               "BF16", "I32", "U32", "F32",     "F64",     "I64", "U64"};
  return kKnown.contains(dtype);
}

struct Entry {
  std::string name;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& info) {
  const std::string where = "tensor '" + name + "'";
  if (!info.is_object()) fail(path, where + " is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!info.contains(key)) fail(path, where + " has no \"" + key + "\"");
  const json& dtype = info["dtype"];
  if (!dtype.is_string()) fail(path, where + ": dtype is not a string");
  const std::string dtype_name = dtype.get<std::string>();
  if (!is_known_dtype(dtype_name)) fail(path, where + ": unknown dtype '" + dtype_name + "'");
  if (dtype_name != "F32") fail(path, where + ": unsupported dtype " + dtype_name + " (gancu reads F32 only)");

  const json& shape = info["shape"];
  if (!shape.is_array()) fail(path, where + ": shape is not a list");
  if (shape.size() > Shape::kMaxRank)
    fail(path, where + ": rank " + std::to_string(shape.size()) + " exceeds the maximum of 4");
  std::vector<int64_t> dims;
  uint64_t numel = 1;
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) fail(path, where + ": shape " + shape.dump() + " has a non-integer or negative entry");
    const uint64_t v = d.get<uint64_t>();
    if (v != 0 && numel > (std::numeric_limits<uint64_t>::max() / 8) / v) fail(path, where + ": shape is too large");
    numel *= v;
    dims.push_back(static_cast<int64_t>(v));
  }

  const json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail(path, where + ": data_offsets must be two non-negative integers");
  Entry e{name, Shape(dims), offsets[0].get<uint64_t>(), offsets[1].get<uint64_t>()};
  if (e.end < e.begin) fail(path, where + ": data_offsets end before they begin");
  if (e.end - e.begin != numel * sizeof(float))
    fail(path, where + ": data_offsets span " + std::to_string(e.end - e.begin) + " bytes but shape " +
                   shape.dump() + " of F32 needs " + std::to_string(numel * sizeof(float)));
  return e;
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Data is laid out in name order, matching the JSON object's key order, so files are byte-for-byte reproducible.
  std::vector<const std::pair<std::string, Tensor>*> sorted;
  for (const auto& entry : tensors) {
    const auto& [name, tensor] = entry;
    if (name.empty() || name == kMetadataKey) fail(path, "invalid tensor name '" + name + "'");
    if (tensor.numel() > 0 && tensor.data() == nullptr) fail(path, "tensor '" + name + "' has no data");
    sorted.push_back(&entry);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->first == sorted[i - 1]->first) fail(path, "duplicate tensor name '" + sorted[i]->first + "'");

  json header = json::object();
  uint64_t offset = 0;
  for (const auto* entry : sorted) {
    const uint64_t bytes = static_cast<uint64_t>(entry->second.numel()) * sizeof(float);
    header[entry->first] = {{"dtype", "F32"}, {"shape", entry->second.shape().dims()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;

  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::string file;
  file.reserve(8 + header_text.size() + offset);
  for (int i = 0; i < 8; ++i) file += static_cast<char>((uint64_t{header_text.size()} >> (8 * i)) & 0xff);
  file += header_text;
  for (const auto* entry : sorted)
    file.append(reinterpret_cast<const char*>(entry->second.data()), entry->second.numel() * sizeof(float));
  write_file_atomic(path, file);
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  const std::vector<char> bytes = read_file(path);
  if (bytes.size() < 8) fail(path, "too short for a safetensors file (" + std::to_string(bytes.size()) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  if (header_len > bytes.size() - 8 || header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                   std::to_string(bytes.size()) + "-byte file (truncated, or not a safetensors file)");
  if (header_len < 2 || bytes[8] != '{') fail(path, "not a safetensors file (the header is not a JSON object)");

  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len));
  } catch (const json::parse_error& e) {
    fail(path, std::string("invalid JSON header (") + e.what() + ")");
  }
  if (!header.is_object()) fail(path, "the header is not a JSON object");

  std::map<std::string, std::string> meta;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      if (!info.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) fail(path, "__metadata__ value for '" + key + "' is not a string");
        meta[key] = value.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, name, info));
  }

  // The tensors must tile the data section exactly: no overlaps, no holes, nothing after the last one.
  const uint64_t data_size = bytes.size() - 8 - header_len;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected_begin = 0;
  for (const Entry& e : entries) {
    if (e.end > data_size)
      fail(path, "tensor '" + e.name + "' data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     "] run past the " + std::to_string(data_size) + "-byte data section (truncated file?)");
    if (e.begin < expected_begin) fail(path, "tensor '" + e.name + "' overlaps the previous tensor's data");
    if (e.begin > expected_begin)
      fail(path, "a gap of " + std::to_string(e.begin - expected_begin) + " bytes before tensor '" + e.name + "'");
    expected_begin = e.end;
  }
  if (expected_begin != data_size)
    fail(path, std::to_string(data_size - expected_begin) + " bytes after the last tensor belong to no tensor");

  std::map<std::string, Tensor> tensors;
  const char* data = bytes.data() + 8 + header_len;
  for (const Entry& e : entries) {
    Tensor t(e.shape);
    if (e.end > e.begin) std::memcpy(t.data(), data + e.begin, e.end - e.begin);
    tensors.emplace(e.name, std::move(t));
  }
  if (metadata) *metadata = std::move(meta);
  return tensors;
}

}  // namespace gancu
