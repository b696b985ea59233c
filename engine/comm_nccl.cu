// NCCL for the CUDA backend's data-parallel kernels (engine/comm_nccl.h). Never run: this machine has no GPU.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <mutex>
#include <stdexcept>
#include <string>

#include "engine/comm.h"
#include "engine/comm_nccl.h"
#include "engine/cuda_dispatch.h"
#include "kernels/cuda/check.h"

#ifndef GANCU_NCCL_LIBRARY
#define GANCU_NCCL_LIBRARY "libnccl.so.2"
#endif

namespace gancu {
namespace {

// The NCCL entry points gancu calls, resolved from the shared library (the types are nccl.h's own).
struct NcclApi {
  decltype(&::ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&::ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&::ncclAllReduce) all_reduce = nullptr;
  decltype(&::ncclGroupStart) group_start = nullptr;
  decltype(&::ncclGroupEnd) group_end = nullptr;
  decltype(&::ncclGetErrorString) error_string = nullptr;
  std::string unavailable;  // "" when every entry point resolved
};

template <class Fn>
bool resolve(void* library, const char* name, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(library, name));
  return fn != nullptr;
}

const NcclApi& nccl() {
  static const NcclApi api = [] {
    NcclApi a;
    void* library = dlopen(GANCU_NCCL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!library) library = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      const char* why = dlerror();
      a.unavailable = std::string("cannot load NCCL (libnccl.so.2): ") + (why ? why : "not found");
      return a;
    }
    const bool ok = resolve(library, "ncclGetUniqueId", a.get_unique_id) &&
                    resolve(library, "ncclCommInitRank", a.comm_init_rank) &&
                    resolve(library, "ncclAllReduce", a.all_reduce) && resolve(library, "ncclGroupStart", a.group_start) &&
                    resolve(library, "ncclGroupEnd", a.group_end) &&
                    resolve(library, "ncclGetErrorString", a.error_string);
    if (!ok) a.unavailable = "libnccl.so.2 lacks an entry point gancu needs (NCCL 2.10 or newer is required for ncclAvg)";
    return a;
  }();
  return api;
}

void check_nccl(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return;
  throw std::runtime_error(std::string(what) + ": " + nccl().error_string(result));
}

// The group's NCCL communicator on the current device, made on first use (collective: every rank must come here, which
// they do, all running the same step). Never destroyed: it lives as long as the process, like MPI's world.
ncclComm_t group_communicator() {
  static std::once_flag once;
  static ncclComm_t comm = nullptr;
  std::call_once(once, [] {
    const NcclApi& api = nccl();
    if (!api.unavailable.empty()) throw std::runtime_error(api.unavailable);
    Communicator& group = process_group();
    ncclUniqueId id{};
    if (group.rank() == 0) check_nccl(api.get_unique_id(&id), "ncclGetUniqueId");
    group.broadcast_bytes(&id, sizeof(id), 0);
    check_nccl(api.comm_init_rank(&comm, group.size(), id, group.rank()), "ncclCommInitRank");
  });
  return comm;
}

// inputs: the bucket's gradients, averaged in place. One NCCL group, so NCCL may fuse them into few kernels.
void all_reduce_mean(const KernelCall& c, StepState&, const BackendContext& context) {
  const cuda_backend::CudaContext& ctx = cuda_backend::cuda_context(context);
  const NcclApi& api = nccl();
  ncclComm_t comm = group_communicator();
  check_nccl(api.group_start(), "ncclGroupStart");
  for (size_t i = 0; i < c.in.size(); ++i) {
    const size_t n = static_cast<size_t>(c.in_shape(int(i)).numel());
    const ncclResult_t result = api.all_reduce(c.in[i], c.in[i], n, ncclFloat, ncclAvg, comm, ctx.stream);
    if (result != ncclSuccess) {
      api.group_end();  // leave the group before reporting, so the next step starts clean
      check_nccl(result, "ncclAllReduce");
    }
  }
  check_nccl(api.group_end(), "ncclGroupEnd");
}

}  // namespace

void set_cuda_data_parallel_kernels(DispatchTable& table) {
  table[static_cast<size_t>(OpKind::kAllReduceMean)] = {all_reduce_mean, nullptr};
}

void use_cuda_device_of_rank(int local_rank) {
  int devices = 0;
  GANCU_CUDA_CHECK(cudaGetDeviceCount(&devices));
  if (devices < 1) throw std::runtime_error("no CUDA device for rank with local rank " + std::to_string(local_rank));
  GANCU_CUDA_CHECK(cudaSetDevice(local_rank % devices));
}

std::string nccl_unavailable_reason() { return nccl().unavailable; }

}  // namespace gancu
