#include "models/classifier.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace gancu::models {
namespace {

// PyTorch's default for Conv2d and Linear (kaiming_uniform with a = √5, and the bias rule): U(−1/√fan_in, 1/√fan_in).
Init pytorch_default(int64_t fan_in) {
  const float bound = static_cast<float>(1.0 / std::sqrt(double(fan_in)));
  return Init::uniform(-bound, bound);
}

ValueId conv(Builder& b, ValueId x, int index, int out_channels, int kernel, int stride, bool bias) {
  const int64_t fan_in = b.graph().shape(x)[1] * kernel * kernel;
  const Init init = pytorch_default(fan_in);
  const std::string name = "features." + std::to_string(index);
  ValueId y = b.conv2d(x, name, out_channels, kernel, stride, /*pad=*/1, bias, init);
  if (bias) b.graph().value(b.graph().find(b.prefix() + name + ".bias")).init = init;
  return y;
}

ValueId linear(Builder& b, ValueId x, const std::string& name, int out_features) {
  const Init init = pytorch_default(b.graph().shape(x)[1]);
  return b.linear(x, name, out_features, /*bias=*/true, init, init);
}

constexpr float kSlope = 0.2f;

}  // namespace

void validate(const ClassifierConfig& c) {
  if (c.channels != 1 && c.channels != 3)
    throw std::invalid_argument("classifier: channels must be 1 or 3, got " + std::to_string(c.channels));
  if (c.image_size != 32)
    throw std::invalid_argument("classifier: images must be 32x32, got " + std::to_string(c.image_size));
  if (c.classes < 2 || c.width < 1 || c.features < 1)
    throw std::invalid_argument("classifier: needs ≥ 2 classes and positive width and features, got classes " +
                                std::to_string(c.classes) + ", width " + std::to_string(c.width) + ", features " +
                                std::to_string(c.features));
}

ClassifierOutputs classifier(Builder& b, ValueId images, const ClassifierConfig& c) {
  validate(c);
  const Shape in = b.graph().shape(images);
  if (in.rank() != 4 || in[1] != c.channels || in[2] != c.image_size || in[3] != c.image_size)
    shape_error("classifier", "expects images [N, " + std::to_string(c.channels) + ", 32, 32], got " + in.str());
  ValueId x = b.leaky_relu(conv(b, images, 0, c.width, 3, 1, true), kSlope);              // features.0-1, 32×32
  x = b.leaky_relu(b.batch_norm2d(conv(b, x, 2, 2 * c.width, 4, 2, false), "features.3"), kSlope);  // 2-4, 16×16
  x = b.leaky_relu(b.batch_norm2d(conv(b, x, 5, 4 * c.width, 4, 2, false), "features.6"), kSlope);  // 5-7, 8×8
  x = b.flatten(x);                                                                       // features.8
  ClassifierOutputs out;
  out.features = b.leaky_relu(linear(b, x, "features.9", c.features), kSlope);            // features.9-10
  out.logits = linear(b, out.features, "head", c.classes);
  return out;
}

}  // namespace gancu::models
