#include "tools/io/jpeg.h"

// jpeglib.h needs size_t and FILE declared first.
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "core/files.h"

namespace gancu {
namespace {

// libjpeg's default error handler calls exit(). Ours records the message and longjmps back to the setjmp in
// decode_into, across libjpeg's C frames only: decode_into keeps nothing but trivially destructible locals, and the
// C++ objects it fills live in the caller, so the jump skips no destructor.
struct JpegErrors {
  jpeg_error_mgr mgr;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 80];
};

[[noreturn]] void on_error(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

// Level -1 is libjpeg's corrupt-data warning, after which it would carry on with made-up data: fatal here. Higher
// levels are trace messages, ignored.
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);
}

[[noreturn]] void fail(j_decompress_ptr cinfo, const char* message) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  std::snprintf(errors->message, sizeof errors->message, "%s", message);
  std::longjmp(errors->jump, 1);
}

// Grows the image by one row without ever reserving more than the whole image; false when out of memory (no
// exception may cross decode_into).
uint8_t* append_row(Image& img, size_t row_bytes, size_t total_bytes) noexcept {
  try {
    const size_t used = img.pixels.size();
    if (used + row_bytes > img.pixels.capacity())
      img.pixels.reserve(std::min(total_bytes, std::max(used + row_bytes, 2 * img.pixels.capacity())));
    img.pixels.resize(used + row_bytes);
    return img.pixels.data() + used;
  } catch (...) {
    return nullptr;
  }
}

bool decode_into(const unsigned char* data, size_t size, uint64_t max_pixels, Image& img, JpegErrors& errors) {
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);  // cinfo.mem null until created: jpeg_destroy_decompress is then a no-op
  cinfo.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = on_error;
  errors.mgr.emit_message = on_message;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);

  const uint64_t pixels = uint64_t{cinfo.image_width} * cinfo.image_height;
  if (pixels > max_pixels) {
    char problem[120];
    std::snprintf(problem, sizeof problem, "%ux%u pixels, over the limit of %llu", cinfo.image_width,
                  cinfo.image_height, static_cast<unsigned long long>(max_pixels));
    fail(&cinfo, problem);
  }
  // A progressive file's coefficients are all held until its last scan, allocated when decoding starts. Its first
  // scan codes every block of some component, at least one bit a block with Huffman codes: a header declaring more
  // blocks than the rest of the file has bits is refused before that allocation. (Arithmetic coding has no such
  // bound; the memory cap below still holds for it.)
  if (cinfo.progressive_mode && !cinfo.arith_code) {
    uint64_t fewest_blocks = UINT64_MAX;
    for (int c = 0; c < cinfo.num_components; ++c)
      fewest_blocks = std::min<uint64_t>(
          fewest_blocks, uint64_t{cinfo.comp_info[c].width_in_blocks} * cinfo.comp_info[c].height_in_blocks);
    if (fewest_blocks > 8 * uint64_t{cinfo.src->bytes_in_buffer}) {
      char problem[160];
      std::snprintf(problem, sizeof problem,
                    "a progressive %ux%u image, more than the %llu bytes after the header can code", cinfo.image_width,
                    cinfo.image_height, static_cast<unsigned long long>(cinfo.src->bytes_in_buffer));
      fail(&cinfo, problem);
    }
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK)
    fail(&cinfo, "CMYK JPEGs are not supported (convert it to RGB)");
  if (cinfo.num_components != 1 && cinfo.num_components != 3) fail(&cinfo, "not a grey or RGB JPEG");
  // Progressive files hold every coefficient (2 bytes each, up to 3 per pixel with chroma padding) until the last
  // scan; beyond that libjpeg would need a backing store it does not have, and stops with an error.
  cinfo.mem->max_memory_to_use = static_cast<long>(std::min<uint64_t>(8 * max_pixels + (16u << 20), 1ull << 40));
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) fail(&cinfo, "unexpected channel count after conversion to RGB");

  img.width = static_cast<int>(cinfo.output_width);
  img.height = static_cast<int>(cinfo.output_height);
  img.channels = 3;
  const size_t row_bytes = size_t{cinfo.output_width} * 3;
  const size_t total_bytes = row_bytes * cinfo.output_height;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = append_row(img, row_bytes, total_bytes);
    if (!row) fail(&cinfo, "out of memory");
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

}  // namespace

bool looks_like_jpeg(const void* data, size_t size) {
  const auto* b = static_cast<const unsigned char*>(data);
  return size >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}

bool looks_like_png(const void* data, size_t size) {
  static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return size >= 8 && std::memcmp(data, kSignature, 8) == 0;
}

Image decode_jpeg(const std::string& name, const void* data, size_t size, uint64_t max_pixels) {
  if (!looks_like_jpeg(data, size)) throw std::runtime_error(name + ": not a JPEG file (no FF D8 FF start)");
  Image img;
  JpegErrors errors;
  errors.message[0] = '\0';
  if (!decode_into(static_cast<const unsigned char*>(data), size, max_pixels, img, errors))
    throw std::runtime_error(name + ": corrupt or unsupported JPEG (" + errors.message + ")");
  return img;
}

Image read_jpeg(const std::string& path, uint64_t max_pixels) {
  const std::vector<char> bytes = read_file(path);
  return decode_jpeg(path, bytes.data(), bytes.size(), max_pixels);
}

Image load_image(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  if (looks_like_png(bytes.data(), bytes.size())) return decode_png(path, bytes.data(), bytes.size());
  if (looks_like_jpeg(bytes.data(), bytes.size())) return decode_jpeg(path, bytes.data(), bytes.size());
  throw std::runtime_error(path + ": neither a PNG nor a JPEG (by its first bytes)");
}

}  // namespace gancu
