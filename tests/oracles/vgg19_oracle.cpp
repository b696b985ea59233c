// gancu's side of tests/vgg19_against_torchvision.py: VGG19 features (models/vgg19.h) of images read from .npy, with
// torchvision's weights from a safetensors file, written to .npy. Errors: one line on stderr, exit status 1.
//   gancu_vgg19_oracle WEIGHTS.safetensors IMAGES.npy CONVOLUTIONS cpu|reference OUT.npy
#include <cstdio>
#include <exception>
#include <string>

#include "core/npy.h"
#include "engine/engine.h"
#include "models/vgg19.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s WEIGHTS.safetensors IMAGES.npy CONVOLUTIONS cpu|reference OUT.npy\n", argv[0]);
    return 2;
  }
  try {
    using namespace gancu;
    const Tensor images = read_npy(argv[2]);
    models::Vgg19Config config;
    config.convolutions = std::stoi(argv[3]);
    const std::string device = argv[4];
    Graph graph;
    Builder b(graph);
    const ValueId x = b.input("images", images.shape());
    const ValueId features = models::vgg19_features(b, x, config);
    b.keep(features);
    auto backend = device == "reference" ? make_reference_backend() : make_cpu_backend();
    ParameterStore store(*backend, 0);
    models::load_vgg19(store, graph, argv[1], config);
    Plan plan(std::move(graph), store);
    plan.write(x, images.data());
    plan.run();
    write_npy(argv[5], plan.read(features));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
