// DCGAN (Radford et al. 2015) as in PyTorch's examples/dcgan. Parameter names follow that nn.Sequential
// ("main.0.weight", "main.1.running_mean", ...), so checkpoints load into the PyTorch module in the README.
#pragma once
#include "engine/builder.h"

namespace gancu::models {

struct DcganConfig {
  int image_size = 64;       // 32 or 64 (any power of two ≥ 8 works)
  int channels = 1;
  int latent_size = 100;     // nz
  int generator_width = 64;  // ngf
  int discriminator_width = 64;  // ndf
  double discriminator_dropout = 0.0;  // after each LeakyReLU of D (an nn.Dropout in the Sequential)
};

// Throws std::invalid_argument for an image size that is not a power of two ≥ 8.
void validate(const DcganConfig& config);

// z [N, nz, 1, 1] → images [N, C, S, S] in (−1, 1): transposed convolutions 4x4 stride 2 padding 1 (the first one
// stride 1 padding 0 from 1x1 to 4x4), batch norm and ReLU, tanh on the output. Weights N(0, 0.02), batch-norm
// gamma N(1, 0.02), beta 0.
ValueId dcgan_generator(Builder& b, ValueId z, const DcganConfig& config);

// images [N, C, S, S] → logits [N, 1, 1, 1]: convolutions 4x4 stride 2 padding 1 with batch norm (none on the first)
// and LeakyReLU 0.2, then a 4x4 convolution to one logit. The sigmoid is folded into the BCE-with-logits loss.
ValueId dcgan_discriminator(Builder& b, ValueId images, const DcganConfig& config);

}  // namespace gancu::models
