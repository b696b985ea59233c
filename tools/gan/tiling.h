// Tiled inference for image-to-image networks (gan upscale): a photo of any size goes through a network whose plan
// has one fixed tile shape, so memory is bounded by one tile whatever the photo.
//
// A network whose output at a pixel depends only on input pixels within `halo` of it (its receptive radius, in input
// pixels) gives the same output on a window as on the whole image wherever that pixel's halo lies inside the window, or
// the window reaches the image border there (zero padding is then the same). Tiles overlap by 2·halo and each keeps
// only the pixels it owns, so the stitched result equals one pass over the whole image: to rounding, and bit for bit
// where the network's arithmetic for a pixel does not depend on the image size (a BLAS GEMM may block differently for
// other sizes). No blending, no seams.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace gancu::app {

// One axis of a tiling: the window [start, start + size) of the input is run; it owns input rows [own_begin, own_end).
struct TileSpan {
  int start = 0, size = 0;
  int own_begin = 0, own_end = 0;
};

// The windows along an axis of `length` pixels, each of min(tile, length) pixels, owning a partition of the axis.
// Throws std::invalid_argument when tile ≤ 2·halo and the axis needs more than one window (no pixel would be owned).
std::vector<TileSpan> tile_spans(int length, int tile, int halo);

// network(in, h, w, out): in [channels, h, w] → out [channels, h·scale, w·scale]; always called with the same h and w.
using TileNetwork = std::function<void(const float* in, int h, int w, float* out)>;

// Where each tile's owned output goes: a rows × cols block at output position (y, x), for every channel; element
// (c, i, j) is at block[c · channel_stride + i · row_stride + j].
struct TileBlock {
  const float* block;
  int64_t channel_stride, row_stride;
  int64_t y, x, rows, cols;
};
using TileSink = std::function<void(const TileBlock& block)>;

// The network's output on the whole image [channels, height, width] → [channels, height·scale, width·scale], computed
// tile by tile and handed to `sink` block by block (the blocks partition the output), so the caller need not hold it
// in floats.
void run_tiled(const float* image, int channels, int height, int width, int scale, int tile, int halo,
               const TileNetwork& network, const TileSink& sink);
// The same, gathered into one float array.
std::vector<float> run_tiled(const float* image, int channels, int height, int width, int scale, int tile, int halo,
                             const TileNetwork& network);

}  // namespace gancu::app
