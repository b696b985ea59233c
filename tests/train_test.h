// Shared by the tests that train: the real images they train on and the tiny DCGAN run that keeps them fast.
#pragma once
#include "tools/gan/train.h"

namespace gancu::testing {

// Debian's Fashion-MNIST test images (installed by tools/setup_debian.sh).
inline constexpr const char* kFashionTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

// DCGAN-32 at width 8, nz 16, batch 8: a few milliseconds a step on the CPU.
inline app::TrainOptions tiny_train_options() {
  app::TrainOptions o;
  o.data = kFashionTestImages;
  o.image_size = 32;
  o.batch_size = 8;
  o.nz = 16;
  o.ngf = o.ndf = 8;
  o.seed = 42;
  return o;
}

}  // namespace gancu::testing
