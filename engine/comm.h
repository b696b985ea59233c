// The process group of a data-parallel run: one process per device, every process running the same step on its own
// shard of the batch (engine/data_parallel.h). The transport is MPI (OpenMPI): its all-reduce averages the CPU
// backend's gradients, and on CUDA it bootstraps NCCL (engine/comm_nccl.cu), which averages device gradients inside
// the captured step. gancu has no transport of its own.
//
// Processes meet through MPI. Started by `mpirun -np N`, MPI_Init finds its peers from the launcher. Started by
// anything else (torchrun, a scheduler) with torchrun's RANK / WORLD_SIZE / LOCAL_RANK but no MPI launcher, there is
// no MPI-provided way for independent processes to meet (torchrun's rendezvous is a TCP store, a transport of its
// own): init_process_group() refuses WORLD_SIZE > 1 there with a message saying to launch with mpirun, and runs
// WORLD_SIZE = 1 as a group of one.
#pragma once
#include <cstdint>
#include <string>

namespace gancu {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The rank's index among the processes on its machine (which GPU it takes).
  virtual int local_rank() const = 0;
  // In place on host memory; every rank gets the same bits (a fixed reduction order for a fixed group).
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  virtual void all_reduce_sum(double* data, int64_t n) = 0;
  virtual void broadcast(float* data, int64_t n, int root) = 0;
  virtual void broadcast_bytes(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every process of the group (after printing `why` on this one); does not return.
  [[noreturn]] virtual void abort(const std::string& why, int exit_code) = 0;
};

// The process group the run belongs to: MPI's world when an MPI launcher started this process (MPI_Init on first
// call, MPI_Finalize at exit), else a group of one without MPI (every collective a no-op), so a plain `gan train`
// never touches MPI. The data-parallel kernels reach the group through this. Throws std::runtime_error for
// torchrun-style WORLD_SIZE > 1 without an MPI launcher.
Communicator& process_group();

// Whether an MPI launcher started this process (OpenMPI's, or a PMI/PMIx one).
bool started_by_mpi_launcher();

}  // namespace gancu
