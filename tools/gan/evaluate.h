// FID and KID of a generator's images in the feature space of gancu's own classifier of the data set
// (tools/eval/classifier.h): the scorer behind `gan eval` and `gan train --eval-every`. The numbers measure distance to
// the data set's held-out test images as that classifier sees them; they are not comparable with published FIDs,
// which use Inception-v3 features of other images (caveat() says so wherever a number is printed).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "tools/eval/classifier.h"
#include "tools/eval/fid.h"

namespace gancu::app {

struct FidScore {
  int64_t n = 0;  // images scored
  double fid = 0;
  eval::Kid kid;
};

class FidScorer {
 public:
  // The classifier of `data` (a labelled set with a test split: fashion-mnist, mnist, a CIFAR-10 folder): read from
  // `classifier_file`, else from its default place, where it is trained and kept on first use. The reference is the
  // features of the split's test images (of class `data_class` only, when given). `kid_subsets` subsets of up to 1,000
  // images each make KID.
  FidScorer(const std::string& data, const std::string& data_class, const std::string& classifier_file,
            const std::string& device, int kid_subsets = 100);
  ~FidScorer();

  const eval::ClassifierInfo& classifier() const;
  const std::string& classifier_path() const { return classifier_path_; }
  const std::string& data_name() const { return split_.name; }
  int64_t reference_count() const { return reference_n_; }

  // Images in [-1, 1] ([count, C, H, W] at the generator's size), produced `batch` at a time by generate(first, count).
  FidScore score_generated(int64_t n, int batch, const std::function<Tensor(int64_t first, int64_t count)>& generate);
  FidScore score_images(const ImageSet& images);
  FidScore floor(int64_t n, uint64_t seed);    // n training images against the test images: what real data scores
  FidScore ceiling(int64_t n, uint64_t seed);  // n images of uniform noise: what no learning scores
  std::string caveat() const;

 private:
  FidScore score_features(const std::vector<double>& features, int64_t n);

  eval::LabelledSplit split_;
  std::string classifier_path_;
  std::unique_ptr<eval::FeatureExtractor> extractor_;
  std::vector<double> reference_;
  int64_t reference_n_ = 0;
  eval::FeatureStats reference_stats_;
  int kid_subsets_ = 100;
};

// Latent vectors for scoring: n draws of the generator's latent shape from `seed` on a stream of their own, and for a
// conditional generator balanced class labels (image i is class i mod classes).
Tensor scoring_latents(int64_t n, const Shape& latent_shape, uint64_t seed);
Tensor balanced_labels(int64_t n, int classes);

struct EvalOptions {
  std::string checkpoint;          // a run folder, checkpoint.safetensors or generator.safetensors ("": bounds only)
  std::string data, data_class;    // default: what the checkpoint's run trained on
  std::string classifier;          // default: data/classifiers/<data>.safetensors, trained on first use
  std::string device = "cpu";
  int64_t n = 10000;               // generated images scored (and images for each bound)
  bool bounds = true;              // also the floor (train vs test) and the ceiling (noise vs test)
  int kid_subsets = 100;
  uint64_t seed = 1;
  std::string json;                // also write the results here
};
int run_eval(const EvalOptions& options);

}  // namespace gancu::app
