// A trained generator read from a file, in inference mode: what `gan sample` draws grids with and `gan eval` scores.
// One way to load one: a training checkpoint (its "G." tensors) or an exported state dict (generator.safetensors),
// checked tensor by tensor against the recipe the file records, then run in batches of a fixed size.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "engine/engine.h"
#include "tools/gan/train.h"

namespace gancu::app {

class LoadedGenerator {
 public:
  // `file`: checkpoint.safetensors, generator.safetensors or a run folder (its checkpoint). `batch`: images per run of
  // the inference plan (generate() takes any count). Throws std::runtime_error("<file>: ...") for a bad file.
  // `shape`: the data shape the inference plan is built for (super-resolution: the HR size of one input tile);
  // default: the recorded one.
  LoadedGenerator(const std::string& file, const std::string& device, int batch,
                  const recipes::DataShape* shape = nullptr);
  ~LoadedGenerator();

  const std::string& path() const { return path_; }
  const recipes::Recipe& recipe() const { return *recorded_.recipe; }
  const recipes::DataShape& shape() const { return recorded_.shape; }
  const std::map<std::string, std::string>& metadata() const { return meta_; }
  // z's shape for one image (DCGAN: [nz, 1, 1]); whether class labels go in.
  const Shape& latent_shape() const { return latent_; }
  bool conditional() const { return conditional_; }

  // Images [n, C, H, W] in [-1, 1] for latent vectors z [n, latent...] (and, if conditional, labels [n]).
  Tensor generate(const Tensor& z, const Tensor* labels = nullptr);

 private:
  std::string path_;
  std::map<std::string, std::string> meta_;
  RecordedRecipe recorded_;
  Shape latent_;
  bool conditional_ = false;
  int batch_ = 0;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ParameterStore> store_;
  std::unique_ptr<Plan> plan_;
  ValueId z_ = kNoValue, labels_ = kNoValue, images_ = kNoValue;
};

}  // namespace gancu::app
