// The recipes trained by the GAN step of recipes/gan_step.h (k D updates, then one G update, Adam on both, BCE): what
// they share is here; each one adds its networks and their hyperparameters (recipes/dcgan.h, mlp_gan.h,
// conditional_dcgan.h).
#pragma once
#include "engine/builder.h"
#include "recipes/gan_step.h"
#include "recipes/recipe.h"

namespace gancu::recipes {

// The GAN step's hyperparameters, PyTorch DCGAN's defaults.
struct AdversarialConfig {
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999;
  int d_steps = 1;
  bool label_smoothing = false;  // one-sided: real target 0.9
  double label_noise = 0.0;      // probability of flipping each D label
  bool saturating_g_loss = false;
  void add_options(std::vector<Option>& options);
};

class AdversarialRecipe : public Recipe {
 public:
  AdversarialConfig training;

  TrainingGraph training_step(const DataShape& data, int batch_size) const override;
  SamplerGraph sampler(const DataShape& data, int n) const override;
  std::vector<Network> networks() const override;

 protected:
  // z's shape without the batch.
  virtual Shape latent_shape() const = 0;
  // Whether G and D take class labels (the data must be labelled).
  virtual bool conditional() const { return false; }
  // G: z [B, latent...] (+ labels [B]) → images [B, C, H, W]; D: images (+ labels) → one logit per image.
  virtual ValueId generator(Builder& b, ValueId z, ValueId labels, const DataShape& data) const = 0;
  virtual ValueId discriminator(Builder& b, ValueId images, ValueId labels, const DataShape& data) const = 0;
  // Throws std::invalid_argument unless the data's images are size×size.
  static void require_image_size(const DataShape& data, int size);
};

}  // namespace gancu::recipes
