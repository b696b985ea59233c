#include "recipes/conditional_dcgan.h"

#include "models/conditional_dcgan.h"

namespace gancu::recipes {

ValueId ConditionalDcganRecipe::generator(Builder& b, ValueId z, ValueId labels, const DataShape& data) const {
  return models::conditional_dcgan_generator(b, z, labels, data.classes, model_for(data));
}

ValueId ConditionalDcganRecipe::discriminator(Builder& b, ValueId images, ValueId labels, const DataShape& data) const {
  return models::conditional_dcgan_discriminator(b, images, labels, data.classes, model_for(data));
}

}  // namespace gancu::recipes
