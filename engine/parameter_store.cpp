#include "engine/parameter_store.h"

#include <stdexcept>

#include "core/rng.h"

namespace gancu {
namespace {

// FNV-1a: a stable per-name Philox stream for initialisation.
uint64_t name_stream(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

Tensor initial_value(const std::string& name, const Shape& shape, const Init& init, uint64_t seed) {
  Tensor t(shape);
  switch (init.kind) {
    case Init::kZeros: break;
    case Init::kOnes: t.fill(1.0f); break;
    case Init::kNormal: {
      Rng rng(seed, name_stream(name));
      t.fill_normal(rng, init.mean, init.stddev);
      break;
    }
    case Init::kUniform: {
      Rng rng(seed, name_stream(name));
      t.fill_uniform(rng, init.low, init.high);
      break;
    }
  }
  return t;
}

const char* kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::kParameter: return "parameter";
    case ValueKind::kBuffer: return "buffer";
    case ValueKind::kOptState: return "optimiser state";
    case ValueKind::kInput: return "input";
    case ValueKind::kTemporary: return "temporary";
    case ValueKind::kFrozen: return "frozen weight";
  }
  return "?";
}

}  // namespace

ParameterStore::ParameterStore(Backend& backend, uint64_t seed) : backend_(backend) { state_.seed = seed; }

ParameterStore::~ParameterStore() {
  for (const Entry& e : entries_) backend_.release(e.data);
}

ParameterStore::Handle ParameterStore::bind(const std::string& name, const Shape& shape, ValueKind kind, const Init& init) {
  if (kind != ValueKind::kParameter && kind != ValueKind::kBuffer && kind != ValueKind::kOptState &&
      kind != ValueKind::kFrozen)
    throw std::invalid_argument(name + ": a " + kind_name(kind) + " does not live in the parameter store");
  if (Handle h = find(name); h != kNoHandle) {
    const Entry& e = entries_[static_cast<size_t>(h)];
    if (e.kind != kind || e.shape != shape)
      throw std::invalid_argument(name + ": the store holds a " + kind_name(e.kind) + " " + e.shape.str() +
                                  ", a plan asks for a " + kind_name(kind) + " " + shape.str());
    return h;
  }
  Entry e{name, shape, kind, backend_.allocate(std::max<int64_t>(shape.numel(), 1))};  // zero-filled
  if (kind != ValueKind::kOptState && init.kind != Init::kZeros) {
    const Tensor value = initial_value(name, shape, init, state_.seed);
    backend_.upload(e.data, value.data(), value.numel());
  }
  entries_.push_back(std::move(e));
  return static_cast<Handle>(entries_.size() - 1);
}

ParameterStore::Handle ParameterStore::find(const std::string& name) const {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].name == name) return static_cast<Handle>(i);
  return kNoHandle;
}

std::vector<ParameterStore::Handle> ParameterStore::of_kind(ValueKind kind) const {
  std::vector<Handle> handles;
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].kind == kind) handles.push_back(static_cast<Handle>(i));
  return handles;
}

Tensor ParameterStore::read(Handle h) const {
  const Entry& e = entry(h);
  Tensor t(e.shape);
  backend_.download(t.data(), e.data, t.numel());
  return t;
}

void ParameterStore::write(Handle h, const float* host) {
  const Entry& e = entry(h);
  backend_.upload(e.data, host, e.shape.numel());
}

std::map<std::string, Shape> frozen_shapes(const Graph& graph, const std::string& prefix) {
  std::map<std::string, Shape> shapes;
  for (const Value& v : graph.values())
    if (v.kind == ValueKind::kFrozen && v.name.rfind(prefix, 0) == 0) shapes.emplace(v.name.substr(prefix.size()), v.shape);
  return shapes;
}

int load_frozen(ParameterStore& store, const Graph& graph, const std::string& prefix,
                const std::map<std::string, Tensor>& tensors, const std::string& source) {
  const std::map<std::string, Shape> shapes = frozen_shapes(graph, prefix);
  for (const auto& [name, shape] : shapes) {  // every check before the first write: a bad source changes nothing
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error(source + ": missing tensor \"" + name + "\" (" + shape.str() + ")");
    if (it->second.shape() != shape)
      throw std::runtime_error(source + ": tensor \"" + name + "\" has shape " + it->second.shape().str() + ", expected " +
                               shape.str());
  }
  for (const auto& [name, shape] : shapes)
    store.write(store.bind(prefix + name, shape, ValueKind::kFrozen, {}), tensors.at(name).data());
  return static_cast<int>(shapes.size());
}

int ParameterStore::counter(const std::string& name) {
  for (size_t i = 0; i < counter_names_.size(); ++i)
    if (counter_names_[i] == name) return static_cast<int>(i);
  counter_names_.push_back(name);
  state_.counters.push_back(0);
  return static_cast<int>(counter_names_.size() - 1);
}

}  // namespace gancu
