// One run's persistent state on its backend: parameters, buffers (batch-norm running statistics), optimiser state and
// the step state (seed, step, optimiser counters). Every plan of the run binds to the same store, so the training
// step, the sampler and a pre-training phase read and write the same weights, with no copy and no second backend.
// Values are created on first request and then addressed by handle; names are only looked up when a plan binds.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "engine/backend.h"
#include "engine/graph.h"

namespace gancu {

class ParameterStore {
 public:
  using Handle = int;
  static constexpr Handle kNoHandle = -1;
  struct Entry {
    std::string name;
    Shape shape;
    ValueKind kind = ValueKind::kParameter;
    float* data = nullptr;  // backend memory
  };

  // `backend` must outlive the store.
  ParameterStore(Backend& backend, uint64_t seed);
  ~ParameterStore();
  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;

  Backend& backend() const { return backend_; }
  uint64_t seed() const { return state_.seed; }

  // The value named `name`, created on first request and initialised by `init` (a parameter or buffer from its own
  // Philox stream keyed by its name and the seed, so adding a layer does not change the others; optimiser state at
  // zero). Later requests must agree on kind and shape (else std::invalid_argument naming both).
  Handle bind(const std::string& name, const Shape& shape, ValueKind kind, const Init& init);
  Handle find(const std::string& name) const;  // kNoHandle if absent
  const Entry& entry(Handle h) const { return entries_.at(static_cast<size_t>(h)); }
  int size() const { return static_cast<int>(entries_.size()); }
  std::vector<Handle> of_kind(ValueKind kind) const;  // in creation order

  Tensor read(Handle h) const;
  void write(Handle h, const float* host);

  // The step counter of optimiser `name` (an index into state().counters), made on first request.
  int counter(const std::string& name);
  const std::vector<std::string>& counter_names() const { return counter_names_; }
  // The seed, the step (training steps done) and the counters that every plan's kernels read and advance.
  StepState& state() { return state_; }
  const StepState& state() const { return state_; }

 private:
  Backend& backend_;
  StepState state_;
  std::vector<Entry> entries_;
  std::vector<std::string> counter_names_;
};

// Frozen weights (ValueKind::kFrozen: declared under Builder::set_frozen or by Builder::frozen) are loaded, never
// initialised: until load_frozen writes them they hold zeros. Names are the graph's minus `prefix`, as in a PyTorch
// state dict ("VGG." + "features.0.weight" is loaded from "features.0.weight").
// The tensors load_frozen needs, by name without the prefix, with their shapes (what to ask a file reader for).
std::map<std::string, Shape> frozen_shapes(const Graph& graph, const std::string& prefix);
// Binds every frozen value of `graph` under `prefix` in `store` and writes it from `tensors`. A missing tensor or a
// wrong shape throws one-line std::runtime_error("<source>: missing tensor \"<name>\" ...") before anything is
// written. Returns the number of tensors loaded. The file-level loaders (models/vgg19.h) check dtypes as they read.
int load_frozen(ParameterStore& store, const Graph& graph, const std::string& prefix,
                const std::map<std::string, Tensor>& tensors, const std::string& source);

}  // namespace gancu
