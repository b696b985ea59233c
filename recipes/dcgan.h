// DCGAN (Radford et al. 2015) trained as PyTorch's examples/dcgan trains it: networks of models/dcgan.h, the GAN step
// of recipes/gan_step.h with its variants (--d-steps, label smoothing, label noise, D dropout, the saturating loss).
#pragma once
#include "models/dcgan.h"
#include "recipes/adversarial.h"

namespace gancu::recipes {

class DcganRecipe : public AdversarialRecipe {
 public:
  models::DcganConfig model;  // channels come from the data
  DcganRecipe() { model.image_size = 32; }  // DCGAN-32: Fashion-MNIST and MNIST padded from 28

  std::string name() const override { return "dcgan"; }
  std::vector<Option> options() override;
  DataRequest data_request() const override { return {model.image_size, 0, false}; }
  void check(const DataShape& data) const override;

 protected:
  Shape latent_shape() const override { return Shape{model.latent_size, 1, 1}; }
  ValueId generator(Builder& b, ValueId z, ValueId labels, const DataShape& data) const override;
  ValueId discriminator(Builder& b, ValueId images, ValueId labels, const DataShape& data) const override;
  models::DcganConfig model_for(const DataShape& data) const;  // `model` with the data's channels
  // The options of the networks (shared with the conditional DCGAN).
  void add_model_options(std::vector<Option>& options);
};

}  // namespace gancu::recipes
