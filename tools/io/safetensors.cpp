#include "tools/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string_view>

#include "core/files.h"

namespace gancu {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so must the host be");

namespace {

using nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
// The reference implementation refuses headers above 100 MB; so do we, before allocating anything that large.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// serde_json, which parses headers in the reference implementation, refuses nesting deeper than 128.
constexpr int kMaxJsonDepth = 128;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

// Names come from the file: quoted and escaped as JSON, so a name holding a newline keeps the error on one line.
std::string json_quoted(const std::string& name) { return json(name).dump(-1, ' ', false, json::error_handler_t::replace); }

std::string dims_str(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Bytes per element of every dtype the format defines (sub-byte ones aside), 0 for anything else.
uint64_t dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, uint64_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1}, {"I16", 2}, {"U16", 2},
      {"F16", 2},  {"BF16", 2}, {"I32", 4}, {"U32", 4},     {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8},
      {"C64", 8}};
  const auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

// Offset of the first byte that is not well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), or npos.
size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, smallest;
    if ((lead & 0xE0) == 0xC0) {
      len = 2, cp = lead & 0x1F, smallest = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      len = 3, cp = lead & 0x0F, smallest = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      len = 4, cp = lead & 0x07, smallest = 0x10000;
    } else {
      return i;
    }
    if (s.size() - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < smallest || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

// An open file read with pread; closes itself.
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    // O_NONBLOCK: a FIFO given as a checkpoint is refused below instead of blocking the open.
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      fail(path, "not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { ::close(fd_); }

  uint64_t size() const { return size_; }
  void read(uint64_t offset, void* out, uint64_t bytes) const {
    auto* dst = static_cast<char*>(out);
    while (bytes > 0) {
      const ssize_t n = ::pread(fd_, dst, std::min<uint64_t>(bytes, 1u << 30), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(path_, std::string("read failed (") + std::strerror(errno) + ")");
      if (n == 0) fail(path_, "the file shrank while it was being read");
      dst += n, offset += static_cast<uint64_t>(n), bytes -= static_cast<uint64_t>(n);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

struct Entry {
  std::string name, dtype;
  std::vector<uint64_t> dims;
  uint64_t begin = 0, end = 0;
};

// Checks one tensor's description on its own: known dtype, a shape of non-negative integers whose byte size fits in
// 64 bits, and data_offsets spanning exactly that many bytes.
Entry parse_entry(const std::string& path, const std::string& name, const json& info) {
  const std::string where = "tensor " + json_quoted(name);
  if (!info.is_object()) fail(path, where + " is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!info.contains(key)) fail(path, where + " has no \"" + key + "\"");
  Entry e{name, "", {}, 0, 0};
  if (!info["dtype"].is_string()) fail(path, where + ": dtype is not a string");
  e.dtype = info["dtype"].get<std::string>();
  const uint64_t element_bytes = dtype_bytes(e.dtype);
  if (element_bytes == 0) fail(path, where + ": unknown dtype " + json_quoted(e.dtype));

  const json& shape = info["shape"];
  if (!shape.is_array()) fail(path, where + ": shape is not a list");
  constexpr uint64_t kMaxDim = std::numeric_limits<int64_t>::max();
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) fail(path, where + ": shape " + shape.dump() + " has a non-integer or negative entry");
    const uint64_t v = d.get<uint64_t>();
    if (v > kMaxDim) fail(path, where + ": shape " + shape.dump() + " has a dimension above 2^63 - 1");
    e.dims.push_back(v);
  }
  // The exact byte count: 0 if any dimension is 0 (whatever the others), else a product checked for overflow.
  uint64_t bytes = element_bytes;
  if (std::find(e.dims.begin(), e.dims.end(), uint64_t{0}) != e.dims.end()) bytes = 0;
  for (uint64_t v : e.dims) {
    if (bytes == 0) break;
    if (bytes > std::numeric_limits<uint64_t>::max() / v)
      fail(path, where + ": shape " + shape.dump() + " of " + e.dtype + " overflows 64 bits");
    bytes *= v;
  }

  const json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail(path, where + ": data_offsets must be two non-negative integers");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end < e.begin) fail(path, where + ": data_offsets end before they begin");
  if (e.end - e.begin != bytes)
    fail(path, where + ": data_offsets span " + std::to_string(e.end - e.begin) + " bytes but shape " +
                   shape.dump() + " of " + e.dtype + " needs " + std::to_string(bytes));
  return e;
}

// Parses the header as JSON, refusing a key repeated within one object (nlohmann::json would silently keep the last
// one, so a second tensor of the same name could hide the first) and nesting deeper than the reference allows.
json parse_header_json(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> keys_of_open_objects;
  const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth) fail(path, "the header nests JSON deeper than " + std::to_string(kMaxJsonDepth));
        if (event == json::parse_event_t::object_start) keys_of_open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys_of_open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        if (!keys_of_open_objects.back().insert(key).second)
          fail(path, depth == 1 ? "duplicate tensor name " + json_quoted(key) + " in the header"
                                : "duplicate key " + json_quoted(key) + " in the header");
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::exception& e) {
    fail(path, std::string("invalid JSON header (") + e.what() + ")");
  }
}

// Everything the header says, validated against the file's length; no tensor data has been read.
struct Layout {
  std::vector<Entry> entries;  // in data order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;
};

Layout read_layout(const std::string& path, const InputFile& file) {
  if (file.size() < 8) fail(path, "too short for a safetensors file (" + std::to_string(file.size()) + " bytes)");
  unsigned char prefix[8];
  file.read(0, prefix, 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | prefix[i];
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                   std::to_string(kMaxHeaderBytes) + " bytes (not a safetensors file?)");
  if (header_len > file.size() - 8)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                   std::to_string(file.size()) + "-byte file (truncated, or not a safetensors file)");
  std::string text(header_len, '\0');
  file.read(8, text.data(), header_len);
  if (header_len < 2 || text[0] != '{') fail(path, "not a safetensors file (the header is not a JSON object)");
  if (const size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
    fail(path, "the header is not valid UTF-8 (at byte " + std::to_string(8 + bad) + ")");
  // JSON has no place for a raw NUL, and nlohmann::json would stop reading at one, silently ignoring the rest.
  if (const size_t nul = text.find('\0'); nul != std::string::npos)
    fail(path, "the header contains a NUL byte (at byte " + std::to_string(8 + nul) + ")");
  const json header = parse_header_json(path, text);
  if (!header.is_object()) fail(path, "the header is not a JSON object");

  Layout layout;
  layout.data_start = 8 + header_len;
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      if (!info.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) fail(path, "__metadata__ value for " + json_quoted(key) + " is not a string");
        layout.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    layout.entries.push_back(parse_entry(path, name, info));
  }

  // Taken in offset order, the tensors must tile the data section exactly: from byte 0, no overlaps, no holes, and
  // the last one ends where the file does.
  const uint64_t data_size = file.size() - layout.data_start;
  std::sort(layout.entries.begin(), layout.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected_begin = 0;
  for (const Entry& e : layout.entries) {
    if (e.end > data_size)
      fail(path, "tensor " + json_quoted(e.name) + " data_offsets [" + std::to_string(e.begin) + ", " +
                     std::to_string(e.end) + "] run past the " + std::to_string(data_size) +
                     "-byte data section (truncated file?)");
    if (e.begin < expected_begin) fail(path, "tensor " + json_quoted(e.name) + " overlaps the previous tensor's data");
    if (e.begin > expected_begin)
      fail(path, "a gap of " + std::to_string(e.begin - expected_begin) + " bytes before tensor " + json_quoted(e.name));
    expected_begin = e.end;
  }
  if (expected_begin != data_size)
    fail(path, std::to_string(data_size - expected_begin) + " bytes after the last tensor belong to no tensor");
  return layout;
}

// What gancu can hold: F32 of rank ≤ 4.
Shape loadable_shape(const std::string& path, const Entry& e) {
  if (e.dtype != "F32") fail(path, "tensor " + json_quoted(e.name) + ": unsupported dtype " + e.dtype + " (gancu reads F32 only)");
  if (e.dims.size() > static_cast<size_t>(Shape::kMaxRank))
    fail(path, "tensor " + json_quoted(e.name) + ": rank " + std::to_string(e.dims.size()) + " exceeds the maximum of " +
                   std::to_string(Shape::kMaxRank));
  // Shape::numel multiplies left to right in int64: every partial product must fit, even when a later zero would
  // bring the total back to 0.
  uint64_t partial = 1;
  for (uint64_t v : e.dims) {
    if (v != 0 && partial > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / v)
      fail(path, "tensor " + json_quoted(e.name) + ": shape " + dims_str(e.dims) + " is too large for gancu");
    partial *= v;
  }
  return Shape(std::vector<int64_t>(e.dims.begin(), e.dims.end()));
}

Tensor read_tensor(const InputFile& file, const Layout& layout, const Entry& e, const Shape& shape) {
  Tensor t(shape);
  if (e.end > e.begin) file.read(layout.data_start + e.begin, t.data(), e.end - e.begin);
  return t;
}

// One tensor to write: its bytes as they go into the file.
struct OutputEntry {
  std::string name, dtype;
  std::vector<int64_t> dims;
  const char* data = nullptr;
  uint64_t bytes = 0;
};

void write_safetensors(const std::string& path, std::vector<OutputEntry> entries,
                       const std::map<std::string, std::string>& metadata) {
  for (const OutputEntry& e : entries) {
    if (e.name.empty() || e.name == kMetadataKey) fail(path, "invalid tensor name '" + e.name + "'");
    if (e.bytes > 0 && e.data == nullptr) fail(path, "tensor '" + e.name + "' has no data");
  }
  // Data is laid out in name order, matching the JSON object's key order, so files are byte-for-byte reproducible.
  std::sort(entries.begin(), entries.end(), [](const OutputEntry& a, const OutputEntry& b) { return a.name < b.name; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].name == entries[i - 1].name) fail(path, "duplicate tensor name '" + entries[i].name + "'");

  json header = json::object();
  uint64_t offset = 0;
  for (const OutputEntry& e : entries) {
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.dims}, {"data_offsets", {offset, offset + e.bytes}}};
    offset += e.bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;

  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::string file;
  file.reserve(8 + header_text.size() + offset);
  for (int i = 0; i < 8; ++i) file += static_cast<char>((uint64_t{header_text.size()} >> (8 * i)) & 0xff);
  file += header_text;
  for (const OutputEntry& e : entries) file.append(e.data, e.bytes);
  write_file_atomic(path, file);
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<OutputEntry> entries;
  for (const auto& [name, tensor] : tensors)
    entries.push_back({name, "F32", tensor.shape().dims(), reinterpret_cast<const char*>(tensor.data()),
                       static_cast<uint64_t>(tensor.numel()) * sizeof(float)});
  write_safetensors(path, std::move(entries), metadata);
}

void save_safetensors_f64(const std::string& path, const std::vector<std::pair<std::string, F64Array>>& arrays,
                          const std::map<std::string, std::string>& metadata) {
  std::vector<OutputEntry> entries;
  for (const auto& [name, array] : arrays) {
    int64_t numel = 1;
    for (int64_t d : array.shape) {
      if (d < 0) fail(path, "tensor '" + name + "' has a negative dimension");
      numel *= d;
    }
    if (static_cast<size_t>(numel) != array.values.size())
      fail(path, "tensor '" + name + "' holds " + std::to_string(array.values.size()) + " values for a shape of " +
                     std::to_string(numel));
    entries.push_back({name, "F64", array.shape, reinterpret_cast<const char*>(array.values.data()),
                       array.values.size() * sizeof(double)});
  }
  write_safetensors(path, std::move(entries), metadata);
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  const InputFile file(path);
  Layout layout = read_layout(path, file);
  std::vector<Shape> shapes;
  for (const Entry& e : layout.entries) shapes.push_back(loadable_shape(path, e));
  // Only now, with every tensor checked, is data allocated: at most what the file itself holds.
  std::map<std::string, Tensor> tensors;
  for (size_t i = 0; i < layout.entries.size(); ++i)
    tensors.emplace(layout.entries[i].name, read_tensor(file, layout, layout.entries[i], shapes[i]));
  if (metadata) *metadata = std::move(layout.metadata);
  return tensors;
}

void require_finite(const std::map<std::string, Tensor>& tensors, const std::string& path) {
  for (const auto& [name, t] : tensors) {
    const float* v = t.data();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (std::isfinite(v[i])) continue;
      fail(path, "tensor " + json_quoted(name) + " holds " + (std::isnan(v[i]) ? "NaN" : v[i] > 0 ? "+Inf" : "-Inf") +
                     " at element " + std::to_string(i) + " of " + std::to_string(t.numel()) +
                     "; refusing non-finite weights (the run diverged, or the file is damaged)");
    }
  }
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  const InputFile file(path);
  return read_layout(path, file).metadata;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, const std::map<std::string, Shape>& expected,
                                               std::map<std::string, std::string>* metadata) {
  const InputFile file(path);
  Layout layout = read_layout(path, file);
  std::map<std::string, const Entry*> by_name;
  for (const Entry& e : layout.entries) by_name.emplace(e.name, &e);
  for (const auto& [name, shape] : expected) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) fail(path, "missing tensor " + json_quoted(name));
    const Entry& e = *it->second;
    if (e.dtype != "F32") fail(path, "tensor " + json_quoted(name) + " has dtype " + e.dtype + ", expected F32");
    const std::vector<int64_t> want = shape.dims();
    if (!std::equal(e.dims.begin(), e.dims.end(), want.begin(), want.end(),
                    [](uint64_t got, int64_t w) { return w >= 0 && got == static_cast<uint64_t>(w); }))
      fail(path, "tensor " + json_quoted(name) + " has shape " + dims_str(e.dims) + ", expected " + shape.str());
  }
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : expected) tensors.emplace(name, read_tensor(file, layout, *by_name.at(name), shape));
  if (metadata) *metadata = std::move(layout.metadata);
  return tensors;
}

std::map<std::string, F64Array> load_safetensors_f64(const std::string& path, const std::vector<std::string>& names,
                                                     std::map<std::string, std::string>* metadata) {
  const InputFile file(path);
  Layout layout = read_layout(path, file);
  std::map<std::string, const Entry*> by_name;
  for (const Entry& e : layout.entries) by_name.emplace(e.name, &e);
  std::map<std::string, F64Array> arrays;
  for (const std::string& name : names) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) fail(path, "missing tensor " + json_quoted(name));
    const Entry& e = *it->second;
    if (e.dtype != "F64") fail(path, "tensor " + json_quoted(name) + " has dtype " + e.dtype + ", expected F64");
    // read_layout checked the byte size against the file, so the allocation is at most what the file holds.
    F64Array array{std::vector<int64_t>(e.dims.begin(), e.dims.end()), std::vector<double>((e.end - e.begin) / 8)};
    if (e.end > e.begin) file.read(layout.data_start + e.begin, array.values.data(), e.end - e.begin);
    arrays.insert_or_assign(name, std::move(array));
  }
  if (metadata) *metadata = std::move(layout.metadata);
  return arrays;
}

}  // namespace gancu
