#include "recipes/gan_step.h"

#include <stdexcept>

#include "engine/autodiff.h"

namespace gancu::recipes {
namespace {

// [n, dims...]
Shape batched(int64_t n, const Shape& item) {
  std::vector<int64_t> dims{n};
  for (int i = 0; i < item.rank(); ++i) dims.push_back(item[i]);
  return Shape(dims);
}

}  // namespace

std::vector<ValueId> parameters_with_prefix(const Graph& g, const std::string& prefix) {
  std::vector<ValueId> ids;
  for (const Value& v : g.values())
    if (v.kind == ValueKind::kParameter && v.name.rfind(prefix, 0) == 0) ids.push_back(v.id);
  return ids;
}

GanStep build_gan_step(const GanStepConfig& c, const NetworkFn& generator, const NetworkFn& discriminator) {
  if (c.d_steps < 1) throw std::invalid_argument("d_steps must be at least 1");
  if (c.classes < 0) throw std::invalid_argument("classes must be ≥ 0");
  GanStep step;
  // G's counter first, then D's, whatever order the updates come in (checkpoints list them in store order).
  step.graph.optimiser(kOptimiserG);
  step.graph.optimiser(kOptimiserD);
  Builder b(step.graph);
  b.set_training(true);
  const Shape image = batched(c.batch_size, c.image);
  const Shape labels{c.batch_size, 1, 1, 1};
  const Shape classes{c.batch_size};

  auto run_generator = [&](const std::string& z_name, ValueId fake_labels) {
    b.set_prefix("");
    ValueId z = b.normal(z_name, batched(c.batch_size, c.latent));
    b.set_prefix("G.");
    ValueId fake = generator(b, z, fake_labels);
    if (b.graph().shape(fake) != image)
      shape_error("generator", "produces " + b.graph().shape(fake).str() + " but the data is " + image.str());
    return fake;
  };
  auto run_discriminator = [&](ValueId x, ValueId x_labels) {
    b.set_prefix("D.");
    ValueId logits = discriminator(b, x, x_labels);
    b.set_prefix("");
    if (b.graph().shape(logits).numel() != c.batch_size)
      shape_error("discriminator", "must give one logit per image, gives " + b.graph().shape(logits).str());
    b.keep(logits);
    return logits;
  };

  ValueId fake = kNoValue, fake_labels = kNoValue;
  for (int k = 0; k < c.d_steps; ++k) {
    const std::string suffix = std::to_string(k);
    b.set_prefix("");
    ValueId real = b.input("data.real" + suffix, image);
    step.real_batches.push_back(real);
    ValueId real_labels = kNoValue;
    if (c.classes > 0) {
      real_labels = b.input("data.label" + suffix, classes);
      fake_labels = b.input("fake.label" + suffix, classes);
      step.real_labels.push_back(real_labels);
      step.fake_labels.push_back(fake_labels);
    }
    fake = run_generator("z" + suffix, fake_labels);
    ValueId real_logits = run_discriminator(real, real_labels);
    ValueId real_target = b.target("label.real" + suffix, labels, c.real_label, c.label_noise);
    ValueId loss_real = b.bce_with_logits(real_logits, real_target);
    ValueId fake_logits = run_discriminator(fake, fake_labels);  // gradients stop at fake: only D's parameters are differentiated
    ValueId fake_target = b.target("label.fake" + suffix, labels, 0.0f, c.label_noise);
    ValueId loss_fake = b.bce_with_logits(fake_logits, fake_target);
    if (k == 0) {
      step.d_params = parameters_with_prefix(step.graph, "D.");
      step.g_params = parameters_with_prefix(step.graph, "G.");
    }
    std::vector<ValueId> grads = append_backward(step.graph, {loss_real, loss_fake}, step.d_params);
    b.adam_step(kOptimiserD, step.d_params, grads, c.adam_d);
    step.loss_d_real = loss_real;
    step.loss_d_fake = loss_fake;
    step.d_real_logits = real_logits;
    step.d_fake_logits = fake_logits;
  }

  // Generator update on the last fake batch (and its labels), through the updated discriminator.
  ValueId g_logits = run_discriminator(fake, fake_labels);
  ValueId loss_g;
  if (c.saturating_generator_loss) {
    ValueId zeros = b.target("label.g", labels, 0.0f);
    loss_g = b.bce_with_logits(g_logits, zeros, -1.0f);  // minimise log(1 − D(G(z))) = −BCE(logit, 0)
  } else {
    ValueId ones = b.target("label.g", labels, 1.0f);
    loss_g = b.bce_with_logits(g_logits, ones);  // minimise −log D(G(z))
  }
  std::vector<ValueId> g_grads = append_backward(step.graph, {loss_g}, step.g_params);
  b.adam_step(kOptimiserG, step.g_params, g_grads, c.adam_g);
  step.loss_g = loss_g;
  step.g_fake_logits = g_logits;
  return step;
}

GeneratorGraph build_generator(int n, const Shape& latent, int classes, const NetworkFn& generator) {
  GeneratorGraph out;
  Builder b(out.graph);
  b.set_training(false);
  out.z = b.input("z", batched(n, latent));
  if (classes > 0) out.labels = b.input("labels", Shape{n});
  b.set_prefix("G.");
  out.images = generator(b, out.z, out.labels);
  b.keep(out.images);
  return out;
}

}  // namespace gancu::recipes
