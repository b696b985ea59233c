// SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
// fig. 4): the SRResNet generator and the SRGAN discriminator, named as the PyTorch modules of tools/pytorch_srgan.py
// (nn.Sequential indices), so gancu's weights load into them with strict=True.
//
//   G (SRResNet): LR [N, C, h, w] → conv 9x9 C→64 + PReLU → B residual blocks (conv3x3-BN-PReLU-conv3x3-BN, + identity)
//      → conv3x3-BN, + the first PReLU's output (the long skip) → log2(upscale) blocks of conv3x3 64→256, pixel
//      shuffle x2, PReLU → conv 9x9 64→C → tanh → HR [N, C, h·upscale, w·upscale]
//   D: HR [N, C, S, S] → conv3x3 C→64 + LeakyReLU 0.2 → seven conv3x3-BN-LeakyReLU 0.2 (64 s2, 128 s1, 128 s2, 256 s1,
//      256 s2, 512 s1, 512 s2) → flatten (512·(S/16)²) → Dense 1024 → LeakyReLU 0.2 → Dense 1 (a logit)
//
// Choices the paper leaves open, and why:
// - Output tanh. Images are in [−1, 1] in this project, as the paper scales its HR images; tanh bounds G's output to
//   the range D sees for real images and the pixel loss's target has, as most reimplementations do. The paper's
//   figure draws no final activation.
// - PReLU with one slope per channel (nn.PReLU(64)), the channel-wise form of He et al. 2015 that the paper cites.
//   The authors published no code; several reimplementations use nn.PReLU() (one slope per layer) instead.
// - No bias on a convolution followed by batch norm (the mean subtraction cancels it; its gradient would be 0);
//   PyTorch's default bias everywhere else. Convolution and dense weights start as PyTorch's defaults,
//   U(−1/√fan_in, 1/√fan_in); batch norm gamma 1, beta 0; PReLU slopes 0.25.
// At the defaults G has 1,548,547 parameters (the paper's ~1.5 M), D 23,563,649 (18.9 M of them in the first dense
// layer), as PyTorch counts the twins' parameters.
#pragma once
#include "engine/builder.h"

namespace gancu::models {

struct SrresnetConfig {
  int residual_blocks = 16;  // B
  int channels = 64;         // feature maps of the trunk
  int upscale = 4;           // 2 or 4: one pixel-shuffle x2 block per factor of 2
  int image_channels = 3;
  // The paper's batch norms in the residual blocks and after the trunk. Without them (as EDSR and ESRGAN train their
  // SRResNets) train and eval mode compute the same function. With them, short runs on few photos leave eval-mode
  // colour casts: the running statistics are not the batch statistics the network trained with (measured here after
  // 1000 steps on the default photos: mean errors of about -6, +6, -3 levels in R, G, B on the validation crops).
  bool batch_norm = true;
};

struct SrganDiscriminatorConfig {
  int image_size = 96;        // the HR crop, square; a multiple of 16 (four stride-2 convolutions)
  int image_channels = 3;
  int width = 64;             // the first convolution's channels; the later ones double every second layer to 8·width
  int dense_features = 1024;  // the hidden dense layer
};

// Throw std::invalid_argument naming the bad field.
void validate(const SrresnetConfig& config);
void validate(const SrganDiscriminatorConfig& config);

// lr_images [N, image_channels, h, w] → HR images [N, image_channels, h·upscale, w·upscale] in (−1, 1).
ValueId srresnet(Builder& b, ValueId lr_images, const SrresnetConfig& config);

// hr_images [N, image_channels, image_size, image_size] → logits [N, 1]. Another input shape throws
// std::invalid_argument at build time (the dense layer's size is fixed by image_size).
ValueId srgan_discriminator(Builder& b, ValueId hr_images, const SrganDiscriminatorConfig& config);

}  // namespace gancu::models
