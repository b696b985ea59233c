#include "tools/gan/evaluate.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/files.h"
#include "core/rng.h"
#include "tools/eval/images.h"
#include "tools/gan/generator.h"
#include "tools/io/dataset.h"
#include "tools/io/safetensors.h"

namespace gancu::app {
namespace {

constexpr uint64_t kScoringLatentStream = 0xF1D;

}  // namespace

FidScorer::FidScorer(const std::string& data, const std::string& data_class, const std::string& classifier_file,
                     const std::string& device, int kid_subsets)
    : kid_subsets_(kid_subsets) {
  namespace fs = std::filesystem;
  split_ = eval::load_labelled_split(data, native_channels(data));
  classifier_path_ = classifier_file.empty() ? eval::default_classifier_path(split_.name) : classifier_file;
  if (!fs::exists(classifier_path_)) {
    if (!classifier_file.empty()) throw std::runtime_error(classifier_file + ": not found");
    std::fprintf(stderr, "gan: no %s classifier yet: training one (once) into %s\n", split_.name.c_str(),
                 classifier_path_.c_str());
    eval::ClassifierTraining training = eval::default_classifier_training(split_.name);
    training.device = device;
    if (fs::path(classifier_path_).has_parent_path()) fs::create_directories(fs::path(classifier_path_).parent_path());
    eval::train_classifier(split_, classifier_path_, training);
  }
  extractor_ = std::make_unique<eval::FeatureExtractor>(classifier_path_, device);
  const eval::ClassifierInfo& info = extractor_->info();
  if (info.data != split_.name)
    throw std::runtime_error(classifier_path_ + ": a classifier of " + info.data + ", not of " + split_.name);
  if (info.channels != split_.test.channels) split_ = eval::load_labelled_split(data, info.channels);
  // A run on one class is measured against that class.
  if (!data_class.empty()) {
    split_.train = select_class(std::move(split_.train), data_class);
    split_.test = select_class(std::move(split_.test), data_class);
  }
  reference_ = extractor_->features(split_.test);
  reference_n_ = split_.test.count;
  reference_stats_ = eval::feature_stats(reference_, reference_n_, extractor_->info().feature_dim);
}

FidScorer::~FidScorer() = default;

const eval::ClassifierInfo& FidScorer::classifier() const { return extractor_->info(); }

FidScore FidScorer::score_features(const std::vector<double>& features, int64_t n) {
  const int dim = extractor_->info().feature_dim;
  FidScore s;
  s.n = n;
  s.fid = eval::frechet_distance(eval::feature_stats(features, n, dim), reference_stats_);
  s.kid = eval::kernel_inception_distance(features, n, reference_, reference_n_, dim, kid_subsets_);
  return s;
}

FidScore FidScorer::score_generated(int64_t n, int batch,
                                    const std::function<Tensor(int64_t first, int64_t count)>& generate) {
  const eval::ClassifierInfo& info = extractor_->info();
  std::vector<double> features;
  features.reserve(size_t(n) * size_t(info.feature_dim));
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t count = std::min<int64_t>(batch, n - first);
    const ImageSet images = eval::images_from_generator(generate(first, count), info.channels, info.image_size);
    const std::vector<double> f = extractor_->features(images);
    features.insert(features.end(), f.begin(), f.end());
  }
  return score_features(features, n);
}

FidScore FidScorer::score_images(const ImageSet& images) {
  return score_features(extractor_->features(images), images.count);
}

FidScore FidScorer::floor(int64_t n, uint64_t seed) {
  return score_images(eval::subset(split_.train, std::min<int64_t>(n, split_.train.count), seed));
}

FidScore FidScorer::ceiling(int64_t n, uint64_t seed) {
  const eval::ClassifierInfo& info = extractor_->info();
  return score_images(eval::noise_images(n, info.channels, info.image_size, seed));
}

std::string FidScorer::caveat() const {
  char accuracy[32];
  std::snprintf(accuracy, sizeof accuracy, "%.2f%%", 100.0 * extractor_->info().test_accuracy);
  return "FID and KID in the " + std::to_string(extractor_->info().feature_dim) + "-feature space of gancu's own " +
         split_.name + " classifier (" + classifier_path_ + ", test accuracy " + accuracy +
         "), against the test images: not comparable with published FIDs, which use Inception-v3 features";
}

Tensor scoring_latents(int64_t n, const Shape& latent_shape, uint64_t seed) {
  Shape s = latent_shape;
  s[0] = n;
  Tensor z(s);
  Rng rng(seed, kScoringLatentStream);
  z.fill_normal(rng);
  return z;
}

Tensor balanced_labels(int64_t n, int classes) {
  Tensor labels(Shape{n});
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<float>(i % classes);
  return labels;
}

int run_eval(const EvalOptions& o) {
  using json = nlohmann::json;
  std::string data = o.data, data_class = o.data_class;
  std::unique_ptr<LoadedGenerator> generator;
  if (!o.checkpoint.empty()) {
    generator = std::make_unique<LoadedGenerator>(o.checkpoint, o.device, 250);
    // The run's data set and class, as the checkpoint records them (a state dict records neither: --data says).
    const auto run = generator->metadata().find("run");
    if (run != generator->metadata().end()) {
      const json recorded = json::parse(run->second, nullptr, false);
      if (recorded.is_object()) {
        if (data.empty()) data = recorded.value("data", std::string());
        if (data_class.empty()) data_class = recorded.value("class", std::string());
      }
    }
    if (data.empty())
      throw std::runtime_error(generator->path() + ": records no data set (a state dict): say which with --data");
  }
  if (data.empty()) throw std::invalid_argument("gan eval: give --checkpoint, or --data for the bounds alone");
  if (o.n < 2) throw std::invalid_argument("--n must be at least 2");

  FidScorer scorer(data, data_class, o.classifier, o.device, o.kid_subsets);
  std::fprintf(stderr, "gan eval: %s%s, %lld test images; %s\n", scorer.data_name().c_str(),
               data_class.empty() ? "" : (" class " + data_class).c_str(), (long long)scorer.reference_count(),
               scorer.caveat().c_str());
  json result{{"data", scorer.data_name()},
              {"class", data_class},
              {"classifier", scorer.classifier_path()},
              {"classifier_test_accuracy", scorer.classifier().test_accuracy},
              {"reference", "test split"},
              {"reference_images", scorer.reference_count()},
              {"comparable_with_inception_fid", false}};
  auto report = [&](const char* what, const std::string& label, const FidScore& s) {
    std::printf("%-34s n %6lld   FID %10.4f   KID %.5f ± %.5f\n", label.c_str(), (long long)s.n, s.fid, s.kid.mean,
                s.kid.stddev);
    result[what] = json{{"n", s.n}, {"fid", s.fid}, {"kid", s.kid.mean}, {"kid_std", s.kid.stddev}};
  };
  if (generator) {
    LoadedGenerator& g = *generator;
    const Tensor z = scoring_latents(o.n, g.latent_shape(), o.seed);
    const Tensor labels = g.conditional() ? balanced_labels(o.n, g.shape().classes) : Tensor();
    const int64_t per_latent = g.latent_shape().numel();
    const FidScore s = scorer.score_generated(o.n, 250, [&](int64_t first, int64_t count) {
      Shape zs = g.latent_shape();
      zs[0] = count;
      Tensor zb(zs);
      std::copy(z.data() + first * per_latent, z.data() + (first + count) * per_latent, zb.data());
      Tensor lb(Shape{count});
      if (g.conditional()) std::copy(labels.data() + first, labels.data() + first + count, lb.data());
      return g.generate(zb, g.conditional() ? &lb : nullptr);
    });
    result["checkpoint"] = g.path();
    result["recipe"] = g.recipe().name();
    const auto step = g.metadata().find("step");
    if (step != g.metadata().end()) result["step"] = step->second;
    report("generated", "generated (" + g.recipe().name() + ")", s);
  }
  if (o.bounds) {
    report("floor", "floor: training images", scorer.floor(o.n, o.seed));
    report("ceiling", "ceiling: uniform noise", scorer.ceiling(o.n, o.seed));
  }
  std::printf("%s\n", scorer.caveat().c_str());
  if (!o.json.empty()) write_file_atomic(o.json, result.dump(2) + "\n");
  return 0;
}

}  // namespace gancu::app
