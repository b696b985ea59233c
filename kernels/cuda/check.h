// Error checking for CUDA runtime, cuBLAS and cuDNN calls: failures throw std::runtime_error naming the call and
// the location, so a misuse surfaces as a clear message rather than a silent wrong result.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace gancu::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " + cudaGetErrorString(err));
}

// Number of CUDA devices usable by this process; 0 when there is no GPU or no driver (never throws).
int device_count();
// The current device's name as the driver reports it ("NVIDIA H100 80GB HBM3").
std::string device_name();

}  // namespace gancu::cuda

#define GANCU_CUDA_CHECK(call)                                                              \
  do {                                                                                      \
    cudaError_t gancu_err_ = (call);                                                        \
    if (gancu_err_ != cudaSuccess) ::gancu::cuda::throw_cuda_error(gancu_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: catches bad launch configurations at once.
#define GANCU_CUDA_CHECK_LAUNCH() GANCU_CUDA_CHECK(cudaGetLastError())
