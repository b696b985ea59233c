#include "recipes/mlp_gan.h"

#include <stdexcept>
#include <string>

namespace gancu::recipes {

std::vector<Option> MlpGanRecipe::options() {
  std::vector<Option> o;
  o.push_back({"image-size", "Image size (28: MNIST-like data as it is)", &model.image_size, 4, 256});
  o.push_back({"nz", "Latent size", &model.latent_size, 1, 4096});
  training.add_options(o);
  return o;
}

models::MlpGanConfig MlpGanRecipe::model_for(const DataShape& data) const {
  models::MlpGanConfig c = model;
  c.channels = data.channels;
  return c;
}

void MlpGanRecipe::check(const DataShape& data) const {
  models::validate(model_for(data));
  require_image_size(data, model.image_size);
}

ValueId MlpGanRecipe::generator(Builder& b, ValueId z, ValueId, const DataShape& data) const {
  return models::mlp_generator(b, z, model_for(data));
}

ValueId MlpGanRecipe::discriminator(Builder& b, ValueId images, ValueId, const DataShape& data) const {
  return models::mlp_discriminator(b, images, model_for(data));
}

}  // namespace gancu::recipes
