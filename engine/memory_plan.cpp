#include "engine/memory_plan.h"

#include <algorithm>
#include <stdexcept>

namespace gancu {
namespace {

int64_t aligned_bytes(const Value& v) {
  const int64_t bytes = std::max<int64_t>(v.numel(), 1) * int64_t(sizeof(float));
  return (bytes + MemoryPlan::kAlignment - 1) / MemoryPlan::kAlignment * MemoryPlan::kAlignment;
}

bool in_arena(const Graph& g, ValueId id) {
  const Value& v = g.value(id);
  return !v.persistent() && v.alias_of == kNoValue;
}

bool lifetimes_overlap(const MemoryPlan& p, ValueId a, ValueId b) {
  return p.first_use[a] <= p.last_use[b] && p.first_use[b] <= p.last_use[a];
}

}  // namespace

MemoryPlan plan_memory(const Graph& g) {
  MemoryPlan plan;
  const int n = g.num_values();
  plan.offset.assign(n, -1);
  plan.first_use.assign(n, -1);
  plan.last_use.assign(n, -1);

  // Lifetimes of storage roots: an alias extends the life of the memory it views.
  const auto& nodes = g.nodes();
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    auto touch = [&](ValueId id) {
      if (id == kNoValue) return;
      ValueId root = g.storage_root(id);
      if (plan.first_use[root] < 0) plan.first_use[root] = i;
      plan.last_use[root] = i;
    };
    for (ValueId id : nodes[i].outputs) touch(id);
    for (ValueId id : nodes[i].inputs) touch(id);
  }

  std::vector<ValueId> temps;
  for (const Value& v : g.values()) {
    if (v.alias_of != kNoValue) continue;
    if (v.persistent()) {
      plan.persistent_bytes += v.numel() * int64_t(sizeof(float));
    } else if (plan.first_use[v.id] >= 0) {
      temps.push_back(v.id);
      plan.naive_bytes += aligned_bytes(v);
    }
  }
  // Largest first; ties by definition order so the plan is deterministic.
  std::stable_sort(temps.begin(), temps.end(), [&](ValueId a, ValueId b) {
    return aligned_bytes(g.value(a)) > aligned_bytes(g.value(b));
  });

  std::vector<ValueId> placed;
  for (ValueId id : temps) {
    const int64_t size = aligned_bytes(g.value(id));
    // Occupied ranges among placed tensors alive at the same time, by offset; take the lowest gap that fits.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (ValueId other : placed)
      if (lifetimes_overlap(plan, id, other))
        busy.emplace_back(plan.offset[other], plan.offset[other] + aligned_bytes(g.value(other)));
    std::sort(busy.begin(), busy.end());
    int64_t candidate = 0;
    for (const auto& [begin, end] : busy) {
      if (candidate + size <= begin) break;
      candidate = std::max(candidate, end);
    }
    plan.offset[id] = candidate;
    plan.arena_bytes = std::max(plan.arena_bytes, candidate + size);
    placed.push_back(id);
  }
  return plan;
}

void validate_memory_plan(const Graph& g, const MemoryPlan& plan) {
  std::vector<ValueId> arena;
  for (const Value& v : g.values())
    if (in_arena(g, v.id) && plan.first_use[v.id] >= 0) arena.push_back(v.id);
  for (ValueId a : arena) {
    const int64_t begin = plan.offset[a], end = begin + g.value(a).numel() * int64_t(sizeof(float));
    if (begin < 0 || end > plan.arena_bytes || begin % MemoryPlan::kAlignment != 0)
      throw std::logic_error("memory plan: " + g.value(a).name + " lies outside the arena or is misaligned");
    for (ValueId b : arena) {
      if (b <= a || !lifetimes_overlap(plan, a, b)) continue;
      const int64_t b_begin = plan.offset[b], b_end = b_begin + g.value(b).numel() * int64_t(sizeof(float));
      if (begin < b_end && b_begin < end)
        throw std::logic_error("memory plan: " + g.value(a).name + " and " + g.value(b).name +
                               " are alive at the same time and overlap in memory");
    }
  }
}

}  // namespace gancu
