// Hyperparameters declared once. A configuration struct lists its fields as Options (name, help, bounds, a pointer to
// the field); that one list is what the command line offers (tools/gan), what a checkpoint records and restores
// (to_json / from_json below) and what the recipe reads (the fields themselves). Adding a hyperparameter is one line.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

namespace gancu::recipes {

struct Option {
  std::string name;  // the flag without its dashes ("d-steps"); its JSON key has '_' for '-' ("d_steps")
  std::string help;
  std::variant<int*, int64_t*, uint64_t*, double*, bool*, std::string*> field;
  double min = -std::numeric_limits<double>::infinity();  // numbers: inclusive bounds
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices = {};  // strings: the allowed values (empty: any)

  std::string key() const;
};

// The options as one JSON object {key: value}, in declaration order.
nlohmann::ordered_json to_json(const std::vector<Option>& options);
// Sets each option found in `j` (a missing key keeps the field's value: a checkpoint from before an option existed),
// checking types and bounds; throws std::runtime_error("<what>: <key>: <problem>") on a bad value.
void from_json(const std::vector<Option>& options, const nlohmann::ordered_json& j, const std::string& what);
// Checks every field against its bounds/choices; throws std::invalid_argument("--<name> <value>: <problem>").
void check_bounds(const std::vector<Option>& options);

}  // namespace gancu::recipes
