// JPEG images through libjpeg-turbo (Debian: libjpeg62-turbo-dev), decoded to the Image type of the PNG reader, and
// load_image, which reads either format by its content.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "tools/io/png.h"

namespace gancu {

// The most pixels a JPEG may have (100 megapixels), checked against the header before the decoder sizes anything.
// Below it, memory still follows the bytes decoded: the image grows row by row as libjpeg delivers rows, so a short
// file that declares a large image fails at its end without having claimed the whole image. Progressive files, whose
// coefficients libjpeg holds whole (up to 6 bytes a pixel), are refused when the header declares more blocks than the
// rest of the file could code (Huffman-coded ones; libjpeg's memory is capped for all).
inline constexpr uint64_t kMaxJpegPixels = 100'000'000;

// Baseline, progressive and arithmetic-coded JPEGs, 8 bits per sample, decoded to 8-bit RGB (channels 3): colour
// files are converted by libjpeg, grey files replicated to three channels. CMYK and YCCK files are refused. EXIF
// orientation is ignored (pixels come back as stored). Throws std::runtime_error("<path>: <problem>") on an unreadable
// file, on a header declaring more than `max_pixels` pixels, and on any corrupt data libjpeg notices, warnings
// included ("premature end of data", bad Huffman codes): a training photo half filled with grey is worse than none.
Image read_jpeg(const std::string& path, uint64_t max_pixels = kMaxJpegPixels);
// Decodes JPEG bytes; `name` only labels error messages.
Image decode_jpeg(const std::string& name, const void* data, size_t size, uint64_t max_pixels = kMaxJpegPixels);

// True when the bytes start like a JPEG (FF D8 FF) / a PNG (its 8-byte signature).
bool looks_like_jpeg(const void* data, size_t size);
bool looks_like_png(const void* data, size_t size);

// A PNG or a JPEG, told apart by their first bytes, never by the file name: PNGs as read_png returns them (grey or
// RGB), JPEGs as read_jpeg. Throws std::runtime_error("<path>: …") for anything else, naming what it expected.
Image load_image(const std::string& path);

}  // namespace gancu
