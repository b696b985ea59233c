// Private to the CUDA backend: the dispatch table and the context its kernel functions run in.
//
// The backend owns one CudaContext per execute() (the stream, the math mode, the cuDNN and cuBLAS handles, the device
// step and counters of the call list being run) and passes it to every kernel function as the engine's opaque
// BackendContext (backend.h). Each table entry casts it back once, through cuda_context(), and hands the row the
// CudaContext; a context of another backend is a logic error, reported, never a silent misread.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "engine/backend.h"
#include "engine/cuda_backend.h"
#include "engine/kernel_choice.h"
#include "kernels/cuda/math_mode.h"
#include "kernels/cudnn/cudnn_context.h"

namespace gancu::cuda_backend {

struct CudaContext final : BackendContext {
  cudaStream_t stream = nullptr;
  cuda::MathMode math = cuda::MathMode::kTf32;
  cudnn::Context* cudnn = nullptr;  // used by the cuDNN convolution entries only
  cublasHandle_t cublas = nullptr;
  int64_t* device_step = nullptr;      // device int64: the step the running call list is at
  int64_t* device_counters = nullptr;  // device int64 array: the optimisers' step counters (Attrs::counter indexes it)
  // --kernels auto: the per-shape choices and the device they are for (null otherwise), and the running call list's
  // memo of them, one entry per call (-1: not looked up yet, 0: custom, 1: cuDNN), so that a step launched call by
  // call does not build keys and search the cache on every convolution.
  KernelChoiceCache* choices = nullptr;
  const std::string* device_name = nullptr;
  const KernelCall* calls_begin = nullptr;
  signed char* call_choices = nullptr;
};

// The CUDA backend's context behind the engine's opaque one; std::logic_error if it is another backend's.
const CudaContext& cuda_context(const BackendContext& context);

// One entry per op kind; convolutions from kernels/cuda or kernels/cudnn. Ops without a CUDA kernel stay null so that
// the Plan reports "backend cuda has no kernel for X".
DispatchTable make_cuda_dispatch_table(CudaBackendOptions::Kernels conv_kernels);

}  // namespace gancu::cuda_backend
