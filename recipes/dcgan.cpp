#include "recipes/dcgan.h"

#include <stdexcept>
#include <string>

namespace gancu::recipes {

void DcganRecipe::add_model_options(std::vector<Option>& o) {
  o.push_back({"image-size", "Image size (power of two ≥ 8; MNIST-like data is padded to 32)", &model.image_size, 8, 1024});
  o.push_back({"nz", "Latent size", &model.latent_size, 1, 4096});
  o.push_back({"ngf", "Generator width", &model.generator_width, 1, 4096});
  o.push_back({"ndf", "Discriminator width", &model.discriminator_width, 1, 4096});
  o.push_back({"d-dropout", "Dropout probability after each LeakyReLU of D", &model.discriminator_dropout, 0.0, 0.9});
}

std::vector<Option> DcganRecipe::options() {
  std::vector<Option> o;
  add_model_options(o);
  training.add_options(o);
  return o;
}

models::DcganConfig DcganRecipe::model_for(const DataShape& data) const {
  models::DcganConfig c = model;
  c.channels = data.channels;
  return c;
}

void DcganRecipe::check(const DataShape& data) const {
  models::validate(model_for(data));
  require_image_size(data, model.image_size);
}

ValueId DcganRecipe::generator(Builder& b, ValueId z, ValueId, const DataShape& data) const {
  return models::dcgan_generator(b, z, model_for(data));
}

ValueId DcganRecipe::discriminator(Builder& b, ValueId images, ValueId, const DataShape& data) const {
  return models::dcgan_discriminator(b, images, model_for(data));
}

}  // namespace gancu::recipes
