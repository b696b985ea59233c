#include "models/vgg19.h"

#include <map>
#include <stdexcept>

#include "tools/io/safetensors.h"

namespace gancu::models {
namespace {

// torchvision's configuration "E": output channels of each convolution, 0 for a 2×2 max pool.
constexpr int kLayers[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0};
constexpr int kConvolutions = 16;
constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};
const char* const kNormalize = "normalize";

}  // namespace

void validate(const Vgg19Config& config) {
  if (config.convolutions < 1 || config.convolutions > kConvolutions)
    throw std::invalid_argument("vgg19: the cut must be after convolution 1 to 16, got " +
                                std::to_string(config.convolutions));
  if (config.prefix.empty()) throw std::invalid_argument("vgg19: the weights need a name prefix");
}

int vgg19_conv_index(int k) {
  int index = 0, seen = 0;
  for (int channels : kLayers) {
    if (channels > 0 && ++seen == k) return index;
    index += channels > 0 ? 2 : 1;  // a convolution and its ReLU, or a pool
  }
  throw std::invalid_argument("vgg19: no convolution " + std::to_string(k));
}

ValueId vgg19_features(Builder& b, ValueId images, const Vgg19Config& config) {
  validate(config);
  const Shape s = b.graph().shape(images);  // a copy: declaring values may move the value list
  if (s.rank() != 4 || s[1] != 3) shape_error(config.prefix + "features", "expects images [N, 3, H, W], got " + s.str());
  const std::string saved_prefix = b.prefix();
  const bool saved_frozen = b.frozen();
  b.set_prefix(config.prefix);
  b.set_frozen(true);
  ValueId x = b.conv2d(images, kNormalize, 3, 1, 1, 0, true, {});
  int index = 0, seen = 0;
  for (int channels : kLayers) {
    if (channels == 0) {
      x = b.max_pool2d(x, 2, 2);
      ++index;
      continue;
    }
    x = b.relu(b.conv2d(x, "features." + std::to_string(index), channels, 3, 1, 1, true, {}));
    index += 2;
    if (++seen == config.convolutions) break;
  }
  b.set_frozen(saved_frozen);
  b.set_prefix(saved_prefix);
  return x;
}

void load_vgg19(ParameterStore& store, const Graph& graph, const std::string& path, const Vgg19Config& config) {
  validate(config);
  std::map<std::string, Shape> from_file = frozen_shapes(graph, config.prefix);
  const std::string weight = std::string(kNormalize) + ".weight", bias = std::string(kNormalize) + ".bias";
  if (from_file.erase(weight) + from_file.erase(bias) != 2 || from_file.empty())
    throw std::invalid_argument(path + ": the graph has no VGG19 features under \"" + config.prefix + "\"");
  // Present, F32 and of these shapes, each refused in one line naming the file and the tensor before data is read.
  std::map<std::string, Tensor> tensors = load_safetensors(path, from_file);
  require_finite(tensors, path);
  Tensor w(Shape{3, 3, 1, 1}), b(Shape{3});
  for (int c = 0; c < 3; ++c) {  // x ∈ [−1, 1] → ((x + 1)/2 − μ)/σ = x/(2σ) + (1 − 2μ)/(2σ)
    w[c * 3 + c] = float(1.0 / (2.0 * double(kStd[c])));
    b[c] = float((1.0 - 2.0 * double(kMean[c])) / (2.0 * double(kStd[c])));
  }
  tensors.emplace(weight, std::move(w));
  tensors.emplace(bias, std::move(b));
  load_frozen(store, graph, config.prefix, tensors, path);
}

}  // namespace gancu::models
