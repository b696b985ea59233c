// The backend interface and the dispatch table: the only way the engine reaches kernels.
// A backend supplies memory, copies, and one KernelEntry per op kind; the plan resolves every node to a KernelCall
// (function + pointers + attributes) once, and a step is the backend executing that flat list.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace gancu {

// State a step's kernels may read or advance: the run's seed and step number (random ops draw Philox numbers keyed by
// them, so step s is reproducible alone) and the optimisers' step counters.
struct StepState {
  uint64_t seed = 0;
  int64_t step = 0;
  std::vector<int64_t> counters;
};

// What a backend's kernels need besides their call and the step state (a stream, library handles, device copies of
// the step and counters), owned by the backend and handed to every call it runs. Opaque to the engine: each backend
// derives its own (the CUDA backend's CudaContext) and its kernel functions cast it back; the host backends' kernels
// need nothing and get the empty base.
struct BackendContext {
  virtual ~BackendContext() = default;
};

struct KernelCall;
using KernelFn = void (*)(const KernelCall& call, StepState& state, const BackendContext& context);

// One resolved kernel invocation: raw pointers into backend memory, in the order of the node's inputs/outputs
// (nullptr for an absent optional input), plus the node for its attributes and the graph for shapes.
struct KernelCall {
  KernelFn fn = nullptr;
  const Graph* graph = nullptr;
  const Node* node = nullptr;
  std::vector<float*> in;
  std::vector<float*> out;
  float* scratch = nullptr;  // shared scratch, sized by the largest KernelEntry::scratch_floats in the plan
  const Shape& in_shape(int i) const { return graph->shape(node->inputs[static_cast<size_t>(i)]); }
  const Shape& out_shape(int i) const { return graph->shape(node->outputs[static_cast<size_t>(i)]); }
};

using ScratchFn = int64_t (*)(const Graph& graph, const Node& node);

struct KernelEntry {
  KernelFn run = nullptr;          // nullptr: the op needs no kernel (a reshape) or the backend lacks it
  ScratchFn scratch_floats = nullptr;
};
using DispatchTable = std::array<KernelEntry, static_cast<size_t>(OpKind::kCount)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual const DispatchTable& kernels() const = 0;
  virtual float* allocate(int64_t floats) = 0;  // zero-filled
  // Bytes a new allocation may still take (free host RAM, or free device memory); -1 if unknown. Plans check what
  // they need against it before allocating anything.
  virtual int64_t available_bytes() const { return -1; }
  virtual void release(float* p) = 0;
  virtual void upload(float* dst, const float* src, int64_t n) = 0;
  virtual void download(float* dst, const float* src, int64_t n) = 0;
  // An input for the next step (a data batch): ordered before any later step, but it may return before the copy is
  // done (src may be reused at once). On the GPU this lets the host prepare batch k+1 while step k runs.
  virtual void upload_async(float* dst, const float* src, int64_t n) { upload(dst, src, n); }
  // Whether plans on this backend fold each batch norm's ReLU/LeakyReLU into it (engine/fusion.h): worth it where the
  // fused kernel saves memory traffic (the GPU); the host backends keep PyTorch's separate ops.
  virtual bool fuses_batch_norm_activation() const { return false; }
  // Runs the calls in order, passing each this backend's context. The CUDA backend captures them once as a CUDA graph
  // and replays it.
  virtual void execute(const std::vector<KernelCall>& calls, StepState& state) = 0;
  // Per-op time accounting (host backends time each call with the host clock, the CUDA backend with events around
  // each launch, launching call by call). Off by default: it costs a clock read or an event per call.
  virtual void enable_profiling() {}
  virtual std::string profile_report() const { return ""; }
  // Benchmarks: the duration of the last execute() where its work ran (CUDA events around it on the GPU, the host
  // clock on the CPU); waits for that step to finish. Needs enable_step_timing() before the step.
  virtual void enable_step_timing() = 0;
  virtual double last_step_ms() = 0;
};

// The CPU backend: reference kernels, with im2col + OpenBLAS SGEMM for convolutions and linear layers.
std::unique_ptr<Backend> make_cpu_backend();
// The reference backend: every op through the double-accumulating reference kernels (the oracle for tests).
std::unique_ptr<Backend> make_reference_backend();

}  // namespace gancu
