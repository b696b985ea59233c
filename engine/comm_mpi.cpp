// The process group over MPI (engine/comm.h), and the group of one that plain runs get.
// MPI's C interface only (OpenMPI's mpi.h would otherwise pull in its deprecated C++ bindings).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "engine/comm.h"

namespace gancu {
namespace {

void check_count(int64_t n, const char* what) {
  if (n < 0 || n > INT_MAX) throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) + " elements exceed MPI's int count");
}

void check_mpi(int err, const char* what) {
  if (err == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(err, text, &length);
  throw std::runtime_error(std::string(what) + ": " + std::string(text, size_t(length)));
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override {
    const char* v = env("LOCAL_RANK");
    return v ? std::atoi(v) : 0;
  }
  void all_reduce_sum(float*, int64_t) override {}
  void all_reduce_sum(double*, int64_t) override {}
  void broadcast(float*, int64_t, int) override {}
  void broadcast_bytes(void*, int64_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(const std::string& why, int exit_code) override {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::exit(exit_code);
  }
};

// MPI_COMM_WORLD with MPI's default error handler (errors are fatal: a failed collective aborts the job, it never
// returns garbage). A rank that dies without MPI_Finalize makes mpirun kill the others (tests/ddp_kill_rank.sh).
class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) check_mpi(MPI_Init(nullptr, nullptr), "MPI_Init");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
  }
  ~MpiWorld() override {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  void all_reduce_sum(float* data, int64_t n) override {
    check_count(n, "all_reduce_sum");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
  void all_reduce_sum(double* data, int64_t n) override {
    check_count(n, "all_reduce_sum");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
  void broadcast(float* data, int64_t n, int root) override {
    check_count(n, "broadcast");
    check_mpi(MPI_Bcast(data, int(n), MPI_FLOAT, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void broadcast_bytes(void* data, int64_t bytes, int root) override {
    check_count(bytes, "broadcast_bytes");
    check_mpi(MPI_Bcast(data, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(const std::string& why, int exit_code) override {
    std::fprintf(stderr, "rank %d: %s\n", rank_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);  // MPI_Abort does not return; this satisfies [[noreturn]]
  }

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};

}  // namespace

bool started_by_mpi_launcher() {
  return env("OMPI_COMM_WORLD_SIZE") || env("PMIX_RANK") || env("PMI_RANK") || env("PMI_SIZE");
}

Communicator& process_group() {
  static const std::unique_ptr<Communicator> group = []() -> std::unique_ptr<Communicator> {
    if (started_by_mpi_launcher()) return std::make_unique<MpiWorld>();
    const char* world = env("WORLD_SIZE");
    if (world && std::string(world) != "1")
      throw std::runtime_error(std::string("WORLD_SIZE=") + world +
                               " but no MPI launcher started this process: gancu's processes meet through MPI, so "
                               "launch with `mpirun -np " + world + " gan train ...` (torchrun's TCP rendezvous is "
                               "not supported)");
    return std::make_unique<SingleProcess>();
  }();
  return *group;
}

}  // namespace gancu
