// The CUDA side of data-parallel training: NCCL, bootstrapped over the MPI process group (engine/comm.h).
//
// NCCL is loaded at run time (dlopen of libnccl.so.2: the toolkit's copy found at configure time, else the loader's
// search path, where PyTorch's wheel puts one), so a binary built here starts on a GPU machine without NCCL and only
// a data-parallel CUDA run needs it. The communicator is made on first use: rank 0 asks NCCL for a unique id, MPI
// broadcasts it, every rank joins with ncclCommInitRank. That first use is the first step's eager warm-up, outside any
// CUDA-graph capture; later steps capture the NCCL calls into the step's graph (NCCL supports stream capture).
#pragma once
#include <string>

#include "engine/backend.h"

namespace gancu {

// The CUDA kernel of kAllReduceMean (the CUDA dispatch table): ncclAllReduce with ncclAvg, in place, one call per
// gradient inside one NCCL group, on the step's stream. Null entries in a build without CUDA.
void set_cuda_data_parallel_kernels(DispatchTable& table);

// Before the CUDA backend is made: a process of a group takes GPU local_rank % device count (one GPU per process).
// No-op without CUDA.
void use_cuda_device_of_rank(int local_rank);

// "" when NCCL can be loaded, else why not (GPU tests skip on it).
std::string nccl_unavailable_reason();

}  // namespace gancu
