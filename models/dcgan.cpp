#include "models/dcgan.h"

#include <stdexcept>
#include <string>

namespace gancu::models {
namespace {

const Init kConvInit{Init::kNormal, 0.0f, 0.02f};
const Init kGammaInit{Init::kNormal, 1.0f, 0.02f};

// Number of stride-2 layers between 4x4 and the image size.
int upsampling_layers(int image_size) {
  int layers = 0;
  for (int s = image_size; s > 4; s /= 2) ++layers;
  return layers;
}

// Names modules by their index in the equivalent nn.Sequential, counting parameter-free modules too.
struct SequentialNames {
  int next = 0;
  std::string take() { return "main." + std::to_string(next++); }
  void skip() { ++next; }
};

}  // namespace

void validate(const DcganConfig& c) {
  const int s = c.image_size;
  if (s < 8 || (s & (s - 1)) != 0)
    throw std::invalid_argument("DCGAN image size must be a power of two ≥ 8, got " + std::to_string(s));
  if (c.channels < 1 || c.latent_size < 1 || c.generator_width < 1 || c.discriminator_width < 1)
    throw std::invalid_argument("DCGAN sizes must be positive");
}

ValueId dcgan_generator(Builder& b, ValueId z, const DcganConfig& c) {
  validate(c);
  const int layers = upsampling_layers(c.image_size);
  SequentialNames names;
  int width = c.generator_width << (layers - 1);
  ValueId x = b.conv_transpose2d(z, names.take(), width, 4, 1, 0, 0, false, kConvInit);
  x = b.batch_norm2d(x, names.take(), kGammaInit);
  x = b.relu(x);
  names.skip();
  for (int i = 1; i < layers; ++i) {
    width /= 2;
    x = b.conv_transpose2d(x, names.take(), width, 4, 2, 1, 0, false, kConvInit);
    x = b.batch_norm2d(x, names.take(), kGammaInit);
    x = b.relu(x);
    names.skip();
  }
  x = b.conv_transpose2d(x, names.take(), c.channels, 4, 2, 1, 0, false, kConvInit);
  return b.tanh(x);
}

ValueId dcgan_discriminator(Builder& b, ValueId images, const DcganConfig& c) {
  validate(c);
  const int layers = upsampling_layers(c.image_size);
  SequentialNames names;
  int width = c.discriminator_width;
  ValueId x = b.conv2d(images, names.take(), width, 4, 2, 1, false, kConvInit);
  x = b.leaky_relu(x, 0.2f);
  names.skip();
  if (c.discriminator_dropout > 0) {
    x = b.dropout(x, c.discriminator_dropout);
    names.skip();
  }
  for (int i = 1; i < layers; ++i) {
    width *= 2;
    x = b.conv2d(x, names.take(), width, 4, 2, 1, false, kConvInit);
    x = b.batch_norm2d(x, names.take(), kGammaInit);
    x = b.leaky_relu(x, 0.2f);
    names.skip();
    if (c.discriminator_dropout > 0) {
      x = b.dropout(x, c.discriminator_dropout);
      names.skip();
    }
  }
  return b.conv2d(x, names.take(), 1, 4, 1, 0, false, kConvInit);
}

}  // namespace gancu::models
