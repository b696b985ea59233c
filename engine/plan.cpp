#include "engine/plan.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "engine/fusion.h"

namespace gancu {
namespace {

// FNV-1a: a stable per-name Philox stream for parameter initialisation.
uint64_t name_stream(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

Tensor initial_value(const Value& v, uint64_t seed) {
  Tensor t(v.shape);
  switch (v.init.kind) {
    case Init::kZeros: break;
    case Init::kOnes: t.fill(1.0f); break;
    case Init::kNormal: {
      Rng rng(seed, name_stream(v.name));
      t.fill_normal(rng, v.init.mean, v.init.stddev);
      break;
    }
    case Init::kUniform: {
      Rng rng(seed, name_stream(v.name));
      t.fill_uniform(rng, v.init.low, v.init.high);
      break;
    }
  }
  return t;
}

Graph prepared_for(Graph graph, const Backend& backend) {
  if (backend.fuses_batch_norm_activation()) fuse_batch_norm_activations(graph);
  return graph;
}

}  // namespace

Plan::Plan(Graph graph, Backend& backend, uint64_t seed, int num_counters)
    : graph_(prepared_for(std::move(graph), backend)), backend_(backend), memory_(plan_memory(graph_)) {
  validate_memory_plan(graph_, memory_);
  state_.seed = seed;
  state_.counters.assign(static_cast<size_t>(num_counters), 0);
  const DispatchTable& table = backend_.kernels();

  int64_t scratch_floats = 0;
  for (const Node& n : graph_.nodes()) {
    const KernelEntry& e = table[static_cast<size_t>(n.op)];
    if (!e.run && n.op != OpKind::kReshape)
      throw std::invalid_argument(n.name + ": backend " + backend_.name() + " has no kernel for " + op_name(n.op));
    if (n.op == OpKind::kAdamStep && (n.attrs.counter < 0 || n.attrs.counter >= num_counters))
      throw std::invalid_argument(n.name + ": optimiser counter " + std::to_string(n.attrs.counter) + " out of range");
    if (e.scratch_floats) scratch_floats = std::max(scratch_floats, e.scratch_floats(graph_, n));
  }

  arena_ = backend_.allocate(std::max<int64_t>(memory_.arena_bytes / int64_t(sizeof(float)), 1));
  if (scratch_floats > 0) scratch_ = backend_.allocate(scratch_floats);

  pointers_.assign(static_cast<size_t>(graph_.num_values()), nullptr);
  for (const Value& v : graph_.values()) {
    if (v.alias_of != kNoValue) continue;
    if (v.persistent()) {
      float* p = backend_.allocate(std::max<int64_t>(v.numel(), 1));
      owned_.push_back(p);
      pointers_[v.id] = p;
      if (v.kind == ValueKind::kParameter || v.kind == ValueKind::kBuffer) {
        Tensor init = initial_value(v, seed);
        backend_.upload(p, init.data(), init.numel());
      }
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

Plan::~Plan() {
  for (float* p : owned_) backend_.release(p);
  if (scratch_) backend_.release(scratch_);
  if (arena_) backend_.release(arena_);
}

void Plan::run() {
  backend_.execute(calls_, state_);
  ++state_.step;
}

ValueId Plan::find(const std::string& name) const {
  ValueId id = graph_.find(name);
  if (id == kNoValue) throw std::invalid_argument("plan has no value named '" + name + "'");
  return id;
}

Tensor Plan::read(ValueId id) const {
  Tensor t(graph_.shape(id));
  if (!pointers_[id]) throw std::logic_error(graph_.value(id).name + ": value has no storage");
  backend_.download(t.data(), pointers_[id], t.numel());
  return t;
}

void Plan::write(ValueId id, const float* host) {
  if (!pointers_[id]) throw std::logic_error(graph_.value(id).name + ": value has no storage");
  backend_.upload(pointers_[id], host, graph_.shape(id).numel());
}

void Plan::write_async(ValueId id, const float* host) {
  if (!pointers_[id]) throw std::logic_error(graph_.value(id).name + ": value has no storage");
  backend_.upload_async(pointers_[id], host, graph_.shape(id).numel());
}

std::vector<ValueId> Plan::values_of_kind(ValueKind kind) const {
  std::vector<ValueId> ids;
  for (const Value& v : graph_.values())
    if (v.kind == kind) ids.push_back(v.id);
  return ids;
}

std::string Plan::summary() const {
  std::ostringstream out;
  out << graph_.nodes().size() << " nodes, " << calls_.size() << " kernel calls on " << backend_.name()
      << "; arena " << memory_.arena_bytes / 1024 << " KiB (naive " << memory_.naive_bytes / 1024 << " KiB), persistent "
      << memory_.persistent_bytes / 1024 << " KiB";
  return out.str();
}

}  // namespace gancu
