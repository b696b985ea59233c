// The Trainer: one recipe's training step and sampler over one parameter store; checkpoints and state dicts.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/rng.h"
#include "engine/comm_nccl.h"
#include "engine/cuda_backend.h"
#include "engine/data_parallel.h"
#include "tools/gan/train.h"
#include "tools/io/safetensors.h"

namespace gancu::app {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kFormat = "gancu-run-1";
constexpr const char* kDcganFormat = "gancu-dcgan-1";  // DCGAN checkpoints from before recipes: still read
constexpr uint64_t kRandomLabelStream = 0x1ABE1;       // + input index: the fake batches' class labels

double mean_sigmoid(const Tensor& logits) {
  double s = 0;
  for (int64_t i = 0; i < logits.numel(); ++i) s += 1.0 / (1.0 + std::exp(-double(logits[i])));
  return logits.numel() ? s / double(logits.numel()) : 0.0;
}

json parse_object(const std::string& text, const std::string& file, const char* what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw std::runtime_error(file + ": bad " + std::string(what) + " metadata");
  return j;
}

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& file) {
  const auto it = meta.find(key);
  try {
    if (it != meta.end()) return std::stoll(it->second);
  } catch (const std::exception&) {
  }
  throw std::runtime_error(file + ": checkpoint metadata lacks a valid '" + key + "'");
}

}  // namespace

double StepMetrics::at(const std::string& name) const {
  for (const auto& [key, value] : values)
    if (key == name) return value;
  throw std::out_of_range("no metric named '" + name + "'");
}

std::unique_ptr<Backend> make_backend(const std::string& device, const std::string& kernels, const std::string& math,
                                      bool cuda_graph, const std::string& kernel_choice_file) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "reference") return make_reference_backend();
  if (device == "cuda") {
    if (!cuda_backend_available())
      throw std::runtime_error("--device cuda: no usable CUDA device (or this build has no CUDA); use --device cpu");
    CudaBackendOptions o;
    if (kernels != "custom" && kernels != "cudnn" && kernels != "auto")
      throw std::invalid_argument("--kernels " + kernels + ": use custom, cudnn or auto");
    if (math != "tf32" && math != "fp32") throw std::invalid_argument("--math " + math + ": use tf32 or fp32");
    o.kernels = kernels == "cudnn"  ? CudaBackendOptions::kCudnn
                : kernels == "auto" ? CudaBackendOptions::kAuto
                                    : CudaBackendOptions::kCustom;
    o.kernel_choice_file = kernel_choice_file;
    o.math = math == "fp32" ? cuda::MathMode::kFp32 : cuda::MathMode::kTf32;
    o.graph_replay = cuda_graph;
    return make_cuda_backend(o);
  }
  throw std::invalid_argument("--device " + device + ": unknown (use cpu or cuda)");
}

recipes::DataShape data_shape(const ImageSet& data) {
  return {data.channels, data.height, data.width, data.labelled() ? data.num_classes() : 0};
}

std::vector<recipes::Option> TrainOptions::recorded_options() {
  return {
      {"data", "fashion-mnist | mnist | IDX file | CIFAR-10 batch/folder | PNG folder (sub-folders: classes)", &data},
      {"class", "Train on one class of a labelled set (its index or name, e.g. 7, sneaker, frog)", &data_class},
      {"channels", "1 or 3 (0: as the data)", &channels, 0, 3},
      {"batch-size", "Batch size (per rank under mpirun)", &batch_size, 2, 65536},
      {"seed", "Seed of every random stream", &seed},
  };
}

// The sampler: the recipe's inference graph for a batch of n, bound to the run's store.
struct Trainer::Sampler {
  int n = 0;
  std::unique_ptr<Plan> plan;
  ValueId z = kNoValue, labels = kNoValue, images = kNoValue;
};

ImageSet sr_crop_shape(const PhotoSet& photos, int crop) {
  ImageSet shape;
  shape.channels = 3;
  shape.height = shape.width = crop;
  shape.source = photos.source + " (" + std::to_string(photos.photos.size()) + " photos, " +
                 std::to_string(photos.total_pixels() / 1000000) + " megapixels)";
  return shape;
}

Trainer::Trainer(const TrainOptions& options, const recipes::Recipe& recipe, const ImageSet& data, const PhotoSet* photos)
    : options_(options), recipe_(recipe), data_(data), shape_(data_shape(data)), group_(process_group()) {
  const int sr_scale = recipe.data_request().sr_scale;
  if (sr_scale > 0) {
    if (!photos) throw std::invalid_argument(recipe.name() + " trains on photos, and none were given");
    crops_.emplace(*photos, data.height, sr_scale);
  } else {
    loader_.emplace(data, options.batch_size * group_.size(), options.seed);
  }
  try {
    recipe_.check(shape_);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(data.source + ": " + e.what());
  }
  data_parallel_ = started_by_mpi_launcher() || options.sync_bn;
  if (options.sync_bn && options.device == "cuda")
    throw std::invalid_argument("--sync-bn: the CUDA backend has no synchronised batch norm (it runs on --device cpu)");
  if (data_parallel_ && options.device == "cuda") use_cuda_device_of_rank(group_.local_rank());
  backend_ = make_backend(options.device, options.kernels, options.math, options.cuda_graph, options.kernel_choice_file);
  if (options.profile) backend_->enable_profiling();
  store_ = std::make_unique<ParameterStore>(*backend_, options.seed);
  build_step_plan(recipe_.step_version(0));  // parameters initialised from the run's seed
  recipe_.load_frozen(*store_, plan_->graph());  // frozen weights come from their own files, never from checkpoints
  // Then every random op of this rank draws from its own streams (rank 0 keeps the run's seed, so a group of one is
  // the plain run): each rank's noise, label noise and dropout differ, as with a per-rank seed in PyTorch DDP.
  rank_seed_ = options.seed ^ (0x9E3779B97F4A7C15ull * uint64_t(group_.rank()));
  store_->state().seed = rank_seed_;
  const size_t image_floats = size_t(data.channels) * size_t(data.height) * size_t(data.width);
  batch_.resize(size_t(options.batch_size) * image_floats);
  labels_.resize(static_cast<size_t>(options.batch_size));
  batch_labels_.resize(static_cast<size_t>(options.batch_size));
  group_batch_.resize(batch_.size() * size_t(group_.size()));
  group_labels_.resize(batch_labels_.size() * size_t(group_.size()));
}

void Trainer::build_step_plan(int version) {
  recipes::TrainingGraph step = recipe_.training_step_version(shape_, options_.batch_size, version);
  if (data_parallel_) {
    DataParallelOptions dp;
    dp.bucket_bytes = int64_t(options_.bucket_mb) << 20;
    dp.sync_batch_norm = options_.sync_bn;
    make_data_parallel(step.graph, dp);
  }
  plan_.reset();  // its arena is released before the next one is allocated; the store keeps every persistent value
  plan_ = std::make_unique<Plan>(std::move(step.graph), *store_);
  inputs_ = std::move(step.inputs);
  metrics_ = std::move(step.metrics);
  images_per_step_ = step.images_per_step * group_.size();
  step_version_ = version;
}

void Trainer::broadcast_store_from_rank0() {
  if (group_.size() == 1) return;
  for (ParameterStore::Handle h = 0; h < store_->size(); ++h) {
    Tensor t = store_->read(h);
    group_.broadcast(t.data(), t.numel(), 0);
    store_->write(h, t.data());
  }
}

uint64_t Trainer::replicated_state_hash() const {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto mix = [&h](const void* data, size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  };
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kOptState})
    for (ParameterStore::Handle handle : store_->of_kind(kind)) {
      const Tensor t = store_->read(handle);
      mix(store_->entry(handle).name.data(), store_->entry(handle).name.size());
      mix(t.data(), size_t(t.numel()) * sizeof(float));
    }
  const StepState& state = store_->state();
  mix(&state.step, sizeof(state.step));
  mix(state.counters.data(), state.counters.size() * sizeof(int64_t));
  return h;
}

std::string Trainer::check_ranks_identical() {
  const uint64_t mine = replicated_state_hash();
  uint64_t lead = mine;
  group_.broadcast_bytes(&lead, sizeof(lead), 0);
  std::vector<double> differs(size_t(group_.size()), 0.0);
  differs[size_t(group_.rank())] = mine != lead ? 1.0 : 0.0;
  group_.all_reduce_sum(differs.data(), int64_t(differs.size()));
  std::string ranks;
  for (size_t r = 0; r < differs.size(); ++r)
    if (differs[r] != 0) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  return ranks.empty() ? "" : "the weights or optimiser state of rank(s) " + ranks + " differ from rank 0's";
}

Trainer::~Trainer() = default;

void Trainer::run_step() {
  const int64_t step = plan_->step();
  if (const int version = recipe_.step_version(step); version != step_version_) build_step_plan(version);
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const recipes::StepInput& in = inputs_[i];
    switch (in.source) {
      case recipes::InputSource::kImages: {
        // Every rank draws the same global batch (the order is the run's seed's) and takes its own shard of it.
        loader_->next(group_batch_.data(), data_.labelled() ? group_labels_.data() : nullptr);
        const size_t rank = size_t(group_.rank());
        std::copy_n(group_batch_.data() + rank * batch_.size(), batch_.size(), batch_.data());
        std::copy_n(group_labels_.data() + rank * batch_labels_.size(), batch_labels_.size(), batch_labels_.data());
        plan_->write_async(in.value, batch_.data());
        break;
      }
      case recipes::InputSource::kLabels:
        for (size_t b = 0; b < labels_.size(); ++b) labels_[b] = static_cast<float>(batch_labels_[b]);
        plan_->write_async(in.value, labels_.data());
        break;
      case recipes::InputSource::kRandomLabels: {
        Rng rng(rank_seed_, kRandomLabelStream + i);
        rng.set_counter(static_cast<uint64_t>(step) * labels_.size());  // step s draws the same labels however it is reached
        for (float& l : labels_) l = static_cast<float>(rng.below(static_cast<uint64_t>(shape_.classes)));
        plan_->write_async(in.value, labels_.data());
        break;
      }
      case recipes::InputSource::kHighRes: {
        // As for images: every rank draws the group's crops (a function of the run's seed and the step) and takes its
        // own shard; its LR twins follow in the next input.
        crop_batch_ = crops_->sample(options_.seed, step, options_.batch_size * group_.size());
        const size_t per_rank = crop_batch_.hr.size() / size_t(group_.size());
        plan_->write_async(in.value, crop_batch_.hr.data() + size_t(group_.rank()) * per_rank);
        break;
      }
      case recipes::InputSource::kLowRes: {
        const size_t per_rank = crop_batch_.lr.size() / size_t(group_.size());
        plan_->write_async(in.value, crop_batch_.lr.data() + size_t(group_.rank()) * per_rank);
        break;
      }
    }
  }
  plan_->run();
}

StepMetrics Trainer::read_metrics() {
  StepMetrics m;
  m.step = plan_->step();
  for (const recipes::Metric& metric : metrics_) {
    double v = 0;
    for (ValueId id : metric.values) {
      const Tensor t = plan_->read(id);
      v += metric.kind == recipes::Metric::kMeanSigmoid ? mean_sigmoid(t) : double(t[0]);
    }
    m.values.emplace_back(metric.name, v);
  }
  if (group_.size() > 1) {  // the group's mean (a collective: every rank reads metrics at the same steps)
    std::vector<double> values;
    for (const auto& [name, value] : m.values) values.push_back(value);
    group_.all_reduce_sum(values.data(), int64_t(values.size()));
    for (size_t k = 0; k < values.size(); ++k) m.values[k].second = values[k] / group_.size();
  }
  return m;
}

StepMetrics Trainer::step() {
  const auto start = std::chrono::steady_clock::now();
  run_step();
  StepMetrics m = read_metrics();  // waits for the device, so the time covers the whole step
  const auto end = std::chrono::steady_clock::now();
  m.step_ms = std::chrono::duration<double, std::milli>(end - start).count();
  m.images_per_s = m.step_ms > 0 ? 1000.0 * images_per_step_ / m.step_ms : 0;
  return m;
}

std::string Trainer::config_json() const {
  auto& recipe = const_cast<recipes::Recipe&>(recipe_);  // options() binds pointers; to_json only reads them
  json j = json{{"model", recipe_.name()}};
  j.update(recipes::to_json(recipe.options()));
  j["channels"] = shape_.channels;
  if (shape_.classes > 0) j["classes"] = shape_.classes;
  return j.dump();
}

void Trainer::save_checkpoint(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState})
    for (ParameterStore::Handle h : store_->of_kind(kind)) tensors.emplace_back(store_->entry(h).name, store_->read(h));
  TrainOptions recorded = options_;
  std::map<std::string, std::string> meta{
      {"format", kFormat},
      {"recipe", recipe_.name()},
      {"config", config_json()},
      {"run", recipes::to_json(recorded.recorded_options()).dump()},
      {"step", std::to_string(plan_->step())},
      {"world_size", std::to_string(group_.size())}};
  if (loader_) {  // crops of photos are a function of (seed, step): nothing to record
    meta["loader.epoch"] = std::to_string(loader_->epoch());
    meta["loader.position"] = std::to_string(loader_->position());
  }
  if (data_.labelled()) meta["class_names"] = json(data_.class_names).dump();
  const std::vector<std::string>& names = store_->counter_names();
  for (size_t k = 0; k < names.size(); ++k) meta["counter." + names[k]] = std::to_string(store_->state().counters[k]);
  save_safetensors(path, tensors, meta);
}

void Trainer::load_checkpoint(const std::string& path) {
  std::map<std::string, std::string> meta = load_safetensors_metadata(path);  // the whole file checked, no data read
  if (meta["format"] != kFormat && meta["format"] != kDcganFormat)
    throw std::runtime_error(path + ": not a gancu training checkpoint (format '" + meta["format"] + "')");
  const std::string recipe = meta["format"] == kDcganFormat ? "dcgan" : meta["recipe"];
  if (recipe != recipe_.name())
    throw std::runtime_error(path + ": a " + recipe + " checkpoint, but this run trains " + recipe_.name());
  // Every tensor of the store by name and shape: a missing one or a wrong shape is refused before its data is
  // allocated. Validate everything before changing anything, so a bad file leaves the run untouched.
  // Frozen weights (a content loss's VGG19) are not checkpointed: they stay as loaded from their own file.
  std::map<std::string, Shape> expected;
  for (ParameterStore::Handle h = 0; h < store_->size(); ++h)
    if (store_->entry(h).kind != ValueKind::kFrozen) expected.emplace(store_->entry(h).name, store_->entry(h).shape);
  const std::map<std::string, Tensor> tensors = load_safetensors(path, expected);
  require_finite(tensors, path);  // a diverged or damaged run is not continued
  const int64_t step = meta_int(meta, "step", path);
  // The data order and the random streams are the group's: another group size would continue a different run.
  const int64_t world = meta.count("world_size") ? meta_int(meta, "world_size", path) : 1;
  if (world != group_.size())
    throw std::runtime_error(path + ": written by a group of " + std::to_string(world) + " process(es), resumed by " +
                             std::to_string(group_.size()) + "; resume with the same mpirun -np");
  const int64_t epoch = loader_ ? meta_int(meta, "loader.epoch", path) : 0;
  const int64_t position = loader_ ? meta_int(meta, "loader.position", path) : 0;
  std::vector<int64_t> counters;
  for (const std::string& name : store_->counter_names()) counters.push_back(meta_int(meta, "counter." + name, path));
  for (ParameterStore::Handle h = 0; h < store_->size(); ++h)
    if (store_->entry(h).kind != ValueKind::kFrozen) store_->write(h, tensors.at(store_->entry(h).name).data());
  plan_->set_step(step);
  store_->state().counters = counters;
  if (loader_) loader_->restore(epoch, position);
}

std::string Trainer::first_non_finite() const {
  for (ParameterStore::Handle h = 0; h < store_->size(); ++h) {
    const Tensor t = store_->read(h);
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(t[i]))
        return store_->entry(h).name + " holds " + (std::isnan(t[i]) ? "NaN" : t[i] > 0 ? "+Inf" : "-Inf") +
               " at element " + std::to_string(i) + " of " + std::to_string(t.numel());
  }
  return "";
}

void Trainer::save_state_dict(const std::string& path, const recipes::Network& network) const {
  // PyTorch counts batch-norm forwards in num_batches_tracked: as many per step as the step has training-mode batch
  // norms updating that layer's running statistics (DCGAN: G d_steps times, D 2·d_steps + 1 times).
  std::map<std::string, int64_t> forwards_per_step;  // by running_mean's name
  for (const Node& n : plan_->graph().nodes())
    if (n.op == OpKind::kBatchNorm2dTrain || n.op == OpKind::kSyncBatchNorm2dTrain) ++forwards_per_step[plan_->graph().value(n.inputs[3]).name];
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (ParameterStore::Handle h = 0; h < store_->size(); ++h) {
    const ParameterStore::Entry& e = store_->entry(h);
    if ((e.kind != ValueKind::kParameter && e.kind != ValueKind::kBuffer) || e.name.rfind(network.prefix, 0) != 0) continue;
    const std::string name = e.name.substr(network.prefix.size());
    tensors.emplace_back(name, store_->read(h));
    const std::string suffix = ".running_var";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string layer = e.name.substr(0, e.name.size() - suffix.size());
      const int64_t forwards = plan_->step() * forwards_per_step[layer + ".running_mean"];
      tensors.emplace_back(name.substr(0, name.size() - suffix.size()) + ".num_batches_tracked",
                           Tensor::filled(Shape{}, static_cast<float>(forwards)));
    }
  }
  std::string net = network.prefix;
  if (!net.empty() && net.back() == '.') net.pop_back();
  std::map<std::string, std::string> meta{
      {"format", "pytorch-state-dict"}, {"network", net}, {"recipe", recipe_.name()}, {"config", config_json()}};
  if (data_.labelled()) meta["class_names"] = json(data_.class_names).dump();
  save_safetensors(path, tensors, meta);
}

Tensor Trainer::sample(const Tensor& z, const Tensor* labels) {
  const int n = static_cast<int>(z.dim(0));
  if (!sampler_ || sampler_->n != n) {
    recipes::SamplerGraph g = recipe_.sampler(shape_, n);
    auto s = std::make_unique<Sampler>();
    s->n = n;
    s->z = g.z;
    s->labels = g.labels;
    s->images = g.images;
    s->plan = std::make_unique<Plan>(std::move(g.graph), *store_, StepAdvance::kKeep);
    sampler_ = std::move(s);
  }
  const Plan& p = *sampler_->plan;
  if (z.numel() != p.graph().shape(sampler_->z).numel())
    throw std::invalid_argument("sample: latent vectors " + z.shape().str() + ", the generator takes " +
                                p.graph().shape(sampler_->z).str());
  sampler_->plan->write(sampler_->z, z.data());
  if (sampler_->labels != kNoValue) {
    if (!labels || labels->numel() != n) throw std::invalid_argument("sample: a conditional generator needs one label per image");
    sampler_->plan->write(sampler_->labels, labels->data());
  }
  sampler_->plan->run();
  return sampler_->plan->read(sampler_->images);
}

Tensor Trainer::upscale(const Tensor& lr) {
  const int scale = recipe_.data_request().sr_scale;
  if (scale <= 0) throw std::invalid_argument("upscale: " + recipe_.name() + " is not a super-resolution recipe");
  const Shape& s = lr.shape();
  if (s.rank() != 4 || s[1] != 3) throw std::invalid_argument("upscale: LR images must be [n, 3, h, w], not " + s.str());
  std::unique_ptr<Sampler>& upscaler = upscalers_[{s[0], s[2], s[3]}];
  if (!upscaler) {
    recipes::DataShape hr = shape_;
    hr.height = static_cast<int>(s[2]) * scale;
    hr.width = static_cast<int>(s[3]) * scale;
    recipes::SamplerGraph g = recipe_.sampler(hr, static_cast<int>(s[0]));
    upscaler = std::make_unique<Sampler>();
    upscaler->n = static_cast<int>(s[0]);
    upscaler->z = g.z;
    upscaler->images = g.images;
    upscaler->plan = std::make_unique<Plan>(std::move(g.graph), *store_, StepAdvance::kKeep);
  }
  upscaler->plan->write(upscaler->z, lr.data());
  upscaler->plan->run();
  return upscaler->plan->read(upscaler->images);
}

RecordedRecipe recorded_recipe(const std::map<std::string, std::string>& meta, const std::string& file) {
  const auto get = [&](const char* key) {
    const auto it = meta.find(key);
    return it == meta.end() ? std::string() : it->second;
  };
  const std::string format = get("format");
  std::string name = get("recipe");
  if (name.empty()) name = "dcgan";  // files from before recipes
  json config = parse_object(get("config"), file, "model configuration");
  if (config.value("model", name) != name) throw std::runtime_error(file + ": metadata names two models");
  RecordedRecipe r;
  try {
    r.recipe = recipes::make_recipe(name);
  } catch (const std::exception& e) {
    throw std::runtime_error(file + ": " + e.what());
  }
  const std::vector<recipes::Option> options = r.recipe->options();
  recipes::from_json(options, config, file);
  if (format == kDcganFormat) recipes::from_json(options, parse_object(get("training"), file, "training"), file);
  try {
    r.shape.channels = config.at("channels").get<int>();
    r.shape.classes = config.value("classes", 0);
    const recipes::DataRequest want = r.recipe->data_request();
    r.shape.height = r.shape.width = want.image_size;
    if (r.shape.height <= 0) r.shape.height = r.shape.width = config.at("image_size").get<int>();
    r.recipe->check(r.shape);
  } catch (const std::exception& e) {
    throw std::runtime_error(file + ": bad model configuration in metadata (" + std::string(e.what()) + ")");
  }
  return r;
}

}  // namespace gancu::app
