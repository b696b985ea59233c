// The feature-space classifier of gancu's FID and KID (tools/eval/): a small CNN that gancu trains itself on each
// labelled data set, since Inception weights cannot be had here. Its penultimate layer ("features") is the space in
// which real and generated images are compared. Named as this PyTorch module, so its weights load into it:
//
//   C×32×32 in [-1, 1]
//   features.0   Conv2d(C, w, 3, 1, 1)              → 32×32    features.1   LeakyReLU(0.2)
//   features.2   Conv2d(w, 2w, 4, 2, 1, bias=False) → 16×16    features.3   BatchNorm2d(2w)   features.4  LeakyReLU
//   features.5   Conv2d(2w, 4w, 4, 2, 1, bias=False)→ 8×8      features.6   BatchNorm2d(4w)   features.7  LeakyReLU
//   features.8   Flatten                                       features.9   Linear(4w·8·8, F) features.10 LeakyReLU
//   head         Linear(F, K)                        → logits
//
// with w = width (32), F = features (128), K = classes. Weights start as PyTorch's defaults: U(−1/√fan_in, 1/√fan_in)
// for convolution and linear weights and biases, batch norm γ = 1, β = 0.
#pragma once
#include "engine/builder.h"

namespace gancu::models {

struct ClassifierConfig {
  int channels = 1;
  int image_size = 32;
  int classes = 10;
  int width = 32;
  int features = 128;
};

struct ClassifierOutputs {
  ValueId features = kNoValue;  // [N, features], after the LeakyReLU: FID's feature layer
  ValueId logits = kNoValue;    // [N, classes]
};

// Throws std::invalid_argument for a configuration the network cannot take (the image size must be 32).
void validate(const ClassifierConfig& config);

// images [N, channels, 32, 32]. Batch norm follows the builder's training mode.
ClassifierOutputs classifier(Builder& b, ValueId images, const ClassifierConfig& config);

}  // namespace gancu::models
