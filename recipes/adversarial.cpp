#include "recipes/adversarial.h"

#include <stdexcept>
#include <string>

namespace gancu::recipes {

void AdversarialConfig::add_options(std::vector<Option>& o) {
  o.push_back({"lr", "Adam learning rate (both networks)", &lr, 1e-12, 10});
  o.push_back({"beta1", "Adam beta1", &beta1, 0.0, 0.999999});
  o.push_back({"beta2", "Adam beta2", &beta2, 0.0, 0.999999});
  o.push_back({"d-steps", "Discriminator updates per generator update", &d_steps, 1, 100});
  o.push_back({"label-smoothing", "One-sided label smoothing (real target 0.9)", &label_smoothing});
  o.push_back({"label-noise", "Probability of flipping each D label", &label_noise, 0.0, 0.5});
  o.push_back({"saturating-g-loss", "Minimise log(1 - D(G(z))) instead of -log D(G(z))", &saturating_g_loss});
}

TrainingGraph AdversarialRecipe::training_step(const DataShape& data, int batch_size) const {
  check(data);
  if (conditional() && data.classes < 1)
    throw std::invalid_argument(name() + " needs labelled data (class labels go into both networks)");
  GanStepConfig c;
  c.batch_size = batch_size;
  c.latent = latent_shape();
  c.image = Shape{data.channels, data.height, data.width};
  c.classes = conditional() ? data.classes : 0;
  c.d_steps = training.d_steps;
  c.real_label = training.label_smoothing ? 0.9f : 1.0f;
  c.label_noise = training.label_noise;
  c.saturating_generator_loss = training.saturating_g_loss;
  c.adam_g.lr = c.adam_d.lr = training.lr;
  c.adam_g.beta1 = c.adam_d.beta1 = training.beta1;
  c.adam_g.beta2 = c.adam_d.beta2 = training.beta2;
  GanStep s = build_gan_step(
      c, [&](Builder& b, ValueId z, ValueId labels) { return generator(b, z, labels, data); },
      [&](Builder& b, ValueId x, ValueId labels) { return discriminator(b, x, labels, data); });

  TrainingGraph t;
  for (size_t k = 0; k < s.real_batches.size(); ++k) {
    t.inputs.push_back({s.real_batches[k], InputSource::kImages});
    if (c.classes > 0) {
      t.inputs.push_back({s.real_labels[k], InputSource::kLabels});
      t.inputs.push_back({s.fake_labels[k], InputSource::kRandomLabels});
    }
  }
  // PyTorch DCGAN's errD (= loss_d_real + loss_d_fake), errG, D(x), D(G(z)) before and after the D update.
  t.metrics = {{"loss_d", Metric::kSum, {s.loss_d_real, s.loss_d_fake}},
               {"loss_d_real", Metric::kSum, {s.loss_d_real}, false},
               {"loss_d_fake", Metric::kSum, {s.loss_d_fake}, false},
               {"loss_g", Metric::kSum, {s.loss_g}},
               {"d_x", Metric::kMeanSigmoid, {s.d_real_logits}},
               {"d_g_z1", Metric::kMeanSigmoid, {s.d_fake_logits}},
               {"d_g_z2", Metric::kMeanSigmoid, {s.g_fake_logits}}};
  t.images_per_step = batch_size * training.d_steps;
  t.graph = std::move(s.graph);
  return t;
}

SamplerGraph AdversarialRecipe::sampler(const DataShape& data, int n) const {
  check(data);
  GeneratorGraph g = build_generator(n, latent_shape(), conditional() ? data.classes : 0,
                                     [&](Builder& b, ValueId z, ValueId labels) { return generator(b, z, labels, data); });
  SamplerGraph s;
  s.z = g.z;
  s.labels = g.labels;
  s.images = g.images;
  s.graph = std::move(g.graph);
  return s;
}

void AdversarialRecipe::require_image_size(const DataShape& data, int size) {
  if (data.height != size || data.width != size)
    throw std::invalid_argument("images are " + std::to_string(data.height) + "x" + std::to_string(data.width) +
                                ", the model wants " + std::to_string(size));
}

std::vector<Network> AdversarialRecipe::networks() const {
  return {{"G.", "generator.safetensors"}, {"D.", "discriminator.safetensors"}};
}

}  // namespace gancu::recipes
