#include "recipes/super_resolution.h"

#include <map>
#include <stdexcept>
#include <string>

#include "engine/autodiff.h"
#include "engine/builder.h"
#include "recipes/gan_step.h"
#include "tools/io/safetensors.h"

namespace gancu::recipes {
SuperResolutionRecipe::SuperResolutionRecipe(bool adversarial) : adversarial_(adversarial) {}

std::vector<Option> SuperResolutionRecipe::options() {
  std::vector<Option> o;
  o.push_back({"residual-blocks", "Residual blocks of the SRResNet generator (B)", &residual_blocks, 1, 64});
  o.push_back({"no-batch-norm", "SRResNet without batch norm (as EDSR and ESRGAN): no colour casts from batch statistics "
               "in short runs", &no_batch_norm});
  o.push_back({"crop", "HR crop side in pixels (a multiple of 16 and of the scale)", &crop, 16, 1024});
  o.push_back({"scale", "Upscaling factor (2 or 4)", &scale, 2, 4});
  o.push_back({"lr", "Adam learning rate", &lr, 1e-12, 10});
  o.push_back({"beta1", "Adam beta1", &beta1, 0.0, 0.999999});
  o.push_back({"beta2", "Adam beta2", &beta2, 0.0, 0.999999});
  o.push_back({"lr-drop-step", "After this many steps, train with lr / 10 (the paper: half of the steps; 0: never)",
               &lr_drop_step, int64_t(0), int64_t(1) << 40});
  if (adversarial_) {
    o.push_back({"vgg19", "torchvision VGG19 weights (safetensors) for the content loss; none: pixel MSE", &vgg19});
    o.push_back({"vgg-convolutions", "Cut VGG19 after this convolution's ReLU (16: phi5,4; 4: phi2,2)",
                 &vgg_convolutions, 1, 16});
    o.push_back({"vgg-rescale", "Factor on the VGG features before the MSE (the paper: 1/12.75)", &vgg_rescale, 1e-6, 1e6});
    o.push_back({"adversarial-weight", "Weight of the adversarial loss in G's loss", &adversarial_weight, 0.0, 1e3});
    o.push_back({"generator-init", "An srresnet checkpoint or generator.safetensors: G's starting weights",
                 &generator_init});
  }
  return o;
}

DataRequest SuperResolutionRecipe::data_request() const {
  DataRequest r;
  r.image_size = crop;
  r.channels = 3;
  r.sr_scale = scale;
  return r;
}

models::SrresnetConfig SuperResolutionRecipe::generator_config() const {
  models::SrresnetConfig c;
  c.residual_blocks = residual_blocks;
  c.batch_norm = !no_batch_norm;
  c.upscale = scale;
  return c;
}

models::SrganDiscriminatorConfig SuperResolutionRecipe::discriminator_config() const {
  models::SrganDiscriminatorConfig c;
  c.image_size = crop;
  return c;
}

models::Vgg19Config SuperResolutionRecipe::vgg_config() const {
  models::Vgg19Config c;
  c.convolutions = vgg_convolutions;
  return c;
}

int SuperResolutionRecipe::receptive_radius() const {
  // Backwards from an HR pixel: the closing 9x9 convolution reaches 4 HR pixels; each upsampling block's pixel
  // shuffle maps a radius r at the finer grid to ceil(r / 2) at the coarser one (floor(y / 2) moves by at most that),
  // and its 3x3 convolution adds 1 there; then the closing 3x3 of the trunk, two 3x3 per residual block and the
  // opening 9x9 at LR.
  int r = 4;
  for (int factor = scale; factor > 1; factor /= 2) r = (r + 1) / 2 + 1;
  return r + 1 + 2 * residual_blocks + 4;
}

void SuperResolutionRecipe::check(const DataShape& data) const {
  models::validate(generator_config());
  if (scale != 2 && scale != 4) throw std::invalid_argument("--scale " + std::to_string(scale) + ": use 2 or 4");
  if (crop % 16 != 0 || crop % scale != 0)
    throw std::invalid_argument("--crop " + std::to_string(crop) + ": must be a multiple of 16 (the discriminator's "
                                "four stride-2 convolutions) and of the scale");
  if (adversarial_) models::validate(discriminator_config());
  if (data.channels != 3) throw std::invalid_argument(name() + " trains on RGB photos, not " +
                                                      std::to_string(data.channels) + "-channel images");
  if (data.height % scale != 0 || data.width % scale != 0)
    throw std::invalid_argument("images of " + std::to_string(data.height) + "x" + std::to_string(data.width) +
                                " are not a multiple of the scale " + std::to_string(scale));
}

int SuperResolutionRecipe::step_version(int64_t steps_done) const {
  return lr_drop_step > 0 && steps_done >= lr_drop_step ? 1 : 0;
}

TrainingGraph SuperResolutionRecipe::training_step(const DataShape& data, int batch_size) const {
  return training_step_version(data, batch_size, 0);
}

TrainingGraph SuperResolutionRecipe::training_step_version(const DataShape& data, int batch_size, int version) const {
  check(data);
  if (data.height != crop || data.width != crop)
    throw std::invalid_argument("the training crops are " + std::to_string(data.height) + "x" +
                                std::to_string(data.width) + ", --crop is " + std::to_string(crop));
  TrainingGraph t;
  Graph& g = t.graph;
  g.optimiser(kSrOptimiserG);
  if (adversarial_) g.optimiser(kSrOptimiserD);
  Builder b(g);
  b.set_training(true);
  const int lr_size = crop / scale;
  const ValueId hr = b.input("data.hr", Shape{batch_size, 3, crop, crop});
  const ValueId lr_images = b.input("data.lr", Shape{batch_size, 3, lr_size, lr_size});
  t.inputs = {{hr, InputSource::kHighRes}, {lr_images, InputSource::kLowRes}};
  t.images_per_step = batch_size;
  b.set_prefix("G.");
  const ValueId sr = models::srresnet(b, lr_images, generator_config());
  b.set_prefix("");
  const std::vector<ValueId> g_params = parameters_with_prefix(g, "G.");
  AdamParams adam;
  adam.lr = version == 0 ? lr : lr / 10;
  adam.beta1 = beta1;
  adam.beta2 = beta2;

  if (!adversarial_) {
    const ValueId pixel = b.mse(sr, hr);
    b.adam_step(kSrOptimiserG, g_params, append_backward(g, {pixel}, g_params), adam);
    t.metrics = {{"loss_pixel", Metric::kSum, {pixel}}};
    return t;
  }

  // D update: D(HR) → real, D(G(LR)) → fake; only D's weights are differentiated.
  auto run_discriminator = [&](ValueId x) {
    b.set_prefix("D.");
    const ValueId logits = models::srgan_discriminator(b, x, discriminator_config());
    b.set_prefix("");
    b.keep(logits);
    return logits;
  };
  const ValueId real_logits = run_discriminator(hr);
  const ValueId fake_logits = run_discriminator(sr);
  const Shape logit_shape = g.shape(real_logits);
  const ValueId loss_real = b.bce_with_logits(real_logits, b.target("label.real", logit_shape, 1.0f));
  const ValueId loss_fake = b.bce_with_logits(fake_logits, b.target("label.fake", logit_shape, 0.0f));
  const std::vector<ValueId> d_params = parameters_with_prefix(g, "D.");
  b.adam_step(kSrOptimiserD, d_params, append_backward(g, {loss_real, loss_fake}, d_params), adam);

  // G update through the updated D: content + w · (−log D(G(LR))).
  const ValueId g_logits = run_discriminator(sr);
  const ValueId adversarial_loss =
      b.bce_with_logits(g_logits, b.target("label.g", logit_shape, 1.0f), static_cast<float>(adversarial_weight));
  ValueId content;
  if (!vgg19.empty()) {
    const ValueId sr_features = models::vgg19_features(b, sr, vgg_config());
    const ValueId hr_features = models::vgg19_features(b, hr, vgg_config());
    content = b.mse(sr_features, hr_features, static_cast<float>(vgg_rescale * vgg_rescale));
  } else {
    content = b.mse(sr, hr);
  }
  b.adam_step(kSrOptimiserG, g_params, append_backward(g, {content, adversarial_loss}, g_params), adam);
  t.metrics = {{"loss_d", Metric::kSum, {loss_real, loss_fake}},
               {vgg19.empty() ? "loss_pixel" : "loss_vgg", Metric::kSum, {content}},
               {"loss_adversarial", Metric::kSum, {adversarial_loss}},
               {"d_x", Metric::kMeanSigmoid, {real_logits}},
               {"d_g_z1", Metric::kMeanSigmoid, {fake_logits}},
               {"d_g_z2", Metric::kMeanSigmoid, {g_logits}, false}};
  return t;
}

SamplerGraph SuperResolutionRecipe::sampler(const DataShape& data, int n) const {
  check(data);
  SamplerGraph s;
  Builder b(s.graph);
  b.set_training(false);
  s.z = b.input("lr", Shape{n, 3, data.height / scale, data.width / scale});
  b.set_prefix("G.");
  s.images = models::srresnet(b, s.z, generator_config());
  b.keep(s.images);
  return s;
}

std::vector<Network> SuperResolutionRecipe::networks() const {
  if (!adversarial_) return {{"G.", "generator.safetensors"}};
  return {{"G.", "generator.safetensors"}, {"D.", "discriminator.safetensors"}};
}

void SuperResolutionRecipe::load_frozen(ParameterStore& store, const Graph& graph) const {
  if (adversarial_ && !vgg19.empty()) models::load_vgg19(store, graph, vgg19, vgg_config());
}

void SuperResolutionRecipe::initialise(ParameterStore& store, const Graph& graph) const {
  (void)graph;
  if (!adversarial_ || generator_init.empty()) return;
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> tensors = load_safetensors(generator_init, &meta);
  require_finite(tensors, generator_init);
  // A training checkpoint names G's tensors "G.body.0.weight"; an exported state dict "body.0.weight".
  const bool state_dict = meta["format"] == "pytorch-state-dict";
  int loaded = 0;
  for (ParameterStore::Handle h = 0; h < store.size(); ++h) {
    const ParameterStore::Entry& e = store.entry(h);
    if (e.name.rfind("G.", 0) != 0 || (e.kind != ValueKind::kParameter && e.kind != ValueKind::kBuffer)) continue;
    const std::string name = state_dict ? e.name.substr(2) : e.name;
    const auto it = tensors.find(name);
    if (it == tensors.end())
      throw std::runtime_error(generator_init + ": missing tensor " + name + " (--generator-init takes an srresnet "
                               "checkpoint or its generator.safetensors with the same --residual-blocks and --scale)");
    if (it->second.shape() != e.shape)
      throw std::runtime_error(generator_init + ": tensor " + name + " has shape " + it->second.shape().str() +
                               ", the generator's is " + e.shape.str());
    store.write(h, it->second.data());
    ++loaded;
  }
  if (loaded == 0) throw std::runtime_error(generator_init + ": the store holds no generator weights to load");
}

}  // namespace gancu::recipes
