#include "recipes/options.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace gancu::recipes {
namespace {

std::string number_text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// "" if the option's current value is allowed, else what is wrong with it.
std::string bound_problem(const Option& o) {
  double v = 0;
  if (auto* p = std::get_if<std::string*>(&o.field)) {
    if (o.choices.empty() || std::find(o.choices.begin(), o.choices.end(), **p) != o.choices.end()) return "";
    std::string list;
    for (const std::string& c : o.choices) list += (list.empty() ? "" : ", ") + c;
    return "not one of " + list;
  }
  if (std::holds_alternative<bool*>(o.field)) return "";
  if (auto* p = std::get_if<int*>(&o.field)) v = **p;
  if (auto* p = std::get_if<int64_t*>(&o.field)) v = double(**p);
  if (auto* p = std::get_if<uint64_t*>(&o.field)) v = double(**p);
  if (auto* p = std::get_if<double*>(&o.field)) v = **p;
  if (!std::isfinite(v)) return "not a finite number";
  if (v < o.min || v > o.max) return "outside [" + number_text(o.min) + ", " + number_text(o.max) + "]";
  return "";
}

}  // namespace

std::string Option::key() const {
  std::string k = name;
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

nlohmann::ordered_json to_json(const std::vector<Option>& options) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const Option& o : options) std::visit([&](auto* field) { j[o.key()] = *field; }, o.field);
  return j;
}

void from_json(const std::vector<Option>& options, const nlohmann::ordered_json& j, const std::string& what) {
  if (!j.is_object()) throw std::runtime_error(what + ": the configuration is not a JSON object");
  for (const Option& o : options) {
    const auto it = j.find(o.key());
    if (it == j.end()) continue;
    const bool ok = std::visit(
        [&](auto* field) {
          using T = std::remove_pointer_t<decltype(field)>;
          if constexpr (std::is_same_v<T, std::string>) {
            if (!it->is_string()) return false;
          } else if constexpr (std::is_same_v<T, bool>) {
            if (!it->is_boolean()) return false;
          } else if constexpr (std::is_integral_v<T>) {
            if (!it->is_number_integer()) return false;
            if constexpr (std::is_unsigned_v<T>) {
              if (!it->is_number_unsigned()) return false;
            } else {
              const auto v = it->template get<int64_t>();
              if (v < int64_t(std::numeric_limits<T>::min()) || v > int64_t(std::numeric_limits<T>::max())) return false;
            }
          } else {
            if (!it->is_number()) return false;
          }
          *field = it->template get<T>();
          return true;
        },
        o.field);
    if (!ok) throw std::runtime_error(what + ": " + o.key() + ": bad value " + it->dump());
    if (const std::string problem = bound_problem(o); !problem.empty())
      throw std::runtime_error(what + ": " + o.key() + ": " + it->dump() + " is " + problem);
  }
}

void check_bounds(const std::vector<Option>& options) {
  for (const Option& o : options)
    if (const std::string problem = bound_problem(o); !problem.empty()) {
      std::string value;
      std::visit([&](auto* field) { value = nlohmann::json(*field).dump(); }, o.field);
      throw std::invalid_argument("--" + o.name + " " + value + ": " + problem);
    }
}

}  // namespace gancu::recipes
