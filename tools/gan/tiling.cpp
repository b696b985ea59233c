#include "tools/gan/tiling.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace gancu::app {

std::vector<TileSpan> tile_spans(int length, int tile, int halo) {
  if (length < 1 || tile < 1 || halo < 0)
    throw std::invalid_argument("tile_spans: length " + std::to_string(length) + ", tile " + std::to_string(tile) +
                                ", halo " + std::to_string(halo));
  if (length <= tile) return {{0, length, 0, length}};
  const int stride = tile - 2 * halo;
  if (stride < 1)
    throw std::invalid_argument("a tile of " + std::to_string(tile) + " pixels owns none of them with a halo of " +
                                std::to_string(halo) + ": use a tile larger than " + std::to_string(2 * halo));
  // Window i starts at i·stride, the last one clamped to the far border; window i > 0 owns from start + halo, the
  // first pixel it sees with a full halo on the near side, to where the next window's ownership begins.
  std::vector<TileSpan> spans;
  for (int start = 0;; start += stride) {
    const int clamped = std::min(start, length - tile);
    spans.push_back({clamped, tile, spans.empty() ? 0 : clamped + halo, length});
    if (clamped + tile >= length) break;
  }
  for (size_t i = 0; i + 1 < spans.size(); ++i) spans[i].own_end = spans[i + 1].own_begin;
  return spans;
}

void run_tiled(const float* image, int channels, int height, int width, int scale, int tile, int halo,
               const TileNetwork& network, const TileSink& sink) {
  if (channels < 1 || scale < 1) throw std::invalid_argument("run_tiled: bad channels or scale");
  const std::vector<TileSpan> rows = tile_spans(height, tile, halo), cols = tile_spans(width, tile, halo);
  const int th = rows.front().size, tw = cols.front().size;
  std::vector<float> in_tile(static_cast<size_t>(channels) * th * tw);
  std::vector<float> out_tile(static_cast<size_t>(channels) * th * scale * tw * scale);
  const int64_t tile_w = int64_t(tw) * scale, plane = int64_t(th) * scale * tile_w;
  for (const TileSpan& r : rows)
    for (const TileSpan& c : cols) {
      for (int ch = 0; ch < channels; ++ch)
        for (int y = 0; y < th; ++y)
          std::copy_n(image + (int64_t(ch) * height + r.start + y) * width + c.start, tw,
                      in_tile.begin() + (int64_t(ch) * th + y) * tw);
      network(in_tile.data(), th, tw, out_tile.data());
      // The owned input rectangle, scaled, inside this tile's output.
      const int64_t y0 = int64_t(r.own_begin - r.start) * scale, x0 = int64_t(c.own_begin - c.start) * scale;
      sink({out_tile.data() + y0 * tile_w + x0, plane, tile_w, int64_t(r.own_begin) * scale,
            int64_t(c.own_begin) * scale, int64_t(r.own_end - r.own_begin) * scale,
            int64_t(c.own_end - c.own_begin) * scale});
    }
}

std::vector<float> run_tiled(const float* image, int channels, int height, int width, int scale, int tile, int halo,
                             const TileNetwork& network) {
  const int64_t out_h = int64_t(height) * scale, out_w = int64_t(width) * scale;
  std::vector<float> out(static_cast<size_t>(channels * out_h * out_w));
  run_tiled(image, channels, height, width, scale, tile, halo, network, [&](const TileBlock& b) {
    for (int ch = 0; ch < channels; ++ch)
      for (int64_t i = 0; i < b.rows; ++i)
        std::copy_n(b.block + ch * b.channel_stride + i * b.row_stride, b.cols,
                    out.begin() + (ch * out_h + b.y + i) * out_w + b.x);
  });
  return out;
}

}  // namespace gancu::app
