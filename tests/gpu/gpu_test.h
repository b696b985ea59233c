// GPU tests skip cleanly, saying why, when no CUDA device is present.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/check.h"

#define GANCU_REQUIRE_GPU()                                                              \
  do {                                                                                   \
    if (::gancu::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU test skipped"; \
  } while (0)

namespace gancu {

// A device copy of a host vector, freed on scope exit; to_host() copies it back (synchronously).
template <class T> class DeviceArray {
 public:
  explicit DeviceArray(const std::vector<T>& host) : size_(host.size()) {
    GANCU_CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(size_, 1) * sizeof(T)));
    GANCU_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }
  std::vector<T> to_host() const {
    std::vector<T> host(size_);
    GANCU_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  void upload(const std::vector<T>& host) {
    GANCU_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), std::min(size_, host.size()) * sizeof(T), cudaMemcpyHostToDevice));
  }

 private:
  T* ptr_ = nullptr;
  size_t size_;
};

}  // namespace gancu
