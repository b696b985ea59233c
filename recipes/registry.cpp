// The recipes gancu ships: one line each.
#include <stdexcept>

#include "recipes/conditional_dcgan.h"
#include "recipes/dcgan.h"
#include "recipes/mlp_gan.h"
#include "recipes/recipe.h"
#include "recipes/super_resolution.h"

namespace gancu::recipes {

const std::vector<RecipeInfo>& recipe_list() {
  static const std::vector<RecipeInfo> list = {
      {"dcgan", "DCGAN (Radford et al. 2015), as PyTorch's examples/dcgan"},
      {"mlp-gan", "the MLP GAN (Goodfellow et al. 2014), as the Keras GAN() example"},
      {"conditional-dcgan", "DCGAN conditioned on the class label (Mirza and Osindero 2014)"},
      {"srresnet", "SRResNet, x4 super-resolution on pixel MSE: SRGAN's first phase (Ledig et al. 2017)"},
      {"srgan", "SRGAN's second phase: SRResNet against a discriminator, VGG19 content loss (Ledig et al. 2017)"},
  };
  return list;
}

std::unique_ptr<Recipe> make_recipe(const std::string& name) {
  if (name == "dcgan") return std::make_unique<DcganRecipe>();
  if (name == "mlp-gan") return std::make_unique<MlpGanRecipe>();
  if (name == "conditional-dcgan") return std::make_unique<ConditionalDcganRecipe>();
  if (name == "srresnet") return std::make_unique<SuperResolutionRecipe>(false);
  if (name == "srgan") return std::make_unique<SuperResolutionRecipe>(true);
  std::string names;
  for (const RecipeInfo& r : recipe_list()) names += (names.empty() ? "" : ", ") + r.name;
  throw std::invalid_argument("--model " + name + ": unknown (use " + names + ")");
}

}  // namespace gancu::recipes
