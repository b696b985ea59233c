#include "models/srgan.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace gancu::models {
namespace {

// PyTorch's default for nn.Conv2d and nn.Linear weights (kaiming_uniform with a = √5): U(−1/√fan_in, 1/√fan_in).
Init default_weight_init(int64_t fan_in) {
  const float bound = float(1.0 / std::sqrt(double(fan_in)));
  return Init::uniform(-bound, bound);
}

ValueId conv(Builder& b, ValueId x, const std::string& name, int out_channels, int kernel, int stride, bool bias) {
  const int64_t in_channels = b.graph().shape(x)[1];
  return b.conv2d(x, name, out_channels, kernel, stride, kernel / 2, bias,
                  default_weight_init(in_channels * kernel * kernel));
}

ValueId dense(Builder& b, ValueId x, const std::string& name, int out_features) {
  const int64_t in_features = b.graph().shape(x)[1];
  const Init init = default_weight_init(in_features);
  return b.linear(x, name, out_features, true, init, init);
}

// Names modules by their index in an nn.Sequential, counting parameter-free modules too.
struct SequentialNames {
  std::string prefix;
  int next = 0;
  std::string take() { return prefix + std::to_string(next++); }
  void skip() { ++next; }
};

std::string field_error(const char* net, const std::string& problem) { return std::string(net) + ": " + problem; }

}  // namespace

void validate(const SrresnetConfig& c) {
  if (c.residual_blocks < 0) throw std::invalid_argument(field_error("SRResNet", "residual_blocks must be ≥ 0"));
  if (c.channels < 1 || c.image_channels < 1)
    throw std::invalid_argument(field_error("SRResNet", "channels and image_channels must be ≥ 1"));
  if (c.upscale != 2 && c.upscale != 4)
    throw std::invalid_argument(field_error("SRResNet", "upscale must be 2 or 4, got " + std::to_string(c.upscale)));
}

void validate(const SrganDiscriminatorConfig& c) {
  if (c.image_size < 16 || c.image_size % 16 != 0)
    throw std::invalid_argument(field_error("SRGAN discriminator", "image_size must be a positive multiple of 16 "
                                            "(four stride-2 convolutions), got " + std::to_string(c.image_size)));
  if (c.image_channels < 1 || c.width < 1 || c.dense_features < 1)
    throw std::invalid_argument(field_error("SRGAN discriminator", "image_channels, width, dense_features must be ≥ 1"));
}

// Module names (tools/pytorch_srgan.py, class Srresnet): head = Sequential(conv, PReLU); residual.i = Sequential(conv,
// BN, PReLU, conv, BN); trunk = Sequential(conv, BN); upsample.j = Sequential(conv, PixelShuffle, PReLU); tail = conv.
// Without batch norm the Sequentials simply lose their BN entries (residual.i = conv, PReLU, conv) and every
// convolution has a bias.
ValueId srresnet(Builder& b, ValueId lr_images, const SrresnetConfig& c) {
  validate(c);
  const Shape s = b.graph().shape(lr_images);
  if (s.rank() != 4 || s[1] != c.image_channels)
    shape_error(b.prefix() + "head.0", "SRResNet expects LR images [N, " + std::to_string(c.image_channels) +
                                           ", h, w], got " + s.str());
  const bool bn = c.batch_norm;
  ValueId x = conv(b, lr_images, "head.0", c.channels, 9, 1, true);
  const ValueId skip = x = b.prelu(x, "head.1");
  for (int i = 0; i < c.residual_blocks; ++i) {
    SequentialNames block{"residual." + std::to_string(i) + "."};
    ValueId r = conv(b, x, block.take(), c.channels, 3, 1, !bn);
    if (bn) r = b.batch_norm2d(r, block.take());
    r = b.prelu(r, block.take());
    r = conv(b, r, block.take(), c.channels, 3, 1, !bn);
    if (bn) r = b.batch_norm2d(r, block.take());
    x = b.add(x, r);
  }
  x = conv(b, x, "trunk.0", c.channels, 3, 1, !bn);
  if (bn) x = b.batch_norm2d(x, "trunk.1");
  x = b.add(x, skip);
  for (int j = 0, factor = 1; factor < c.upscale; ++j, factor *= 2) {
    const std::string block = "upsample." + std::to_string(j) + ".";
    x = conv(b, x, block + "0", 4 * c.channels, 3, 1, true);
    x = b.pixel_shuffle(x, 2);
    x = b.prelu(x, block + "2");
  }
  x = conv(b, x, "tail", c.image_channels, 9, 1, true);
  return b.tanh(x);
}

// Module names (class SrganDiscriminator): features = Sequential(conv, LeakyReLU, then conv, BN, LeakyReLU seven
// times); classifier = Sequential(Linear, LeakyReLU, Linear) after a flatten.
ValueId srgan_discriminator(Builder& b, ValueId hr_images, const SrganDiscriminatorConfig& c) {
  validate(c);
  const Shape s = b.graph().shape(hr_images);
  if (s.rank() != 4 || s[1] != c.image_channels || s[2] != c.image_size || s[3] != c.image_size)
    shape_error(b.prefix() + "features.0",
                "the SRGAN discriminator is configured for HR crops [N, " + std::to_string(c.image_channels) + ", " +
                    std::to_string(c.image_size) + ", " + std::to_string(c.image_size) + "], got " + s.str());
  SequentialNames features{"features."};
  ValueId x = conv(b, hr_images, features.take(), c.width, 3, 1, true);
  x = b.leaky_relu(x, 0.2f);
  features.skip();
  // Channels 64-64-128-128-256-256-512-512 (for width 64), strides 1, 2, 1, 2, ...: layer k ≥ 1 has
  // width·2^(k/2) channels and stride 2 when k is odd.
  for (int k = 1; k < 8; ++k) {
    x = conv(b, x, features.take(), c.width << (k / 2), 3, k % 2 == 1 ? 2 : 1, false);
    x = b.batch_norm2d(x, features.take());
    x = b.leaky_relu(x, 0.2f);
    features.skip();
  }
  SequentialNames classifier{"classifier."};
  x = dense(b, b.flatten(x), classifier.take(), c.dense_features);
  x = b.leaky_relu(x, 0.2f);
  classifier.skip();
  return dense(b, x, classifier.take(), 1);
}

}  // namespace gancu::models
