// Training recipes: how a GAN trains. A recipe declares its hyperparameters (each once, recipes/options.h), its
// networks, the inputs of its training step and where each comes from, its losses and the order of its updates (as
// one graph), the metrics it reports, and its inference graph (sample). The trainer, checkpoints, resume, metrics,
// sample grids and the `gan` command are generic over recipes: a new GAN is a model file and a recipe.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/parameter_store.h"
#include "recipes/options.h"

namespace gancu::recipes {

// What the data gives the recipe: image shape and the number of classes (0: unlabelled).
struct DataShape {
  int channels = 1, height = 32, width = 32;
  int classes = 0;
};

// What the recipe asks of the data: its image size (the trainer resizes or pads the images to it), its channels (0: as
// the data's), and whether it needs labels.
struct DataRequest {
  int image_size = 0;
  int channels = 0;
  bool labels = false;
  // > 0: a super-resolution recipe. The data are photos (tools/io/photos.h); each step takes random HR crops of
  // image_size and their LR twins, image_size / sr_scale, made by antialiased bicubic downsampling.
  int sr_scale = 0;
};

// Where the trainer takes each input of a step from, before every step, in the recipe's order.
enum class InputSource {
  kImages,        // the next batch of real images, [B, C, H, W] in [-1, 1]
  kLabels,        // the class labels of the batch the previous kImages input took, [B] (float class indices)
  kRandomLabels,  // uniformly drawn class labels, [B], from the run's seed and the step (a resumed run redraws the same)
  kHighRes,       // super-resolution: the step's HR crops [B, 3, S, S] in [-1, 1], a pure function of (seed, step)
  kLowRes,        // their LR twins [B, 3, S / scale, S / scale] (the crops the previous kHighRes input took)
};
struct StepInput {
  ValueId value = kNoValue;
  InputSource source = InputSource::kImages;
};

// A number the step reports (metrics.jsonl, the progress line): the sum of `values` (scalars), or the mean of
// sigmoid over `values` (logits: D's probability that its input is real).
struct Metric {
  enum Kind { kSum, kMeanSigmoid };
  std::string name;  // every metric must stay finite; those named "loss_*" are also plotted (losses.png)
  Kind kind = kSum;
  std::vector<ValueId> values;
  bool on_progress_line = true;
};

struct TrainingGraph {
  Graph graph;
  std::vector<StepInput> inputs;
  std::vector<Metric> metrics;
  int images_per_step = 0;      // real images a step consumes (batch × D updates)
};

// The generator in inference mode: latent vectors (and, if conditional, class labels [n]) in, images in [-1, 1] out.
struct SamplerGraph {
  Graph graph;
  ValueId z = kNoValue, labels = kNoValue, images = kNoValue;
};

// A network whose weights the run exports as a PyTorch state dict: graph names "<prefix>..." become "...".
struct Network {
  std::string prefix;  // "G."
  std::string file;    // "generator.safetensors"
};

class Recipe {
 public:
  virtual ~Recipe() = default;
  virtual std::string name() const = 0;
  // Its hyperparameters, bound to this object's fields (valid while it lives).
  virtual std::vector<Option> options() = 0;
  virtual DataRequest data_request() const = 0;
  // Throws std::invalid_argument for data the recipe cannot train on (a size its networks do not support).
  virtual void check(const DataShape& data) const = 0;
  virtual TrainingGraph training_step(const DataShape& data, int batch_size) const = 0;
  virtual SamplerGraph sampler(const DataShape& data, int n) const = 0;
  virtual std::vector<Network> networks() const = 0;

  // Recipes whose step changes during training (SRGAN's learning-rate drop): the version of the step graph that the
  // step after `steps_done` steps runs, and that version's graph. The trainer rebuilds its step plan over the same
  // store whenever the version changes (a resumed run too). Default: one version, training_step's.
  virtual int step_version(int64_t steps_done) const {
    (void)steps_done;
    return 0;
  }
  virtual TrainingGraph training_step_version(const DataShape& data, int batch_size, int version) const {
    (void)version;
    return training_step(data, batch_size);
  }

  // Frozen weights the recipe's graphs declare (ValueKind::kFrozen: SRGAN's VGG19), loaded into `store` once `graph`
  // is bound to it; they come from their own file, never from checkpoints. Default: none.
  virtual void load_frozen(ParameterStore& store, const Graph& graph) const {
    (void)store;
    (void)graph;
  }
  // A fresh run's starting weights where they do not come from the initialisers (SRGAN's G from an SRResNet run).
  // Not called on resume. Default: nothing.
  virtual void initialise(ParameterStore& store, const Graph& graph) const {
    (void)store;
    (void)graph;
  }
};

// The recipes gancu ships, by name ("dcgan", "mlp-gan", "conditional-dcgan"). Throws std::invalid_argument listing
// them for an unknown name.
std::unique_ptr<Recipe> make_recipe(const std::string& name);
struct RecipeInfo {
  std::string name, description;
};
const std::vector<RecipeInfo>& recipe_list();

}  // namespace gancu::recipes
