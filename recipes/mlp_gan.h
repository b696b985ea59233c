// The MLP GAN (Goodfellow et al. 2014) trained as the Keras GAN() example trains it: models/mlp_gan.h's networks,
// the GAN step of recipes/gan_step.h, Adam 2e-4 with beta1 0.5, MNIST at 28x28.
#pragma once
#include "models/mlp_gan.h"
#include "recipes/adversarial.h"

namespace gancu::recipes {

class MlpGanRecipe : public AdversarialRecipe {
 public:
  models::MlpGanConfig model;  // channels come from the data

  std::string name() const override { return "mlp-gan"; }
  std::vector<Option> options() override;
  DataRequest data_request() const override { return {model.image_size, 0, false}; }
  void check(const DataShape& data) const override;

 protected:
  Shape latent_shape() const override { return Shape{model.latent_size}; }
  ValueId generator(Builder& b, ValueId z, ValueId labels, const DataShape& data) const override;
  ValueId discriminator(Builder& b, ValueId images, ValueId labels, const DataShape& data) const override;

 private:
  models::MlpGanConfig model_for(const DataShape& data) const;
};

}  // namespace gancu::recipes
