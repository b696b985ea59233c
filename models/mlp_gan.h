// The MLP GAN of Goodfellow et al. (2014) as the Keras `GAN()` example builds it (eriklindernoren/Keras-GAN), named as
// the equivalent PyTorch nn.Sequential `model` (tools/pytorch_mlp_gan.py), so checkpoints load into it:
//
//   G: z [N, nz] → Dense 256 → LeakyReLU 0.2 → BatchNorm → Dense 512 → LeakyReLU → BatchNorm → Dense 1024 → LeakyReLU
//      → BatchNorm → Dense C·H·W → tanh → [N, C, H, W]
//   D: images → Flatten → Dense 512 → LeakyReLU 0.2 → Dense 256 → LeakyReLU 0.2 → Dense 1 (a logit)
//
// Keras' defaults: Dense weights glorot_uniform with zero bias; BatchNormalization(momentum=0.8) keeps 0.8 of the old
// running statistics, which is PyTorch's momentum 0.2, with Keras' epsilon 1e-3.
#pragma once
#include "engine/builder.h"

namespace gancu::models {

struct MlpGanConfig {
  int image_size = 28;  // MNIST without padding
  int channels = 1;
  int latent_size = 100;
};

// Throws std::invalid_argument for sizes the networks cannot take.
void validate(const MlpGanConfig& config);

ValueId mlp_generator(Builder& b, ValueId z, const MlpGanConfig& config);
ValueId mlp_discriminator(Builder& b, ValueId images, const MlpGanConfig& config);

}  // namespace gancu::models
