// The recipes gancu ships: one line each.
#include <stdexcept>

#include "recipes/dcgan.h"
#include "recipes/recipe.h"

namespace gancu::recipes {

const std::vector<RecipeInfo>& recipe_list() {
  static const std::vector<RecipeInfo> list = {
      {"dcgan", "DCGAN (Radford et al. 2015), as PyTorch's examples/dcgan"},
  };
  return list;
}

std::unique_ptr<Recipe> make_recipe(const std::string& name) {
  if (name == "dcgan") return std::make_unique<DcganRecipe>();
  std::string names;
  for (const RecipeInfo& r : recipe_list()) names += (names.empty() ? "" : ", ") + r.name;
  throw std::invalid_argument("--model " + name + ": unknown (use " + names + ")");
}

}  // namespace gancu::recipes
