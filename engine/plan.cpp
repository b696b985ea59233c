#include "engine/plan.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "core/memory.h"
#include "engine/fusion.h"

namespace gancu {
namespace {

Graph prepared_for(Graph graph, const Backend& backend) {
  if (backend.fuses_batch_norm_activation()) fuse_batch_norm_activations(graph);
  return graph;
}

bool stored(ValueKind kind) {
  return kind == ValueKind::kParameter || kind == ValueKind::kBuffer || kind == ValueKind::kOptState ||
         kind == ValueKind::kFrozen;
}

}  // namespace

Plan::Plan(Graph graph, ParameterStore& store, StepAdvance advance)
    : graph_(prepared_for(std::move(graph), store.backend())), store_(store), advance_(advance), memory_(plan_memory(graph_)) {
  validate_memory_plan(graph_, memory_);
  Backend& backend = store_.backend();
  const DispatchTable& table = backend.kernels();
  std::vector<int> counter_of_optimiser;
  for (const std::string& name : graph_.optimisers()) counter_of_optimiser.push_back(store_.counter(name));

  int64_t scratch_floats = 0;
  for (Node& n : graph_.nodes()) {
    const KernelEntry& e = table[static_cast<size_t>(n.op)];
    if (!e.run && n.op != OpKind::kReshape)
      throw std::invalid_argument(n.name + ": backend " + backend.name() + " has no kernel for " + op_name(n.op));
    if (n.op == OpKind::kAdamStep) {
      if (n.attrs.counter < 0 || n.attrs.counter >= static_cast<int>(counter_of_optimiser.size()))
        throw std::invalid_argument(n.name + ": optimiser " + std::to_string(n.attrs.counter) + " out of range");
      n.attrs.counter = counter_of_optimiser[static_cast<size_t>(n.attrs.counter)];  // now the store's counter
    }
    if (e.scratch_floats) scratch_floats = std::max(scratch_floats, e.scratch_floats(graph_, n));
  }

  require_memory(scratch_floats);
  arena_ = backend.allocate(std::max<int64_t>(memory_.arena_bytes / int64_t(sizeof(float)), 1));
  if (scratch_floats > 0) scratch_ = backend.allocate(scratch_floats);

  pointers_.assign(static_cast<size_t>(graph_.num_values()), nullptr);
  for (const Value& v : graph_.values()) {
    if (v.alias_of != kNoValue) continue;
    if (stored(v.kind)) {
      pointers_[v.id] = store_.entry(store_.bind(v.name, v.shape, v.kind, v.init)).data;
    } else if (v.persistent()) {
      float* p = backend.allocate(std::max<int64_t>(v.numel(), 1));
      owned_.push_back(p);
      pointers_[v.id] = p;
    } else if (memory_.offset[v.id] >= 0) {
      pointers_[v.id] = arena_ + memory_.offset[v.id] / int64_t(sizeof(float));
    }
  }
  for (const Value& v : graph_.values())
    if (v.alias_of != kNoValue) pointers_[v.id] = pointers_[graph_.storage_root(v.id)];

  for (const Node& n : graph_.nodes()) {
    const KernelEntry& e = table[static_cast<size_t>(n.op)];
    if (!e.run) continue;  // reshape: a view, nothing to run
    KernelCall call;
    call.fn = e.run;
    call.graph = &graph_;
    call.node = &n;
    for (ValueId id : n.inputs) call.in.push_back(id == kNoValue ? nullptr : pointers_[id]);
    for (ValueId id : n.outputs) call.out.push_back(pointers_[id]);
    call.scratch = scratch_;
    calls_.push_back(std::move(call));
  }
}

void Plan::require_memory(int64_t scratch_floats) const {
  const int64_t available = store_.backend().available_bytes();
  if (available < 0) return;  // unknown: the allocations themselves will say
  int64_t stored_bytes = 0, own_bytes = 0;
  for (const Value& v : graph_.values()) {
    if (v.alias_of != kNoValue) continue;
    const int64_t bytes = v.numel() * int64_t(sizeof(float));
    if (stored(v.kind)) {
      if (store_.find(v.name) == ParameterStore::kNoHandle) stored_bytes += bytes;
    } else if (v.persistent()) {
      own_bytes += bytes;
    }
  }
  const int64_t scratch_bytes = scratch_floats * int64_t(sizeof(float));
  const int64_t needed = memory_.arena_bytes + scratch_bytes + stored_bytes + own_bytes;
  if (needed > available)
    throw std::runtime_error("the plan needs " + human_bytes(needed) + " (activations " + human_bytes(memory_.arena_bytes) +
                             ", parameters and optimiser state " + human_bytes(stored_bytes) + ", inputs and outputs " +
                             human_bytes(own_bytes) + ", scratch " + human_bytes(scratch_bytes) + ") but " +
                             store_.backend().name() + " has " + human_bytes(available) +
                             " available; use a smaller batch or image size");
}

Plan::~Plan() {
  Backend& backend = store_.backend();
  for (float* p : owned_) backend.release(p);
  if (scratch_) backend.release(scratch_);
  if (arena_) backend.release(arena_);
}

void Plan::run() {
  StepState& state = store_.state();
  store_.backend().execute(calls_, state);
  if (advance_ == StepAdvance::kAdvance) ++state.step;
}

ValueId Plan::find(const std::string& name) const {
  ValueId id = graph_.find(name);
  if (id == kNoValue) throw std::invalid_argument("plan has no value named '" + name + "'");
  return id;
}

Tensor Plan::read(ValueId id) const {
  Tensor t(graph_.shape(id));
  if (!pointers_[id]) throw std::logic_error(graph_.value(id).name + ": value has no storage");
  store_.backend().download(t.data(), pointers_[id], t.numel());
  return t;
}

void Plan::write(ValueId id, const float* host) {
  if (!pointers_[id]) throw std::logic_error(graph_.value(id).name + ": value has no storage");
  store_.backend().upload(pointers_[id], host, graph_.shape(id).numel());
}

void Plan::write_async(ValueId id, const float* host) {
  if (!pointers_[id]) throw std::logic_error(graph_.value(id).name + ": value has no storage");
  store_.backend().upload_async(pointers_[id], host, graph_.shape(id).numel());
}

std::vector<ValueId> Plan::values_of_kind(ValueKind kind) const {
  std::vector<ValueId> ids;
  for (const Value& v : graph_.values())
    if (v.kind == kind) ids.push_back(v.id);
  return ids;
}

std::string Plan::summary() const {
  std::ostringstream out;
  out << graph_.nodes().size() << " nodes, " << calls_.size() << " kernel calls on " << store_.backend().name()
      << "; arena " << memory_.arena_bytes / 1024 << " KiB (naive " << memory_.naive_bytes / 1024 << " KiB), persistent "
      << memory_.persistent_bytes / 1024 << " KiB";
  return out.str();
}

}  // namespace gancu
