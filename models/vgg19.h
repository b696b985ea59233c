// VGG19's convolutional features (torchvision.models.vgg19().features), frozen: the feature network of SRGAN's
// content loss (Ledig et al. 2017). Layout and names exactly as torchvision's, so its state dict loads by name:
//
//   features.0  Conv2d(3, 64, 3, 1, 1)    .1 ReLU   .2  Conv2d(64, 64)    .3 ReLU   .4  MaxPool2d(2, 2)
//   features.5  Conv2d(64, 128)           .6 ReLU   .7  Conv2d(128, 128)  .8 ReLU   .9  MaxPool2d(2, 2)
//   features.10 .12 .14 .16 Conv2d(…, 256) each followed by ReLU                    .18 MaxPool2d(2, 2)
//   features.19 .21 .23 .25 Conv2d(…, 512) each followed by ReLU                    .27 MaxPool2d(2, 2)
//   features.28 .30 .32 .34 Conv2d(512, 512) each followed by ReLU                  (.36 MaxPool2d: never declared)
//
// every convolution 3×3, stride 1, padding 1, with bias. The network is cut after the ReLU of its `convolutions`-th
// convolution: 16 is φ5,4 (the ReLU at features.35, SRGAN's VGG54), 4 is φ2,2 (features.8, VGG22). Layers past the
// cut are not declared, so their weights are neither needed nor loaded.
//
// Input: images in [−1, 1] (the generator's tanh range), mapped to [0, 1] and normalised with ImageNet's mean
// (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225): one fixed per-channel affine y = x/(2σ) + (1 − 2μ)/(2σ),
// run as a frozen 1×1 convolution ("normalize.weight" diagonal, "normalize.bias") whose values load_vgg19 computes
// (they are not in torchvision's state dict). Its backward is the convolution's input gradient, so the content
// loss reaches the generator's output through it.
#pragma once
#include <string>

#include "engine/builder.h"
#include "engine/parameter_store.h"

namespace gancu::models {

struct Vgg19Config {
  int convolutions = 16;           // cut after this convolution's ReLU, 1…16 (16: φ5,4; 4: φ2,2)
  std::string prefix = "VGG.";     // the frozen values' names: prefix + "features.N.weight"
};

// Throws std::invalid_argument for a cut outside 1…16 or an empty prefix.
void validate(const Vgg19Config& config);
// The torchvision index of the `k`-th convolution (1-based): 1 → 0, 4 → 7, 16 → 34; its ReLU is the next index.
int vgg19_conv_index(int k);

// images [N, 3, H, W] in [−1, 1] → the features [N, C, H/2^p, W/2^p] after the cut (p: the pools before it). Declares
// frozen weights whatever the builder's mode (the builder's prefix and frozen mode are restored after). Gradients flow
// to `images`; the weights get none.
ValueId vgg19_features(Builder& b, ValueId images, const Vgg19Config& config = {});

// Loads the weights vgg19_features declared in `graph` from a safetensors file holding torchvision's state dict (or
// its `features.*` part; other tensors are ignored), and the normalisation constants. A missing tensor, a wrong
// shape, a dtype other than F32 or a non-finite value throws one line naming the file and the tensor.
void load_vgg19(ParameterStore& store, const Graph& graph, const std::string& path, const Vgg19Config& config = {});

}  // namespace gancu::models
