#include "tools/gan/generator.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "tools/io/safetensors.h"

namespace gancu::app {

LoadedGenerator::LoadedGenerator(const std::string& file, const std::string& device, int batch,
                                 const recipes::DataShape* shape)
    : batch_(batch) {
  namespace fs = std::filesystem;
  if (batch < 1) throw std::invalid_argument("generator batch must be positive");
  path_ = fs::is_directory(file) ? (fs::path(file) / "checkpoint.safetensors").string() : file;
  std::map<std::string, Tensor> tensors = load_safetensors(path_, &meta_);
  require_finite(tensors, path_);
  recorded_ = recorded_recipe(meta_, path_);
  const std::string generator_prefix = recorded_.recipe->networks().at(0).prefix;  // "G."
  // A training checkpoint names G's tensors "G.main.0.weight"; a state dict names them "main.0.weight".
  std::string file_prefix = generator_prefix;
  if (meta_["format"] == "pytorch-state-dict") {
    if (meta_["network"] + "." != generator_prefix)
      throw std::runtime_error(path_ + ": holds network '" + meta_["network"] + "', not the generator");
    file_prefix.clear();
  }
  backend_ = make_backend(device, "custom", "fp32", false);
  recipes::SamplerGraph g = recorded_.recipe->sampler(shape ? *shape : recorded_.shape, batch);
  z_ = g.z;
  labels_ = g.labels;
  images_ = g.images;
  conditional_ = labels_ != kNoValue;
  latent_ = g.graph.shape(g.z);
  latent_[0] = 1;
  store_ = std::make_unique<ParameterStore>(*backend_, 1);
  plan_ = std::make_unique<Plan>(std::move(g.graph), *store_, StepAdvance::kKeep);
  for (ParameterStore::Handle h = 0; h < store_->size(); ++h) {
    const ParameterStore::Entry& e = store_->entry(h);
    const std::string name = file_prefix + e.name.substr(generator_prefix.size());
    auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error(path_ + ": missing tensor " + name);
    if (it->second.shape() != e.shape)
      throw std::runtime_error(path_ + ": tensor " + name + " has shape " + it->second.shape().str() + ", expected " +
                               e.shape.str());
    store_->write(h, it->second.data());
  }
}

LoadedGenerator::~LoadedGenerator() = default;

Tensor LoadedGenerator::generate(const Tensor& z, const Tensor* labels) {
  const int64_t n = z.dim(0), per_latent = latent_.numel();
  if (z.numel() != n * per_latent)
    throw std::invalid_argument("generate: latent vectors " + z.shape().str() + ", the generator takes " +
                                std::to_string(per_latent) + " values per image");
  if (conditional_ && (!labels || labels->numel() != n))
    throw std::invalid_argument("generate: a conditional generator needs one label per image");
  const Shape& one = plan_->graph().shape(images_);
  const int64_t per_image = one.numel() / batch_;
  Tensor out(Shape{n, one[1], one[2], one[3]});
  std::vector<float> zb(size_t(batch_ * per_latent), 0.0f), lb(size_t(batch_), 0.0f);
  for (int64_t first = 0; first < n; first += batch_) {
    const int64_t count = std::min<int64_t>(batch_, n - first);  // a short last batch runs padded with zeros
    std::fill(zb.begin(), zb.end(), 0.0f);
    std::copy(z.data() + first * per_latent, z.data() + (first + count) * per_latent, zb.begin());
    plan_->write(z_, zb.data());
    if (conditional_) {
      std::fill(lb.begin(), lb.end(), 0.0f);
      std::copy(labels->data() + first, labels->data() + first + count, lb.begin());
      plan_->write(labels_, lb.data());
    }
    plan_->run();
    const Tensor images = plan_->read(images_);
    std::copy(images.data(), images.data() + count * per_image, out.data() + first * per_image);
  }
  return out;
}

}  // namespace gancu::app
