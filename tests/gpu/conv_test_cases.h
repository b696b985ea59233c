// The conv layer cases shared by the conv tests: every layer shape of DCGAN-32, DCGAN-64 and SRGAN plus odd shapes
// (all_cases), and the small shapes that reach every kernel variant of the custom conv (small_cases, run under
// compute-sanitizer by tools/gpu_check.sh through the "Small" test filter).
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/conv_engine.cuh"
#include "kernels/params.h"

namespace gancu::conv_test {

using cuda::detail::ConvGeometry;

// One layer: a conv2d, or a conv_transpose2d when `transposed`. `in_w` 0 means square input.
struct ConvCase {
  std::string name;
  bool transposed = false;
  int batch = 1, in_channels = 1, in_h = 1, out_channels = 1, kernel = 1, stride = 1, pad = 0, output_pad = 0;
  int in_w = 0;

  Conv2dParams conv() const { return {batch, in_channels, in_h, in_w ? in_w : in_h, out_channels, kernel, stride, pad}; }
  ConvTranspose2dParams tconv() const {
    return {batch, in_channels, in_h, in_w ? in_w : in_h, out_channels, kernel, stride, pad, output_pad};
  }
  // The forward-orientation conv whose passes this layer's passes are (a transposed conv is its adjoint).
  ConvGeometry geometry() const {
    return transposed ? cuda::detail::adjoint_geometry_of(tconv()) : cuda::detail::geometry_of(conv());
  }
  int64_t x_size() const { return transposed ? tconv().x_size() : conv().x_size(); }
  int64_t y_size() const { return transposed ? tconv().y_size() : conv().y_size(); }
  int64_t w_size() const { return transposed ? tconv().w_size() : conv().w_size(); }
  int out_spatial() const { return transposed ? tconv().out_h() * tconv().out_w() : conv().out_h() * conv().out_w(); }
  double flops() const { return transposed ? tconv().flops() : conv().flops(); }
};

// Test names and failure messages show the case's name, not its bytes.
inline void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

inline ConvCase conv_case(std::string name, int batch, int cin, int size, int cout, int k, int s, int p) {
  return {std::move(name), false, batch, cin, size, cout, k, s, p};
}
inline ConvCase tconv_case(std::string name, int batch, int cin, int size, int cout, int k, int s, int p, int op = 0) {
  return {std::move(name), true, batch, cin, size, cout, k, s, p, op};
}

inline std::vector<ConvCase> all_cases() {
  std::vector<ConvCase> c;
  // DCGAN-32, batch 64, nz 100, ngf = ndf = 64; 3-channel (CIFAR) and 1-channel (MNIST) images.
  c.push_back(tconv_case("dcgan32_G0", 64, 100, 1, 256, 4, 1, 0));
  c.push_back(tconv_case("dcgan32_G1", 64, 256, 4, 128, 4, 2, 1));
  c.push_back(tconv_case("dcgan32_G2", 64, 128, 8, 64, 4, 2, 1));
  c.push_back(tconv_case("dcgan32_G3_rgb", 64, 64, 16, 3, 4, 2, 1));
  c.push_back(tconv_case("dcgan32_G3_gray", 64, 64, 16, 1, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D0_rgb", 64, 3, 32, 64, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D0_gray", 64, 1, 32, 64, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D1", 64, 64, 16, 128, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D2", 64, 128, 8, 256, 4, 2, 1));
  c.push_back(conv_case("dcgan32_D3", 64, 256, 4, 1, 4, 1, 0));
  // DCGAN-64, batch 128.
  c.push_back(tconv_case("dcgan64_G0", 128, 100, 1, 512, 4, 1, 0));
  c.push_back(tconv_case("dcgan64_G1", 128, 512, 4, 256, 4, 2, 1));
  c.push_back(tconv_case("dcgan64_G2", 128, 256, 8, 128, 4, 2, 1));
  c.push_back(tconv_case("dcgan64_G3", 128, 128, 16, 64, 4, 2, 1));
  c.push_back(tconv_case("dcgan64_G4", 128, 64, 32, 3, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D0", 128, 3, 64, 64, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D1", 128, 64, 32, 128, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D2", 128, 128, 16, 256, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D3", 128, 256, 8, 512, 4, 2, 1));
  c.push_back(conv_case("dcgan64_D4", 128, 512, 4, 1, 4, 1, 0));
  // SRGAN (4×, 24→96), batch 16.
  c.push_back(conv_case("srgan_G_head", 16, 3, 24, 64, 9, 1, 4));
  c.push_back(conv_case("srgan_G_res", 16, 64, 24, 64, 3, 1, 1));
  c.push_back(conv_case("srgan_G_up24", 16, 64, 24, 256, 3, 1, 1));
  c.push_back(conv_case("srgan_G_up48", 16, 64, 48, 256, 3, 1, 1));
  c.push_back(conv_case("srgan_G_tail", 16, 64, 96, 3, 9, 1, 4));
  c.push_back(conv_case("srgan_D0", 16, 3, 96, 64, 3, 1, 1));
  c.push_back(conv_case("srgan_D1", 16, 64, 96, 64, 3, 2, 1));
  c.push_back(conv_case("srgan_D2", 16, 64, 48, 128, 3, 1, 1));
  c.push_back(conv_case("srgan_D3", 16, 128, 48, 128, 3, 2, 1));
  c.push_back(conv_case("srgan_D4", 16, 128, 24, 256, 3, 1, 1));
  c.push_back(conv_case("srgan_D5", 16, 256, 24, 256, 3, 2, 1));
  c.push_back(conv_case("srgan_D6", 16, 256, 12, 512, 3, 1, 1));
  c.push_back(conv_case("srgan_D7", 16, 512, 12, 512, 3, 2, 1));
  // Odd shapes: channels off the tile, 1×1 maps, batch 1, kernels 1/3/4/9, non-square, strides 2 and 3.
  ConvCase rect = conv_case("odd_rect_c5_c7_k3", 1, 5, 9, 7, 3, 1, 1);
  rect.in_w = 13;
  c.push_back(rect);
  c.push_back(conv_case("odd_1x1map_k1", 3, 7, 1, 5, 1, 1, 0));
  c.push_back(conv_case("odd_1x1map_k9p4", 2, 3, 1, 5, 9, 1, 4));
  c.push_back(conv_case("odd_k4s2_13x13", 2, 3, 13, 5, 4, 2, 1));
  c.push_back(conv_case("odd_c130_c70", 2, 130, 9, 70, 3, 1, 1));
  c.push_back(conv_case("odd_k3s3", 1, 7, 10, 3, 3, 3, 0));
  c.push_back(tconv_case("odd_t_k4s2_b1", 1, 7, 5, 3, 4, 2, 1));
  c.push_back(tconv_case("odd_t_k3s2_op1", 2, 5, 6, 7, 3, 2, 1, 1));
  c.push_back(tconv_case("odd_t_k1s2_zero_phases", 2, 3, 4, 5, 1, 2, 0));
  c.push_back(tconv_case("odd_t_k5s3_op2", 2, 4, 3, 6, 5, 3, 1, 2));
  c.push_back(tconv_case("odd_t_1x1map_k4", 1, 3, 1, 5, 4, 1, 0));
  c.push_back(tconv_case("odd_t_c70_c130", 2, 70, 5, 130, 4, 2, 1));
  return c;
}


// Small shapes, each reaching a kernel variant: the three dense layouts (unsplit and split), the gather with and
// without split-K in both orientations (one and four phases per launch), the weight gradient with split-K, and the
// split sums with and without bias, and the gather's 128×128 tile. ConvIndexMaps.SmallCasesReachEveryVariant checks that they do.
inline std::vector<ConvCase> small_cases() {
  std::vector<ConvCase> c;
  c.push_back(tconv_case("small_t_dense_1x1_to_4x4", 3, 5, 1, 7, 4, 1, 0));           // G0-like, unsplit
  c.push_back(tconv_case("small_t_dense_split_input_grad", 2, 6, 1, 40, 4, 2, 0));   // dx: K = 640, 5 splits
  c.push_back(conv_case("small_dense_split_4x4_to_1x1", 2, 40, 4, 3, 4, 1, 0));      // D-head-like: K = 640, 5 splits
  c.push_back(conv_case("small_gather_split_k3", 4, 64, 8, 64, 3, 1, 1));            // y, dx (K = 576) and dw (K = 256) split
  c.push_back(tconv_case("small_t_phases_split", 2, 128, 4, 8, 4, 2, 1));             // y: 4 phases of K = 512, split
  c.push_back(conv_case("small_gather_k3s2", 2, 3, 9, 5, 3, 2, 1));                   // nothing split
  c.push_back(conv_case("small_gather128", 1, 2, 184, 72, 3, 1, 1));  // M = 33,856: 265 large (128×128) tiles, N > 64
  return c;
}

}  // namespace gancu::conv_test
