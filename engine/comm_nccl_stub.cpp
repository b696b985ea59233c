// engine/comm_nccl.h in a build without CUDA: nothing to register, no device to take, no NCCL.
#ifndef GANCU_HAVE_CUDA
#include "engine/comm_nccl.h"

namespace gancu {

void set_cuda_data_parallel_kernels(DispatchTable&) {}
void use_cuda_device_of_rank(int) {}
std::string nccl_unavailable_reason() { return "this build has no CUDA"; }

}  // namespace gancu
#endif
