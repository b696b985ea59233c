// SRGAN (Ledig et al. 2017) trained in the paper's two phases, on HR photo crops and their x4 LR twins
// (tools/io/photos.h), networks of models/srgan.h:
//   srresnet  G alone on pixel MSE (the paper's SRResNet-MSE): Adam lr 1e-4, β1 0.9, batches of 16 crops of 96x96.
//   srgan     G started from an srresnet run (--generator-init), and D. Per step one D update with BCE on D(HR) and
//             D(G(LR)), then one G update on content + 1e-3 x adversarial (non-saturating BCE through the updated D):
//             content is the MSE of VGG19 φ5,4 features (models/vgg19.h, frozen, from --vgg19 FILE) rescaled by
//             1/12.75 as the paper does, or pixel MSE without a VGG file (the run says so). lr 1e-4, and lr / 10
//             after --lr-drop-step steps (the paper: 10^5 updates at each).
#pragma once
#include <string>

#include "models/srgan.h"
#include "models/vgg19.h"
#include "recipes/recipe.h"

namespace gancu::recipes {

// The optimisers' names, as the GAN recipes name theirs.
inline constexpr const char* kSrOptimiserG = "G";
inline constexpr const char* kSrOptimiserD = "D";

class SuperResolutionRecipe : public Recipe {
 public:
  explicit SuperResolutionRecipe(bool adversarial);

  // Hyperparameters (options()).
  int residual_blocks = 16;
  bool no_batch_norm = false;  // SRResNet without its batch norms (models::SrresnetConfig::batch_norm)
  int crop = 96;  // HR crop side; LR crops are crop / scale
  int scale = 4;
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.999;
  // srgan only.
  std::string vgg19;                 // torchvision vgg19 weights (safetensors); "" → pixel MSE content
  int vgg_convolutions = 16;         // φ5,4
  double vgg_rescale = 1.0 / 12.75;  // features scaled by this before the MSE (the loss by its square)
  double adversarial_weight = 1e-3;
  std::string generator_init;        // a srresnet checkpoint or generator state dict: G's starting weights
  int64_t lr_drop_step = 0;          // both recipes: after this many steps, lr / 10 (0: never)

  bool adversarial() const { return adversarial_; }
  std::string name() const override { return adversarial_ ? "srgan" : "srresnet"; }
  std::vector<Option> options() override;
  DataRequest data_request() const override;
  void check(const DataShape& data) const override;
  TrainingGraph training_step(const DataShape& data, int batch_size) const override;
  // Version 1 (after --lr-drop-step steps) trains with lr / 10.
  int step_version(int64_t steps_done) const override;
  TrainingGraph training_step_version(const DataShape& data, int batch_size, int version) const override;
  // LR images [n, 3, data.height / scale, data.width / scale] (in `z`) → SR images [n, 3, data.height, data.width].
  SamplerGraph sampler(const DataShape& data, int n) const override;
  std::vector<Network> networks() const override;
  // The VGG19 weights of --vgg19 (srgan with a VGG content loss).
  void load_frozen(ParameterStore& store, const Graph& graph) const override;
  // G's weights from --generator-init (srgan).
  void initialise(ParameterStore& store, const Graph& graph) const override;

  models::SrresnetConfig generator_config() const;
  models::SrganDiscriminatorConfig discriminator_config() const;
  models::Vgg19Config vgg_config() const;
  // G's receptive radius in LR pixels: an output pixel depends on no LR pixel farther than this (tiled upscaling).
  int receptive_radius() const;

 private:
  bool adversarial_;
};

}  // namespace gancu::recipes
