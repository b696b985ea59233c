// Fused multi-tensor Adam (torch.optim.Adam semantics, see kernels/cpu/adam.h): one launch updates a whole list of
// parameter tensors (up to kAdamTensorsPerLaunch; longer lists take one launch per that many tensors).
//
// The step count lives on the device so that a captured CUDA graph advances it on every replay: *step holds the number
// of completed steps; adam_step uses t = *step + 1 for the bias corrections and then stores t (a one-thread kernel
// enqueued after the update). Nothing is read back to the host.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/params.h"

namespace gancu::cuda {

// One parameter tensor and its state, all device pointers of `size` floats. m and v start at zero.
struct AdamTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  int64_t size = 0;
};

// How many tensors one launch carries in its kernel arguments (kept under the 4 KiB parameter limit).
constexpr int kAdamTensorsPerLaunch = 48;

// `tensors` is a host array of `count` entries; `step` is a device int64.
void adam_step(const AdamParams& p, const AdamTensor* tensors, int count, int64_t* step, cudaStream_t stream);

}  // namespace gancu::cuda
