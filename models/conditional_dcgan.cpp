#include "models/conditional_dcgan.h"

namespace gancu::models {

ValueId conditional_dcgan_generator(Builder& b, ValueId z, ValueId labels, int classes, const DcganConfig& config) {
  return dcgan_generator(b, b.concat({z, b.one_hot(labels, classes, 1, 1)}), config);
}

ValueId conditional_dcgan_discriminator(Builder& b, ValueId images, ValueId labels, int classes, const DcganConfig& config) {
  const Shape s = b.graph().shape(images);  // a copy: the value list grows below
  const ValueId label_maps = b.one_hot(labels, classes, static_cast<int>(s[2]), static_cast<int>(s[3]));
  return dcgan_discriminator(b, b.concat({images, label_maps}), config);
}

}  // namespace gancu::models
