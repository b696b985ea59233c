// A compiled plan: the graph, its memory plan, storage for every value on one backend, and the flat list of kernel
// calls. Built once; run() executes a step with no allocation and no graph work.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/memory_plan.h"

namespace gancu {

class Plan {
 public:
  // Applies the graph rewrites the backend asks for (engine/fusion.h), allocates the arena and persistent storage,
  // initialises parameters and buffers from `seed` (each persistent value from its own Philox stream, so adding a
  // layer does not change the others), and resolves every node.
  Plan(Graph graph, Backend& backend, uint64_t seed, int num_counters = 0);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  void run();  // one step; advances step()

  const Graph& graph() const { return graph_; }
  const MemoryPlan& memory() const { return memory_; }
  Backend& backend() { return backend_; }
  int64_t step() const { return state_.step; }
  void set_step(int64_t step) { state_.step = step; }
  std::vector<int64_t>& counters() { return state_.counters; }
  uint64_t seed() const { return state_.seed; }

  ValueId find(const std::string& name) const;  // throws if absent
  // Host copies of a value (persistent values at any time; temporaries only meaningful during debugging).
  Tensor read(ValueId id) const;
  void write(ValueId id, const float* host);
  // The same for an input of the next step, without waiting for the copy (Backend::upload_async).
  void write_async(ValueId id, const float* host);
  float* device_pointer(ValueId id) const { return pointers_.at(static_cast<size_t>(id)); }
  // Persistent values of a kind, in declaration order (for checkpoints).
  std::vector<ValueId> values_of_kind(ValueKind kind) const;

  // Human-readable summary: nodes, kernel calls, arena peak vs naive bytes.
  std::string summary() const;

 private:
  Graph graph_;
  Backend& backend_;
  MemoryPlan memory_;
  StepState state_;
  float* arena_ = nullptr;
  float* scratch_ = nullptr;
  std::vector<float*> owned_;      // persistent allocations
  std::vector<float*> pointers_;   // per value
  std::vector<KernelCall> calls_;
};

}  // namespace gancu
