// Shared by the tests that train: the real images they train on and the tiny DCGAN run that keeps them fast.
#pragma once
#include "recipes/dcgan.h"
#include "tools/gan/train.h"

namespace gancu::testing {

// Debian's Fashion-MNIST test images (installed by tools/setup_debian.sh).
inline constexpr const char* kFashionTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

// DCGAN-32 at width 8, nz 16, batch 8: a few milliseconds a step on the CPU. The run's options...
inline app::TrainOptions tiny_train_options() {
  app::TrainOptions o;
  o.data = kFashionTestImages;
  o.batch_size = 8;
  o.seed = 42;
  return o;
}

// ...and the recipe's.
inline recipes::DcganRecipe tiny_dcgan() {
  recipes::DcganRecipe r;
  r.model.image_size = 32;
  r.model.latent_size = 16;
  r.model.generator_width = r.model.discriminator_width = 8;
  return r;
}

}  // namespace gancu::testing
