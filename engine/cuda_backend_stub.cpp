// make_cuda_backend in a build without CUDA: it exists so that tools can offer `--device cuda` without #ifdefs and
// fail with a clear message. The real backend is engine/cuda_backend.cu, compiled only when GANCU_CUDA is on.
#ifndef GANCU_HAVE_CUDA
#include <stdexcept>

#include "engine/cuda_backend.h"

namespace gancu {

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions&) {
  throw std::runtime_error("the CUDA backend is not in this build (configured with GANCU_CUDA off or no CUDA toolkit)");
}

bool cuda_backend_available() { return false; }

}  // namespace gancu
#endif
