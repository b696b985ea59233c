// Allocation bugs the fuzz targets (tests/fuzz/) found or were built to catch, each pinned by a test named after the
// problem. The hostile sizes run under an address-space limit of 256 MiB more than the process already uses, in a fresh
// process (a threadsafe death test): the fixed reader refuses the file with its one-line error, where the old one
// failed to allocate. The seeds of the same files are in tests/fuzz/corpus/.
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/files.h"
#include "tests/dataset_files.h"
#include "tests/temp_dir.h"
#include "tools/io/dataset.h"
#include "tools/io/png.h"

namespace gancu {
namespace {

using testing::be32;
using testing::expect_error;

class FuzzRegressionTest : public testing::TempDirTest {
 protected:
  // `head` gzip-compressed, then 768 MiB of zeros in 48 more gzip members (zlib reads concatenated members as one
  // stream): a file of under 1 MB that inflates past the address-space limit.
  std::string write_gzip_bomb(const std::string& name, const std::string& head) const {
    testing::write_gzip(path("zeros.gz"), std::string(size_t{1} << 24, '\0'));
    const std::vector<char> member = read_file(path("zeros.gz"));
    testing::write_gzip(path(name), head);
    std::ofstream out(path(name), std::ios::binary | std::ios::app);
    for (int i = 0; i < 48; ++i) out.write(member.data(), static_cast<std::streamsize>(member.size()));
    return path(name);
  }
};

// Runs `load` in a child under the address-space limit; exits 0 when it throws a runtime_error mentioning `fragment`,
// 3 when it fails to allocate, 1 when it returns, 2 on another error message.
template <class F> void run_limited(F load, const std::string& fragment) {
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (rlim_t{1} << 28);
  const rlimit rl{limit, limit};
  if (setrlimit(RLIMIT_AS, &rl) != 0) std::_Exit(4);
  try {
    load();
    std::_Exit(1);
  } catch (const std::bad_alloc&) {
    std::_Exit(3);
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::_Exit(std::string(e.what()).find(fragment) != std::string::npos ? 0 : 2);
  }
}

template <class F> void expect_refused_within_limit(F load, const std::string& fragment) {
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: no inherited threads or allocations
  EXPECT_EXIT(run_limited(load, fragment), ::testing::ExitedWithCode(0), "");
  GTEST_FLAG_SET(death_test_style, style);
}

// ---- PNG: a header declaring more pixels than the file could hold ----------------------------------------------------

std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  return be32(static_cast<uint32_t>(data.size())) + body + be32(crc);
}

// An 8-bit RGB PNG header of width x height followed by one compressed scanline of zeros: a small file that
// declares a huge image.
std::string png_declaring(uint32_t width, uint32_t height) {
  std::string ihdr = be32(width) + be32(height);
  ihdr += "\x08\x02";              // bit depth 8, RGB
  ihdr += std::string(3, '\0');   // deflate, adaptive filtering, no interlace
  const std::string raw(11, '\0');
  std::string packed(compressBound(static_cast<uLong>(raw.size())), '\0');
  uLongf packed_size = static_cast<uLongf>(packed.size());
  compress(reinterpret_cast<Bytef*>(packed.data()), &packed_size, reinterpret_cast<const Bytef*>(raw.data()),
           static_cast<uLong>(raw.size()));
  packed.resize(packed_size);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", packed) +
         png_chunk("IEND", "");
}

// Found by fuzz_png's seed bad-huge-declared-1000000x4000 (an out-of-memory report): the reader sized the image from
// the header before libpng found the data missing. Here 16000 x 16000 RGB, 768 MB, within the pixel limit.
TEST_F(FuzzRegressionTest, PngDeclaringMorePixelsThanItsBytesCanHoldIsRefusedBeforeAllocating) {
  const std::string bytes = png_declaring(16000, 16000);
  expect_refused_within_limit([&] { decode_png("huge.png", bytes.data(), bytes.size()); },
                              "16000x16000 pixels, more than the");
  const std::string p = write_bytes("huge.png", bytes);
  expect_error([&] { read_png(p); }, p, "more than the");
}

TEST_F(FuzzRegressionTest, PngOverThePixelLimitIsRefused) {
  const std::string bytes = png_declaring(16385, 16384);  // one row over 2^28 pixels
  expect_error([&] { decode_png("big.png", bytes.data(), bytes.size()); }, "big.png", "over the limit of 268435456");
}

// The bound is deflate's greatest expansion, so the most compressible image there is still loads: 4000 x 4000
// zeros compress about 1000:1, close to the bound.
TEST_F(FuzzRegressionTest, PngAsCompressibleAsDeflateAllowsStillLoads) {
  Image zeros{4000, 4000, 1, std::vector<uint8_t>(size_t{4000} * 4000, 0)};
  const std::string bytes = encode_png("zeros.png", zeros);
  ASSERT_LT(bytes.size(), size_t{40000});  // compressed well over 400:1, so the test is near the bound
  const Image back = decode_png("zeros.png", bytes.data(), bytes.size());
  EXPECT_EQ(back.width, 4000);
  EXPECT_EQ(back.height, 4000);
  EXPECT_EQ(back.pixels, zeros.pixels);
}

// ---- IDX: a gzip file whose tail inflates to far more than the header declares ----------------------------------------

// The IDX readers inflated the whole file before looking at its header, so a 1 MB .gz could make them allocate
// gigabytes (the corpus seeds bad-gzip-bomb-tail.gz are small versions of it). Now the header is read first, then
// only the declared pixels or labels are kept, and what follows is counted, never stored.
TEST_F(FuzzRegressionTest, IdxImagesGzipBombIsRefusedWithoutInflatingItIntoMemory) {
  const std::string p = write_gzip_bomb("bomb-images-idx3-ubyte.gz",
                                        be32(0x803) + be32(1) + be32(1) + be32(1) + std::string(1, '\x07'));
  expect_refused_within_limit([&] { load_idx_images(p); }, "805306368 unexpected bytes after the images");
}

TEST_F(FuzzRegressionTest, IdxLabelsGzipBombIsRefusedWithoutInflatingItIntoMemory) {
  const std::string p = write_gzip_bomb("bomb-labels-idx1-ubyte.gz", be32(0x801) + be32(1) + '\x03');
  expect_refused_within_limit([&] { load_idx_labels(p, 10); }, "805306368 unexpected bytes after the labels");
}

TEST_F(FuzzRegressionTest, IdxGzipBombIsRefusedAtItsHeaderWhenTheMagicIsWrong) {
  const std::string p = write_gzip_bomb("bomb.gz", be32(0x12345678));
  expect_refused_within_limit([&] { load_idx_images(p); }, "wrong magic 0x12345678");
}

}  // namespace
}  // namespace gancu
