// A conditional DCGAN (Mirza and Osindero 2014, on DCGAN's networks): the class label is joined to both networks'
// inputs as one-hot channels, so the networks are models/dcgan.h's with wider first layers and the same names.
//
//   G: [z ; one_hot(y)] [N, nz + K, 1, 1] → DCGAN generator → images [N, C, S, S]
//   D: [x ; one_hot(y) broadcast to S×S] [N, C + K, S, S] → DCGAN discriminator → one logit
//
// The PyTorch twin is tools/pytorch_conditional_dcgan.py.
#pragma once
#include "engine/builder.h"
#include "models/dcgan.h"

namespace gancu::models {

// labels [N]: class indices 0..classes−1 (as floats).
ValueId conditional_dcgan_generator(Builder& b, ValueId z, ValueId labels, int classes, const DcganConfig& config);
ValueId conditional_dcgan_discriminator(Builder& b, ValueId images, ValueId labels, int classes, const DcganConfig& config);

}  // namespace gancu::models
