// Data-parallel training as a graph rewrite: every process of the group (engine/comm.h) builds the same training step
// for its own shard of the batch; this pass makes the step average each optimiser's gradients over the group before
// the optimiser reads them, and optionally synchronises batch-norm statistics. Parameters then stay identical on every
// rank (same start, same averaged gradients, same Adam arithmetic), as in PyTorch's DistributedDataParallel.
//
// Gradients are averaged in buckets (kAllReduceMean nodes, in place, no outputs). Each optimiser step's gradients are
// taken in the order the backward pass finishes with them (the last node that writes or reads each one, the Adam step
// aside) and cut into buckets of about `bucket_bytes`; a bucket's node goes right after that last node, so a bucket
// is averaged as soon as it is complete, while the rest of the backward pass is still to run. How much of that
// overlaps depends on the backend: the CPU backend runs the nodes in order with a blocking MPI_Allreduce (no
// overlap); the CUDA backend enqueues NCCL on the step's stream inside the captured graph (ordered, so no overlap
// either, but without a host round trip).
//
// Synchronised batch norm (PyTorch's SyncBatchNorm) replaces each training-mode batch norm and its backward by the
// kSyncBatchNorm2d* kinds: the forward normalises with the mean and variance of the whole group's batch (exact: a
// sum, then a sum of squared deviations from the global mean, both in double), the backward uses the group's sums of
// dy and dy·x̂, and dgamma / dbeta stay per rank (the gradient all-reduce averages them). Host backends only.
#pragma once
#include <cstdint>

#include "engine/backend.h"
#include "engine/graph.h"

namespace gancu {

struct DataParallelOptions {
  int64_t bucket_bytes = int64_t(25) << 20;  // PyTorch DDP's default bucket_cap_mb
  bool sync_batch_norm = false;
};

// Rewrites a training graph (after autodiff, before the Plan); returns the number of all-reduce nodes inserted.
// Throws std::invalid_argument for a graph with a fused batch norm and sync_batch_norm (fuse after this pass).
int make_data_parallel(Graph& graph, const DataParallelOptions& options = {});

// The host kernels of the data-parallel kinds (the CPU and reference backends' dispatch tables): collectives over
// process_group(), gradients and statistics in host memory.
void set_host_data_parallel_kernels(DispatchTable& table);

}  // namespace gancu
