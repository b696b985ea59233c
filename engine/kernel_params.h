// The kernels' parameter records for a node, from its shapes and attributes: shared by every backend's dispatch
// table, so a node means the same thing on each.
#pragma once
#include "engine/graph.h"
#include "kernels/params.h"

namespace gancu {

inline int to_int(int64_t v) { return static_cast<int>(v); }

// x: the forward input, y: the forward output.
inline Conv2dParams conv2d_params(const Shape& x, const Shape& y, const Attrs& a) {
  Conv2dParams p;
  p.batch = to_int(x[0]);
  p.in_channels = to_int(x[1]);
  p.in_h = to_int(x[2]);
  p.in_w = to_int(x[3]);
  p.out_channels = to_int(y[1]);
  p.kernel = a.kernel;
  p.stride = a.stride;
  p.pad = a.pad;
  return p;
}

inline ConvTranspose2dParams conv_transpose2d_params(const Shape& x, const Shape& y, const Attrs& a) {
  ConvTranspose2dParams p;
  p.batch = to_int(x[0]);
  p.in_channels = to_int(x[1]);
  p.in_h = to_int(x[2]);
  p.in_w = to_int(x[3]);
  p.out_channels = to_int(y[1]);
  p.kernel = a.kernel;
  p.stride = a.stride;
  p.pad = a.pad;
  p.output_pad = a.output_pad;
  return p;
}

// The forward convolution behind a forward, backward_input or backward_weight node. Node layouts:
// forward {x, w, b} → {y}; backward_input {dy, w} → {dx}; backward_weight {x, dy} → {dw}.
inline Conv2dParams conv2d_params_of(const Graph& g, const Node& n) {
  switch (n.op) {
    case OpKind::kConv2d: return conv2d_params(g.shape(n.inputs[0]), g.shape(n.outputs[0]), n.attrs);
    case OpKind::kConv2dBackwardInput: return conv2d_params(g.shape(n.outputs[0]), g.shape(n.inputs[0]), n.attrs);
    default: return conv2d_params(g.shape(n.inputs[0]), g.shape(n.inputs[1]), n.attrs);
  }
}
inline ConvTranspose2dParams conv_transpose2d_params_of(const Graph& g, const Node& n) {
  switch (n.op) {
    case OpKind::kConvTranspose2d:
      return conv_transpose2d_params(g.shape(n.inputs[0]), g.shape(n.outputs[0]), n.attrs);
    case OpKind::kConvTranspose2dBackwardInput:
      return conv_transpose2d_params(g.shape(n.outputs[0]), g.shape(n.inputs[0]), n.attrs);
    default: return conv_transpose2d_params(g.shape(n.inputs[0]), g.shape(n.inputs[1]), n.attrs);
  }
}

inline BatchNorm2dParams batch_norm2d_params(const Shape& x, const Attrs& a) {
  BatchNorm2dParams p;
  p.batch = to_int(x[0]);
  p.channels = to_int(x[1]);
  p.spatial = to_int(x[2] * x[3]);
  p.eps = a.eps;
  p.momentum = a.momentum;
  return p;
}

// The values per channel of one example of x [N, C, ...]: the product of the dims after 1 (1 for [N, C]).
inline int per_channel_size(const Shape& x) {
  int64_t size = 1;
  for (int d = 2; d < x.rank(); ++d) size *= x[d];
  return to_int(size);
}

// x: the forward input (input 0 of a max_pool2d node {x} → {y} and of its backward {x, dy} → {dx}).
inline MaxPool2dParams max_pool2d_params(const Shape& x, const Attrs& a) {
  MaxPool2dParams p;
  p.batch = to_int(x[0]);
  p.channels = to_int(x[1]);
  p.in_h = to_int(x[2]);
  p.in_w = to_int(x[3]);
  p.kernel = a.kernel;
  p.stride = a.stride;
  p.pad = a.pad;
  return p;
}

// x [batch, in_features], y [batch, out_features].
inline LinearParams linear_params(const Shape& x, const Shape& y) {
  LinearParams p;
  p.batch = to_int(x[0]);
  p.in_features = to_int(x[1]);
  p.out_features = to_int(y[1]);
  return p;
}

}  // namespace gancu
