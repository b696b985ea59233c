// Private to kernels/cuda: the launch shape of the memory-bound elementwise kernels (grid-stride loops with 64-bit
// indices, one thread per element per iteration).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "kernels/cuda/check.h"

namespace gancu::cuda {

constexpr int kElementwiseThreads = 256;

// Enough blocks to fill any current GPU several times over; the grid-stride loop covers the rest.
inline unsigned elementwise_grid(int64_t n) {
  return static_cast<unsigned>(
      std::min<int64_t>((n + kElementwiseThreads - 1) / kElementwiseThreads, int64_t(1) << 16));
}

// Launches `kernel<<<elementwise_grid(n), kElementwiseThreads>>>(n, args...)`; n == 0 launches nothing (a zero grid
// is an error).
template <class Kernel, class... Args>
void launch_elementwise(Kernel kernel, int64_t n, cudaStream_t stream, Args... args) {
  if (n < 0) throw std::invalid_argument("elementwise kernel: negative element count");
  if (n == 0) return;
  kernel<<<elementwise_grid(n), kElementwiseThreads, 0, stream>>>(n, args...);
  GANCU_CUDA_CHECK_LAUNCH();
}

}  // namespace gancu::cuda

#define GANCU_GRID_STRIDE(i, n)                                                                 \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);                     \
       i += int64_t(gridDim.x) * blockDim.x)
