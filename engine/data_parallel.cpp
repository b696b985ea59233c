#include "engine/data_parallel.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <vector>

#include "engine/comm.h"
#include "engine/kernel_params.h"

namespace gancu {
namespace {

struct Bucket {
  int after = -1;  // the node the bucket's all-reduce follows
  std::vector<ValueId> grads;
};

// The last node before `end` that writes or reads the memory of `grad` (the Adam steps aside: they read the averaged
// gradient): averaging in place any earlier would change what a later backward node reads (a gradient shared with an
// activation's, as an add's is).
int last_touch(const Graph& g, ValueId grad, int end) {
  const ValueId root = g.storage_root(grad);
  for (int i = end - 1; i >= 0; --i) {
    const Node& n = g.nodes()[static_cast<size_t>(i)];
    if (n.op == OpKind::kAdamStep) continue;
    for (const auto* list : {&n.inputs, &n.outputs})
      for (ValueId v : *list)
        if (v != kNoValue && g.storage_root(v) == root) return i;
  }
  throw std::invalid_argument("make_data_parallel: gradient " + g.value(grad).name + " is never produced");
}

std::vector<Bucket> buckets_of(const Graph& g, int adam, int64_t bucket_bytes) {
  const Node& step = g.nodes()[static_cast<size_t>(adam)];
  std::vector<std::pair<int, ValueId>> grads;  // (last touch, storage root), each memory once
  std::set<ValueId> seen;
  for (size_t k = 1; k < step.inputs.size(); k += 4) {
    const ValueId root = g.storage_root(step.inputs[k]);
    if (seen.insert(root).second) grads.emplace_back(last_touch(g, root, adam), root);
  }
  std::stable_sort(grads.begin(), grads.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Bucket> buckets;
  int64_t bytes = 0;
  for (const auto& [touch, grad] : grads) {
    if (buckets.empty() || bytes >= bucket_bytes) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().grads.push_back(grad);
    buckets.back().after = touch;
    bytes += g.value(grad).numel() * int64_t(sizeof(float));
  }
  return buckets;
}

// ---- host kernels ------------------------------------------------------------------------------------------------

using C = KernelCall;
using S = StepState;
using B = BackendContext;

int64_t all_reduce_scratch(const Graph& g, const Node& n) {
  int64_t floats = 0;
  for (ValueId v : n.inputs) floats += g.shape(v).numel();
  return floats;
}

// Packs the bucket into the scratch, sums it over the group (one collective per bucket), and writes back the mean.
// A group of one leaves the gradients untouched (bit-identical to a run without the pass).
void all_reduce_mean(const C& c, S&, const B&) {
  Communicator& group = process_group();
  if (group.size() == 1) return;
  float* packed = c.scratch;
  int64_t offset = 0;
  for (size_t i = 0; i < c.in.size(); ++i) {
    const int64_t n = c.in_shape(int(i)).numel();
    std::copy_n(c.in[i], n, packed + offset);
    offset += n;
  }
  group.all_reduce_sum(packed, offset);
  const float scale = 1.0f / float(group.size());
  offset = 0;
  for (size_t i = 0; i < c.in.size(); ++i) {
    const int64_t n = c.in_shape(int(i)).numel();
    for (int64_t j = 0; j < n; ++j) c.in[i][j] = packed[offset + j] * scale;
    offset += n;
  }
}

int64_t channel_offset(const BatchNorm2dParams& p, int n, int c) { return (int64_t(n) * p.channels + c) * p.spatial; }

// inputs x, gamma, beta, running_mean, running_var; outputs y, save_mean, save_invstd (as kBatchNorm2dTrain).
void sync_batch_norm2d_train(const C& c, S&, const B&) {
  if (c.node->attrs.fused_activation != FusedActivation::kNone)
    throw std::logic_error(c.node->name + ": a synchronised batch norm cannot carry a fused activation");
  const BatchNorm2dParams p = batch_norm2d_params(c.in_shape(0), c.node->attrs);
  Communicator& group = process_group();
  const float *x = c.in[0], *gamma = c.in[1], *beta = c.in[2];
  float *running_mean = c.in[3], *running_var = c.in[4], *y = c.out[0], *save_mean = c.out[1], *save_invstd = c.out[2];
  const double count = double(int64_t(p.batch) * p.spatial) * group.size();
  if (count < 2) throw std::invalid_argument("batch_norm2d training needs more than one value per channel");
  // Two exact passes over the group's batch: the mean, then the squared deviations from it.
  std::vector<double> sums(size_t(p.channels), 0.0), squares(size_t(p.channels), 0.0);
  for (int ch = 0; ch < p.channels; ++ch)
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) sums[size_t(ch)] += double(x[channel_offset(p, n, ch) + s]);
  group.all_reduce_sum(sums.data(), p.channels);
  for (int ch = 0; ch < p.channels; ++ch) {
    const double mean = sums[size_t(ch)] / count;
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const double d = double(x[channel_offset(p, n, ch) + s]) - mean;
        squares[size_t(ch)] += d * d;
      }
  }
  group.all_reduce_sum(squares.data(), p.channels);
  for (int ch = 0; ch < p.channels; ++ch) {
    const double mean = sums[size_t(ch)] / count;
    const double invstd = 1.0 / std::sqrt(squares[size_t(ch)] / count + p.eps);
    const double g = double(gamma[ch]), b = double(beta[ch]);
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const int64_t i = channel_offset(p, n, ch) + s;
        y[i] = float(g * (double(x[i]) - mean) * invstd + b);
      }
    save_mean[ch] = float(mean);
    save_invstd[ch] = float(invstd);
    const double unbiased_var = squares[size_t(ch)] / (count - 1);
    running_mean[ch] = float((1.0 - p.momentum) * double(running_mean[ch]) + p.momentum * mean);
    running_var[ch] = float((1.0 - p.momentum) * double(running_var[ch]) + p.momentum * unbiased_var);
  }
}

// inputs dy, x, gamma, save_mean, save_invstd; outputs dx, dgamma, dbeta (as kBatchNorm2dBackward). Each rank's loss
// reaches every rank's x through the shared statistics, so dx takes the group's Σdy and Σdy·x̂; dgamma and dbeta are
// this rank's sums (the gradient all-reduce averages them like every other parameter gradient).
void sync_batch_norm2d_backward(const C& c, S&, const B&) {
  if (c.node->attrs.fused_activation != FusedActivation::kNone)
    throw std::logic_error(c.node->name + ": a synchronised batch norm cannot carry a fused activation");
  const BatchNorm2dParams p = batch_norm2d_params(c.in_shape(1), c.node->attrs);
  Communicator& group = process_group();
  const float *dy = c.in[0], *x = c.in[1], *gamma = c.in[2], *save_mean = c.in[3], *save_invstd = c.in[4];
  float *dx = c.out[0], *dgamma = c.out[1], *dbeta = c.out[2];
  const double count = double(int64_t(p.batch) * p.spatial) * group.size();
  std::vector<double> sums(size_t(2 * p.channels), 0.0);  // Σdy per channel, then Σdy·x̂
  for (int ch = 0; ch < p.channels; ++ch) {
    const double mean = double(save_mean[ch]), invstd = double(save_invstd[ch]);
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const int64_t i = channel_offset(p, n, ch) + s;
        sums[size_t(ch)] += double(dy[i]);
        sums[size_t(p.channels + ch)] += double(dy[i]) * (double(x[i]) - mean) * invstd;
      }
    dbeta[ch] = float(sums[size_t(ch)]);
    dgamma[ch] = float(sums[size_t(p.channels + ch)]);
  }
  group.all_reduce_sum(sums.data(), 2 * int64_t(p.channels));
  for (int ch = 0; ch < p.channels; ++ch) {
    const double mean = double(save_mean[ch]), invstd = double(save_invstd[ch]);
    const double sum_dy = sums[size_t(ch)], sum_dy_xhat = sums[size_t(p.channels + ch)];
    const double k = double(gamma[ch]) * invstd / count;
    for (int n = 0; n < p.batch; ++n)
      for (int s = 0; s < p.spatial; ++s) {
        const int64_t i = channel_offset(p, n, ch) + s;
        const double xhat = (double(x[i]) - mean) * invstd;
        dx[i] = float(k * (count * double(dy[i]) - sum_dy - xhat * sum_dy_xhat));
      }
  }
}

}  // namespace

int make_data_parallel(Graph& graph, const DataParallelOptions& options) {
  if (options.bucket_bytes < 1) throw std::invalid_argument("make_data_parallel: bucket_bytes must be positive");
  std::vector<Node>& nodes = graph.nodes();
  if (options.sync_batch_norm)
    for (Node& n : nodes) {
      const bool forward = n.op == OpKind::kBatchNorm2dTrain, backward = n.op == OpKind::kBatchNorm2dBackward;
      if (!forward && !backward) continue;
      if (n.attrs.fused_activation != FusedActivation::kNone)
        throw std::invalid_argument(n.name + ": synchronise batch norms before fusing activations into them");
      n.op = forward ? OpKind::kSyncBatchNorm2dTrain : OpKind::kSyncBatchNorm2dBackward;
    }

  std::map<int, std::vector<Node>> after;  // node index -> all-reduce nodes that follow it, in order
  int inserted = 0;
  std::set<ValueId> averaged;
  std::map<std::string, int> updates;  // per optimiser: its k D updates get distinct node names
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    const Node& step = nodes[static_cast<size_t>(i)];
    if (step.op != OpKind::kAdamStep) continue;
    const std::string& optimiser = graph.optimisers().at(static_cast<size_t>(step.attrs.counter));
    const int update = updates[optimiser]++;
    // Built by append: GCC 12 warns falsely (-Wrestrict) on "#" + std::to_string(update).
    std::string prefix = std::string("data_parallel.").append(optimiser);
    if (update > 0) prefix.append("#").append(std::to_string(update));
    prefix.append(".bucket");
    int index = 0;
    for (Bucket& bucket : buckets_of(graph, i, options.bucket_bytes)) {
      for (ValueId v : bucket.grads)
        if (!averaged.insert(v).second)
          throw std::invalid_argument("make_data_parallel: gradient " + graph.value(v).name + " feeds two optimiser steps");
      Node n;
      n.op = OpKind::kAllReduceMean;
      n.name = prefix + std::to_string(index++);
      n.inputs = std::move(bucket.grads);
      after[bucket.after].push_back(std::move(n));
      ++inserted;
    }
  }
  std::vector<Node> rewritten;
  rewritten.reserve(nodes.size() + size_t(inserted));
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    rewritten.push_back(std::move(nodes[static_cast<size_t>(i)]));
    const auto it = after.find(i);
    if (it != after.end())
      for (Node& n : it->second) rewritten.push_back(std::move(n));
  }
  nodes = std::move(rewritten);
  return inserted;
}

void set_host_data_parallel_kernels(DispatchTable& table) {
  table[static_cast<size_t>(OpKind::kAllReduceMean)] = {all_reduce_mean, all_reduce_scratch};
  table[static_cast<size_t>(OpKind::kSyncBatchNorm2dTrain)] = {sync_batch_norm2d_train, nullptr};
  table[static_cast<size_t>(OpKind::kSyncBatchNorm2dBackward)] = {sync_batch_norm2d_backward, nullptr};
}

}  // namespace gancu
