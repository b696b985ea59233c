// `--kernels auto`: for each convolution pass and shape, the kernel (custom implicit GEMM or cuDNN) that measured
// faster on this device, remembered in a small JSON file (the run folder's kernel_choices.json) so that a resumed or
// repeated run does not measure again. Host code only: the CUDA backend measures (engine/cuda_dispatch.cu); this file
// keys, stores, loads and saves the results, and is tested without a GPU.
//
// A choice is keyed by the device (its name and the cuDNN version, as the CUDA backend writes it), the math mode, the
// pass (op name) and the convolution's shape, so one file can hold several devices' choices and never applies an
// H100's measurements to another GPU or to another cuDNN.
#pragma once
#include <map>
#include <string>

#include "kernels/params.h"

namespace gancu {

struct KernelChoice {
  bool cudnn = false;  // false: the custom kernel
  double custom_ms = 0, cudnn_ms = 0;  // the medians the choice was made from; cudnn_ms −1: cuDNN could not run it
};

// The shape part of a key, readable: "n128 c3x64x64 k4 s2 p1 -> c64x32x32".
std::string conv_shape_key(const Conv2dParams& p);
std::string conv_shape_key(const ConvTranspose2dParams& p);

class KernelChoiceCache {
 public:
  // path "": in memory only. Otherwise loads the file if it exists; a file that is not a kernel-choice cache throws
  // std::runtime_error("<path>: ...") and is left as it is.
  explicit KernelChoiceCache(std::string path = "");

  const KernelChoice* find(const std::string& device, const std::string& math, const std::string& op,
                           const std::string& shape) const;
  const KernelChoice& insert(const std::string& device, const std::string& math, const std::string& op,
                             const std::string& shape, const KernelChoice& choice);
  size_t size() const { return entries_.size(); }
  // Writes the file atomically if anything was inserted since the last save (no-op for an in-memory cache).
  void save_if_changed();
  const std::string& path() const { return path_; }

 private:
  struct Key {
    std::string device, math, op, shape;
    auto operator<=>(const Key&) const = default;
  };
  std::string path_;
  std::map<Key, KernelChoice> entries_;
  bool changed_ = false;
};

}  // namespace gancu
