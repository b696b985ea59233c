// Liveness-based memory planning: every temporary gets an offset in one arena, and temporaries whose lifetimes do
// not overlap share memory (greedy by size, as ggml-alloc and TFLite's planner do). Persistent values (parameters,
// buffers, optimiser state, inputs, kept outputs) live outside the arena.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/graph.h"

namespace gancu {

struct MemoryPlan {
  static constexpr int64_t kAlignment = 256;  // bytes; suits vector loads on the CPU and coalescing on the GPU
  std::vector<int64_t> offset;     // per value: byte offset in the arena; −1 if not in the arena
  std::vector<int> first_use;      // per value: first node touching its storage (defines it); −1 if unused
  std::vector<int> last_use;       // per value: last node reading it (aliases included)
  int64_t arena_bytes = 0;         // peak: the arena's size
  int64_t naive_bytes = 0;         // what giving every temporary its own memory would take
  int64_t persistent_bytes = 0;    // parameters, buffers, optimiser state, inputs, kept outputs
};

MemoryPlan plan_memory(const Graph& graph);
// Throws std::logic_error naming the two values if any two arena tensors with overlapping lifetimes overlap in memory,
// or a tensor lies outside the arena.
void validate_memory_plan(const Graph& graph, const MemoryPlan& plan);

}  // namespace gancu
