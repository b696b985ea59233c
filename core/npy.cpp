#include "core/npy.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "core/files.h"

namespace gancu {

static_assert(std::endian::native == std::endian::little, "the .npy reader assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  size_t data_offset = 0;
};

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

// A parser for the one Python literal .npy headers use: a dict of str keys whose values are str, bool or a tuple of
// non-negative ints. Anything else is a malformed header.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, std::string_view text) : path_(path), text_(text) {}

  NpyHeader parse() {
    NpyHeader header;
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        header.descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        header.fortran_order = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        header.shape = parse_int_tuple();
        have_shape = true;
      } else {
        malformed("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') malformed("expected ',' or '}'");
    }
    ++pos_;
    skip_space();
    if (pos_ != text_.size()) malformed("trailing characters after the dict");
    if (!have_descr || !have_fortran || !have_shape) malformed("missing 'descr', 'fortran_order' or 'shape'");
    return header;
  }

 private:
  [[noreturn]] void malformed(const std::string& why) { fail(path_, "malformed .npy header (" + why + ")"); }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) malformed(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') malformed("expected a quoted string");
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) malformed("unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  bool parse_bool() {
    skip_space();
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    malformed("expected True or False");
  }
  int64_t parse_int() {
    skip_space();
    if (!std::isdigit(static_cast<unsigned char>(peek()))) malformed("expected a non-negative integer");
    int64_t v = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) malformed("dimension too large");
      v = v * 10 + (text_[pos_++] - '0');
    }
    // Python 2 era writers may append 'L' to longs.
    if (peek() == 'L') ++pos_;
    return v;
  }
  std::vector<int64_t> parse_int_tuple() {
    std::vector<int64_t> dims;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') break;
      dims.push_back(parse_int());
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') malformed("expected ',' or ')' in shape");
    }
    ++pos_;
    return dims;
  }

  const std::string& path_;
  std::string_view text_;
  size_t pos_ = 0;
};

uint32_t read_le(const char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

NpyHeader parse_npy(const std::string& path, const std::vector<char>& bytes) {
  if (bytes.size() < kMagicSize + 2 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0)
    fail(path, "not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]), minor = static_cast<unsigned char>(bytes[7]);
  int len_bytes = 0;
  if (major == 1 && minor == 0) len_bytes = 2;
  else if (major == 2 && minor == 0) len_bytes = 4;
  else fail(path, "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
  const size_t prefix = kMagicSize + 2 + len_bytes;
  if (bytes.size() < prefix) fail(path, "truncated .npy header");
  const size_t header_len = read_le(bytes.data() + kMagicSize + 2, len_bytes);
  if (bytes.size() - prefix < header_len) fail(path, "truncated .npy header");
  NpyHeader header = HeaderParser(path, std::string_view(bytes.data() + prefix, header_len)).parse();
  header.data_offset = prefix + header_len;
  if (header.fortran_order) fail(path, "fortran_order True is not supported (save a C-contiguous array)");
  return header;
}

void check_descr(const std::string& path, const std::string& descr, const std::string& wanted, const char* name) {
  if (descr == wanted) return;
  if (!descr.empty() && descr[0] == '>') fail(path, "big-endian dtype '" + descr + "' is not supported");
  fail(path, "unsupported dtype '" + descr + "' (expected '" + wanted + "', " + name + ")");
}

// Checks the payload is exactly numel × item_size bytes and returns numel.
int64_t check_payload(const std::string& path, const NpyHeader& header, size_t file_size, size_t item_size) {
  int64_t numel = 1;
  for (int64_t d : header.shape) {
    if (d != 0 && numel > std::numeric_limits<int64_t>::max() / 8 / d) fail(path, "shape too large");
    numel *= d;
  }
  const size_t expected = static_cast<size_t>(numel) * item_size;
  const size_t actual = file_size - header.data_offset;
  if (actual < expected)
    fail(path, "truncated data: expected " + std::to_string(expected) + " bytes, found " + std::to_string(actual));
  if (actual > expected) fail(path, std::to_string(actual - expected) + " unexpected bytes after the data");
  return numel;
}

std::string shape_literal(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";  // Python's one-element tuple
  return s + ")";
}

// Version 1.0 layout, byte-identical to numpy.save: the header is padded with spaces so the data starts on a
// 64-byte boundary, and ends with '\n'.
std::string npy_bytes(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
                      const void* data, size_t data_bytes) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_literal(shape) + ", }";
  const size_t prefix = kMagicSize + 2 + 2;
  const size_t unpadded = prefix + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > std::numeric_limits<uint16_t>::max()) fail(path, "header too long for .npy version 1.0");
  std::string out(kMagic, kMagicSize);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  out += dict;
  out.append(static_cast<const char*>(data), data_bytes);
  return out;
}

}  // namespace

void write_npy(const std::string& path, const Tensor& t) {
  const std::vector<int64_t> shape = t.shape().dims();
  write_file_atomic(path, npy_bytes(path, "<f4", shape, t.data(), static_cast<size_t>(t.numel()) * sizeof(float)));
}

Tensor read_npy(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  const NpyHeader header = parse_npy(path, bytes);
  check_descr(path, header.descr, "<f4", "float32");
  if (header.shape.size() > Shape::kMaxRank)
    fail(path, "rank " + std::to_string(header.shape.size()) + " exceeds the maximum of 4");
  const int64_t numel = check_payload(path, header, bytes.size(), sizeof(float));
  Tensor t{Shape(header.shape)};
  if (numel > 0) std::memcpy(t.data(), bytes.data() + header.data_offset, static_cast<size_t>(numel) * sizeof(float));
  return t;
}

void write_npy_u8(const std::string& path, const std::vector<int64_t>& shape, const uint8_t* data) {
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(path, "negative dimension in shape");
    numel *= d;
  }
  write_file_atomic(path, npy_bytes(path, "|u1", shape, data, static_cast<size_t>(numel)));
}

std::vector<uint8_t> read_npy_u8(const std::string& path, std::vector<int64_t>* shape) {
  const std::vector<char> bytes = read_file(path);
  const NpyHeader header = parse_npy(path, bytes);
  check_descr(path, header.descr, "|u1", "uint8");
  const int64_t numel = check_payload(path, header, bytes.size(), 1);
  if (shape) *shape = header.shape;
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data() + header.data_offset);
  return std::vector<uint8_t>(begin, begin + numel);
}

std::vector<int64_t> read_npy_integers(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  const NpyHeader header = parse_npy(path, bytes);
  const char* data = bytes.data() + header.data_offset;
  std::vector<int64_t> out;
  if (header.descr == "<i8" || header.descr == "<i4") {
    const size_t item = header.descr == "<i8" ? 8 : 4;
    const int64_t numel = check_payload(path, header, bytes.size(), item);
    out.resize(static_cast<size_t>(numel));
    for (int64_t i = 0; i < numel; ++i) {
      if (item == 8) {
        std::memcpy(&out[size_t(i)], data + i * 8, 8);
      } else {
        int32_t v;
        std::memcpy(&v, data + i * 4, 4);
        out[size_t(i)] = v;
      }
    }
    return out;
  }
  check_descr(path, header.descr, "<f4", "int64, int32 or float32 holding whole numbers");
  const int64_t numel = check_payload(path, header, bytes.size(), sizeof(float));
  out.resize(static_cast<size_t>(numel));
  for (int64_t i = 0; i < numel; ++i) {
    float v;
    std::memcpy(&v, data + i * 4, 4);
    if (!(std::fabs(v) < 16777216.0f) || v != std::floor(v))
      fail(path, "element " + std::to_string(i) + " is " + std::to_string(v) + ", not a whole number");
    out[size_t(i)] = static_cast<int64_t>(v);
  }
  return out;
}

}  // namespace gancu
