// Private to the concat, channel-slice and one-hot kernels (kernels/cuda/elementwise.cu): which input element each
// output element copies, and how a concat of many inputs is cut into launches. Plain C++ with __host__ __device__
// annotations, so the host tests (tests/gpu/test_channel_ops_cuda.cpp, ChannelMaps) run the very same maps and
// launch plan through a scalar loop: no GPU needed to check that every output element is written from the right place.
//
// Every kernel walks its output in order (coalesced writes), one element per thread per grid-stride iteration, and
// splits the flat index with FastDivmod (multiply-high and shift): a 64-bit division per element would cost more
// instructions than the memory traffic leaves time for. That needs 32-bit indices: the host functions refuse tensors
// of 2³¹ or more elements.
#pragma once
#include <math.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/conv_problems.cuh"  // FastDivmod, GANCU_HD

namespace gancu::cuda::detail {

// Inputs one concat launch takes, passed by value as a kernel argument (a few hundred bytes of the 4 KB limit).
inline constexpr int kConcatInputsPerLaunch = 8;

// One concat launch: inputs [first, first + count) of the concat, which fill columns [column_begin, column_begin +
// group_width) of each of y's rows (a row: one image's Σ channels·inner values). width[i] = channels·inner of input i.
struct ConcatLaunch {
  const float* src[kConcatInputsPerLaunch] = {};
  int width[kConcatInputsPerLaunch] = {};
  int count = 0;
  int column_begin = 0;
  int group_width = 0;
  int row_width = 0;
  int rows = 0;  // batch
  FastDivmod by_group_width;
  int elements() const { return rows * group_width; }
};

// Where output element o of a launch (o in [0, elements())) comes from: input `input` of the launch, at `src`, and
// where it goes in y. The launch's arrays are read at constant indices only (unrolled loops): indexing a kernel
// argument with a runtime value makes every thread copy it to local memory first (a 128-byte stack frame per thread,
// which ptxas -v showed for a plain loop).
struct ConcatElement {
  int input, src, dst;
};
GANCU_HD ConcatElement concat_element(const ConcatLaunch& l, int o) {
  int row, column;
  l.by_group_width.divmod(o, row, column);
  const int dst = row * l.row_width + l.column_begin + column;
  int input = 0, width = l.width[0];
  GANCU_UNROLL
  for (int k = 1; k < kConcatInputsPerLaunch; ++k)
    if (k < l.count && column >= width) {  // once false, stays false: neither column nor width changes then
      column -= width;
      input = k;
      width = l.width[k];
    }
  return ConcatElement{input, row * width + column, dst};
}
GANCU_HD const float* concat_source(const ConcatLaunch& l, int input) {
  const float* src = l.src[0];
  GANCU_UNROLL
  for (int k = 1; k < kConcatInputsPerLaunch; ++k)
    if (k == input) src = l.src[k];
  return src;
}

inline void check_32bit(int64_t elements, const char* what) {
  if (elements >= (int64_t(1) << 31))
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(elements) +
                                " elements, more than the kernel's 32-bit indices reach");
}

// The launches of concat_channels: consecutive groups of up to kConcatInputsPerLaunch inputs. Inputs with no values
// (zero channels) are skipped.
inline std::vector<ConcatLaunch> plan_concat(int batch, int inner, int num_inputs, const float* const* xs,
                                             const int* channels) {
  if (batch < 0 || inner < 0 || num_inputs < 0) throw std::invalid_argument("concat_channels: negative size");
  int64_t row = 0;
  for (int i = 0; i < num_inputs; ++i) {
    if (channels[i] < 0) throw std::invalid_argument("concat_channels: negative channel count");
    row += int64_t(channels[i]) * inner;
  }
  check_32bit(row, "concat_channels");
  check_32bit(row * batch, "concat_channels");
  std::vector<ConcatLaunch> launches;
  int column = 0;
  for (int i = 0; i < num_inputs; ++i) {
    const int width = channels[i] * inner;
    if (width == 0) continue;
    if (launches.empty() || launches.back().count == kConcatInputsPerLaunch) {
      ConcatLaunch l;
      l.column_begin = column;
      l.row_width = int(row);
      l.rows = batch;
      launches.push_back(l);
    }
    ConcatLaunch& l = launches.back();
    l.src[l.count] = xs[i];
    l.width[l.count] = width;
    ++l.count;
    l.group_width += width;
    column += width;
  }
  for (ConcatLaunch& l : launches) l.by_group_width = FastDivmod(l.group_width);
  return launches;
}

// y [batch, channels_y, inner] = x[:, begin : begin + channels_y]: element o of y reads x at channel_slice_source.
struct ChannelSliceMap {
  int width_x = 0, width_y = 0, column_begin = 0;  // columns of x's and y's rows; where y's start in x's
  FastDivmod by_width_y;
};
inline ChannelSliceMap plan_channel_slice(int batch, int channels_x, int begin, int channels_y, int inner) {
  if (batch < 0 || inner < 0 || begin < 0 || channels_y < 0 || begin + channels_y > channels_x)
    throw std::invalid_argument("channel_slice: channels [" + std::to_string(begin) + ", " +
                                std::to_string(begin + channels_y) + ") outside [0, " + std::to_string(channels_x) +
                                ") or a negative size");
  check_32bit(int64_t(batch) * channels_x * inner, "channel_slice");
  ChannelSliceMap m;
  m.width_x = channels_x * inner;
  m.width_y = channels_y * inner;
  m.column_begin = begin * inner;
  m.by_width_y = FastDivmod(m.width_y);
  return m;
}
GANCU_HD int channel_slice_source(const ChannelSliceMap& m, int o) {
  int row, column;
  m.by_width_y.divmod(o, row, column);
  return row * m.width_x + m.column_begin + column;
}

// y [batch, classes, spatial]: element o is 1 where its channel is its example's label. A label that is not an
// integer in [0, classes) (NaN fails every comparison) matches no channel, so its example's maps are all zero: a
// kernel cannot throw, and the CPU reference refuses such labels instead.
struct OneHotMap {
  int classes = 1;
  FastDivmod by_spatial, by_classes;
};
inline OneHotMap plan_one_hot(int batch, int classes, int spatial) {
  if (batch < 0 || classes < 1 || spatial < 0) throw std::invalid_argument("one_hot: invalid size");
  check_32bit(int64_t(batch) * classes * spatial, "one_hot");
  OneHotMap m;
  m.classes = classes;
  m.by_spatial = FastDivmod(spatial);
  m.by_classes = FastDivmod(classes);
  return m;
}
GANCU_HD float one_hot_value(const OneHotMap& m, const float* labels, int o) {
  int example, channel;
  m.by_classes.divmod(m.by_spatial.div(o), example, channel);  // o / spatial = example·classes + channel
  const float label = labels[example];
  const bool is_class = label >= 0.0f && label < float(m.classes) && label == floorf(label);
  return is_class && int(label) == channel ? 1.0f : 0.0f;
}

}  // namespace gancu::cuda::detail
