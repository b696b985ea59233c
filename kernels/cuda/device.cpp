#include <cuda_runtime.h>

#include "kernels/cuda/check.h"

namespace gancu::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::string device_name() {
  int device = 0;
  GANCU_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  GANCU_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

}  // namespace gancu::cuda
