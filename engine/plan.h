// A compiled plan: the graph, its memory plan, its arena on the store's backend, and the flat list of kernel calls.
// Parameters, buffers and optimiser state are not the plan's: it binds them in the run's ParameterStore, which
// several plans share (the training step and the sampler). Built once; run() executes with no allocation and no
// graph work.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/memory_plan.h"
#include "engine/parameter_store.h"

namespace gancu {

// Whether a run of the plan is a training step (advances the store's step, which keys every random op) or not (the
// sampler: running it leaves the run where it was).
enum class StepAdvance { kAdvance, kKeep };

class Plan {
 public:
  // Applies the graph rewrites the backend asks for (engine/fusion.h), binds every parameter, buffer and optimiser
  // state in `store` by name (creating what the store lacks), maps each optimiser to its counter there, allocates the
  // arena, inputs and kept values, and resolves every node. `store` must outlive the plan.
  Plan(Graph graph, ParameterStore& store, StepAdvance advance = StepAdvance::kAdvance);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  void run();  // one step; advances the store's step unless StepAdvance::kKeep

  const Graph& graph() const { return graph_; }
  const MemoryPlan& memory() const { return memory_; }
  Backend& backend() { return store_.backend(); }
  ParameterStore& store() { return store_; }
  // The run's step state, which lives in the store (shared by its plans).
  int64_t step() const { return store_.state().step; }
  void set_step(int64_t step) { store_.state().step = step; }
  std::vector<int64_t>& counters() { return store_.state().counters; }
  uint64_t seed() const { return store_.seed(); }

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
  // Throws std::runtime_error with the numbers if what the plan would allocate exceeds what its backend has free.
  void require_memory(int64_t scratch_floats) const;

  Graph graph_;
  ParameterStore& store_;
  StepAdvance advance_;
  MemoryPlan memory_;
  float* arena_ = nullptr;
  float* scratch_ = nullptr;
  std::vector<float*> owned_;      // inputs and kept temporaries
  std::vector<float*> pointers_;   // per value
  std::vector<KernelCall> calls_;
};

}  // namespace gancu
