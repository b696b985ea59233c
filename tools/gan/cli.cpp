#include "tools/gan/cli.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "tools/io/safetensors.h"

namespace gancu::app {
namespace {

// CLI11's range check, only where the option declares bounds.
template <typename T>
void add_range(CLI::Option* flag, const recipes::Option& o) {
  if (std::isinf(o.min) && std::isinf(o.max)) return;
  flag->check(CLI::Range(std::isinf(o.min) ? std::numeric_limits<T>::lowest() : static_cast<T>(o.min),
                         std::isinf(o.max) ? std::numeric_limits<T>::max() : static_cast<T>(o.max)));
}

}  // namespace

std::vector<std::string> AddedOptions::given() const {
  std::vector<std::string> names;
  for (const auto& [name, flag] : flags)
    if (flag->count() > 0) names.push_back(name);
  return names;
}

AddedOptions add_options(CLI::App& app, const std::vector<recipes::Option>& options) {
  AddedOptions added;
  for (const recipes::Option& o : options) {
    const std::string flag = "--" + o.name;
    CLI::Option* added_flag = std::visit(
        [&](auto* field) -> CLI::Option* {
          using T = std::remove_pointer_t<decltype(field)>;
          if constexpr (std::is_same_v<T, bool>) {
            return app.add_flag(flag, *field, o.help);
          } else {
            CLI::Option* f = app.add_option(flag, *field, o.help)->capture_default_str();
            if constexpr (std::is_same_v<T, std::string>) {
              if (!o.choices.empty()) f->check(CLI::IsMember(o.choices));
            } else {
              add_range<T>(f, o);
            }
            return f;
          }
        },
        o.field);
    added.flags.emplace_back(o.name, added_flag);
  }
  return added;
}

std::string recipe_name_from_args(int argc, char** argv) {
  std::string resume;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc) return argv[i + 1];
    if (arg.rfind("--model=", 0) == 0) return arg.substr(8);
    if (arg == "--resume" && i + 1 < argc) resume = argv[i + 1];
    if (arg.rfind("--resume=", 0) == 0) resume = arg.substr(9);
  }
  if (!resume.empty()) {
    namespace fs = std::filesystem;
    try {
      const std::string file = fs::is_directory(resume) ? (fs::path(resume) / "checkpoint.safetensors").string() : resume;
      const std::map<std::string, std::string> meta = load_safetensors_metadata(file);
      const auto it = meta.find("recipe");
      if (it != meta.end() && !it->second.empty()) return it->second;
    } catch (const std::exception&) {
    }
  }
  return "dcgan";
}

}  // namespace gancu::app
