// `gan classifier`: trains the feature-space classifier of FID/KID (tools/eval/classifier.h) on a labelled split and
// writes it where `gan eval` looks for it by default.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace gancu::app {

struct ClassifierOptions {
  std::string data = "fashion-mnist";
  std::string out;   // default: eval::default_classifier_path(split name)
  int channels = 0;  // 0: 1 for fashion-mnist and mnist, 3 for CIFAR-10
  int epochs = 0;    // 0: eval::default_classifier_training(split name)'s
  int batch_size = 128;
  uint64_t seed = 1;
  std::string device = "cpu";
};

// Adds the subcommand and its flags, bound to `options`.
CLI::App* add_classifier_command(CLI::App& app, ClassifierOptions& options);
// Trains, prints the test accuracy and the file written; returns the exit code. Errors throw (one line).
int run_classifier(const ClassifierOptions& options);

}  // namespace gancu::app
