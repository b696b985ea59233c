#include "models/mlp_gan.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace gancu::models {
namespace {

// Keras' glorot_uniform: U(−b, b), b = √(6 / (fan_in + fan_out)).
Init glorot_uniform(int64_t fan_in, int64_t fan_out) {
  const float b = static_cast<float>(std::sqrt(6.0 / double(fan_in + fan_out)));
  return Init::uniform(-b, b);
}

// A Dense layer of the Sequential: "model.<index>", bias zero.
ValueId dense(Builder& b, ValueId x, int index, int out_features) {
  const int64_t in_features = b.graph().shape(x)[1];
  return b.linear(x, "model." + std::to_string(index), out_features, true, glorot_uniform(in_features, out_features));
}

constexpr double kKerasBatchNormEps = 1e-3, kKerasBatchNormMomentum = 0.2;  // Keras momentum 0.8

}  // namespace

void validate(const MlpGanConfig& c) {
  if (c.image_size < 1 || c.image_size > 4096 || c.channels < 1 || c.latent_size < 1)
    throw std::invalid_argument("MLP GAN sizes must be positive (image size " + std::to_string(c.image_size) + ")");
}

ValueId mlp_generator(Builder& b, ValueId z, const MlpGanConfig& c) {
  validate(c);
  ValueId x = z;
  int index = 0;
  for (int width : {256, 512, 1024}) {
    x = dense(b, x, index, width);                          // model.0, 3, 6
    x = b.leaky_relu(x, 0.2f);                              // model.1, 4, 7
    x = b.batch_norm1d(x, "model." + std::to_string(index + 2), {Init::kOnes, 0, 0}, kKerasBatchNormEps,
                       kKerasBatchNormMomentum);            // model.2, 5, 8
    index += 3;
  }
  x = dense(b, x, index, c.channels * c.image_size * c.image_size);  // model.9
  x = b.tanh(x);                                                      // model.10
  const int64_t n = b.graph().shape(z)[0];
  return b.reshape(x, Shape{n, c.channels, c.image_size, c.image_size});
}

ValueId mlp_discriminator(Builder& b, ValueId images, const MlpGanConfig& c) {
  validate(c);
  ValueId x = b.flatten(images);  // model.0
  x = dense(b, x, 1, 512);
  x = b.leaky_relu(x, 0.2f);      // model.2
  x = dense(b, x, 3, 256);
  x = b.leaky_relu(x, 0.2f);      // model.4
  return dense(b, x, 5, 1);       // one logit per image; the sigmoid is folded into the loss
}

}  // namespace gancu::models
