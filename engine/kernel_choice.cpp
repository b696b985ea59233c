#include "engine/kernel_choice.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "core/files.h"

namespace gancu {
namespace {

constexpr const char* kFormat = "gancu kernel choices 1";

std::string shape_key(int batch, int in_c, int in_h, int in_w, int kernel, int stride, int pad, int out_c, int out_h,
                      int out_w) {
  char key[160];
  std::snprintf(key, sizeof key, "n%d c%dx%dx%d k%d s%d p%d -> c%dx%dx%d", batch, in_c, in_h, in_w, kernel, stride, pad,
                out_c, out_h, out_w);
  return key;
}

}  // namespace

std::string conv_shape_key(const Conv2dParams& p) {
  return shape_key(p.batch, p.in_channels, p.in_h, p.in_w, p.kernel, p.stride, p.pad, p.out_channels, p.out_h(),
                   p.out_w());
}

// The output size already encodes output_pad, so the same fields identify a transposed convolution (its op name
// keeps it apart from a conv2d).
std::string conv_shape_key(const ConvTranspose2dParams& p) {
  return shape_key(p.batch, p.in_channels, p.in_h, p.in_w, p.kernel, p.stride, p.pad, p.out_channels, p.out_h(),
                   p.out_w());
}

KernelChoiceCache::KernelChoiceCache(std::string path) : path_(std::move(path)) {
  if (path_.empty() || !std::filesystem::exists(path_)) return;
  const std::vector<char> bytes = read_file(path_);
  const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("format") || j["format"] != kFormat || !j.contains("choices") ||
      !j["choices"].is_array())
    throw std::runtime_error(path_ + ": not a gancu kernel-choice file (delete it to measure the kernels again)");
  try {
    for (const nlohmann::json& e : j["choices"]) {
      const std::string kernels = e.at("kernels").get<std::string>();
      if (kernels != "custom" && kernels != "cudnn") throw std::runtime_error("kernels \"" + kernels + "\"");
      KernelChoice c;
      c.cudnn = kernels == "cudnn";
      c.custom_ms = e.at("custom_ms").get<double>();
      c.cudnn_ms = e.at("cudnn_ms").get<double>();
      entries_[Key{e.at("device").get<std::string>(), e.at("math").get<std::string>(), e.at("op").get<std::string>(),
                   e.at("shape").get<std::string>()}] = c;
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(path_ + ": bad kernel-choice entry (" + e.what() +
                             "); delete the file to measure the kernels again");
  }
}

const KernelChoice* KernelChoiceCache::find(const std::string& device, const std::string& math, const std::string& op,
                                            const std::string& shape) const {
  auto it = entries_.find(Key{device, math, op, shape});
  return it == entries_.end() ? nullptr : &it->second;
}

const KernelChoice& KernelChoiceCache::insert(const std::string& device, const std::string& math,
                                              const std::string& op, const std::string& shape,
                                              const KernelChoice& choice) {
  changed_ = true;
  return entries_[Key{device, math, op, shape}] = choice;
}

void KernelChoiceCache::save_if_changed() {
  if (path_.empty() || !changed_) return;
  nlohmann::ordered_json choices = nlohmann::ordered_json::array();
  for (const auto& [key, c] : entries_)
    choices.push_back({{"device", key.device},
                       {"math", key.math},
                       {"op", key.op},
                       {"shape", key.shape},
                       {"kernels", c.cudnn ? "cudnn" : "custom"},
                       {"custom_ms", c.custom_ms},
                       {"cudnn_ms", c.cudnn_ms}});
  const nlohmann::ordered_json j{{"format", kFormat}, {"choices", choices}};
  write_file_atomic(path_, j.dump(1) + "\n");
  changed_ = false;
}

}  // namespace gancu
