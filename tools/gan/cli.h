// The command line's side of recipes/options.h: options declared once become CLI11 flags with their help, bounds and
// choices; and the recipe a command line asks for is known before it is parsed (its options are part of the parse).
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "recipes/options.h"

namespace gancu::app {

// Adds each option to `app` ("--" + name; a bool is a flag). Keep the result to ask what was given after parsing.
struct AddedOptions {
  std::vector<std::pair<std::string, CLI::Option*>> flags;
  std::vector<std::string> given() const;  // names of the options the command line set
};
AddedOptions add_options(CLI::App& app, const std::vector<recipes::Option>& options);

// The recipe named by --model NAME / --model=NAME; else, for `--resume RUN`, the recipe the run's checkpoint records
// (so that its options parse); else "dcgan". A checkpoint that cannot be read is reported later, by the command.
std::string recipe_name_from_args(int argc, char** argv);

}  // namespace gancu::app
