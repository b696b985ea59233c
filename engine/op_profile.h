// Where a step's time goes: time, calls, FLOPs and bytes per op kind, accumulated by a backend's profiling
// (Backend::enable_profiling) and printed as one table, the same on every backend.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "engine/graph.h"

namespace gancu {

// The work a node cannot avoid: multiply-add FLOPs (×2) of its convolutions and linear layers (0 for the other ops,
// whose cost is memory traffic), and its compulsory bytes, every input read once and every output written once
// (Adam also writes back its parameters and moments in place).
struct OpCost {
  double flops = 0, bytes = 0;
};
OpCost op_cost(const Graph& graph, const Node& node);

class OpProfile {
 public:
  void add(const Graph& graph, const Node& node, double seconds);
  void end_step() { ++steps_; }
  // Per op kind, slowest first: ms per step, share, calls per step, achieved GFLOP/s and GB/s; then the totals.
  std::string report() const;

 private:
  struct Row {
    double seconds = 0, flops = 0, bytes = 0;
    int64_t calls = 0;
  };
  std::array<Row, static_cast<size_t>(OpKind::kCount)> rows_{};
  int64_t steps_ = 0;
};

}  // namespace gancu
