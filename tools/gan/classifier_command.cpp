#include "tools/gan/classifier_command.h"

#include <chrono>
#include <cstdio>

#include "tools/eval/classifier.h"

namespace gancu::app {

CLI::App* add_classifier_command(CLI::App& app, ClassifierOptions& o) {
  CLI::App* c = app.add_subcommand("classifier", "Train the classifier in whose feature space FID and KID are measured");
  c->add_option("--data", o.data, "fashion-mnist | mnist | a CIFAR-10 folder (data_batch_1..5.bin, test_batch.bin)")
      ->capture_default_str();
  c->add_option("--out", o.out, "Classifier file (default: data/classifiers/<fashion-mnist|mnist|cifar10>.safetensors)");
  c->add_option("--channels", o.channels, "1 or 3 (default: 1 for fashion-mnist and mnist, 3 for CIFAR-10)")
      ->check(CLI::IsMember({1, 3}));
  c->add_option("--epochs", o.epochs, "Passes over the training images (default: 2; mnist: 8)")
      ->check(CLI::Range(1, 1000));
  c->add_option("--batch-size", o.batch_size, "Batch size")->capture_default_str()->check(CLI::Range(2, 65536));
  c->add_option("--seed", o.seed, "Seed of the initial weights and the data order")->capture_default_str();
  c->add_option("--device", o.device, "cpu | cuda")->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  return c;
}

int run_classifier(const ClassifierOptions& o) {
  const int channels = o.channels != 0 ? o.channels : (o.data == "fashion-mnist" || o.data == "mnist" ? 1 : 3);
  const eval::LabelledSplit split = eval::load_labelled_split(o.data, channels);
  const std::string path = o.out.empty() ? eval::default_classifier_path(split.name) : o.out;
  eval::ClassifierTraining training = eval::default_classifier_training(split.name);
  if (o.epochs != 0) training.epochs = o.epochs;
  std::fprintf(stderr,
               "classifier: %s, %lld training and %lld test images, %dx32x32, %d classes, %d epochs, shifts up to %d "
               "pixels, on %s\n",
               split.name.c_str(), static_cast<long long>(split.train.count), static_cast<long long>(split.test.count),
               channels, split.train.num_classes(), training.epochs, training.max_shift, o.device.c_str());
  training.batch_size = o.batch_size;
  training.seed = o.seed;
  training.device = o.device;
  const auto start = std::chrono::steady_clock::now();
  const eval::ClassifierInfo info = eval::train_classifier(split, path, training);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("test accuracy %.4f on %lld %s test images (%.0f s); wrote %s\n", info.test_accuracy,
              static_cast<long long>(split.test.count), split.name.c_str(), seconds, path.c_str());
  return 0;
}

}  // namespace gancu::app
