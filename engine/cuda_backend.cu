// The CUDA backend: device memory, copies, and execute() with per-call-list device state and CUDA-graph replay.
// The op-by-op kernels are in cuda_dispatch.cu; see cuda_backend.h for the execution model.
#include "engine/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/cuda_dispatch.h"
#include "engine/cuda_graph.h"
#include "engine/op_profile.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/random.h"
#include "kernels/cudnn/cudnn_context.h"

namespace gancu {
namespace {

using cuda_backend::CapturedGraph;
using cuda_backend::CudaContext;

// Destructors and release() must not throw (Plan's destructor calls release()): report and carry on.
void report_if_failed(cudaError_t err, const char* what) {
  if (err != cudaSuccess) std::fprintf(stderr, "gancu CUDA backend: %s: %s\n", what, cudaGetErrorString(err));
}

// What the backend keeps per call list (per plan): the device copy of [step, counter_0, counter_1, ...], what it is
// known to hold, the pinned buffer its uploads are staged in, and the captured graph.
class CallListState {
 public:
  CallListState(const std::vector<KernelCall>& calls, size_t num_counters)
      : first_call_(calls.data()),
        num_calls_(calls.size()),
        adam_steps_per_counter_(num_counters, 0),
        call_choices_(calls.size(), -1),
        known_counters_(num_counters, 0) {
    for (const KernelCall& call : calls)
      if (call.node->op == OpKind::kAdamStep) ++adam_steps_per_counter_.at(size_t(call.node->attrs.counter));
    const size_t bytes = (1 + num_counters) * sizeof(int64_t);
    try {
      GANCU_CUDA_CHECK(cudaMalloc(&device_state_, bytes));
      GANCU_CUDA_CHECK(cudaMallocHost(&staging_, bytes));
      GANCU_CUDA_CHECK(cudaEventCreateWithFlags(&staging_free_, cudaEventDisableTiming));
    } catch (...) {  // the destructor does not run for a half-built object
      free_resources();
      throw;
    }
  }
  ~CallListState() { free_resources(); }
  CallListState(const CallListState&) = delete;
  CallListState& operator=(const CallListState&) = delete;

  // The plan resolves its calls once and keeps them, so the same list must come back unchanged: the captured graph
  // holds its pointers.
  void check_same_list(const std::vector<KernelCall>& calls, const StepState& state) const {
    if (calls.data() != first_call_ || calls.size() != num_calls_)
      throw std::logic_error("CUDA backend: a call list changed after its first execute (its graph holds the old one)");
    // A store's counters may grow when a later plan adds an optimiser; this list's Adam nodes index the first ones.
    if (state.counters.size() < adam_steps_per_counter_.size())
      throw std::logic_error("CUDA backend: the run lost optimiser counters between steps");
  }

  signed char* call_choices() { return call_choices_.data(); }
  int64_t* device_step() const { return device_state_; }
  int64_t* device_counters() const { return device_state_ + 1; }

  // Uploads the host's step and counters unless the device is known to hold them already.
  void sync_to_device(const StepState& state, cudaStream_t stream) {
    const size_t n = adam_steps_per_counter_.size();  // this list's counters: a prefix of the run's
    if (device_known_ && known_step_ == state.step &&
        std::equal(known_counters_.begin(), known_counters_.end(), state.counters.begin()))
      return;
    // The previous upload from the staging buffer may still be queued behind earlier steps: wait for that copy
    // before overwriting its source (rare: only the first step and after a checkpoint load come here).
    if (staging_in_use_) GANCU_CUDA_CHECK(cudaEventSynchronize(staging_free_));
    staging_[0] = state.step;
    for (size_t k = 0; k < n; ++k) staging_[1 + k] = state.counters[k];
    const size_t bytes = (1 + n) * sizeof(int64_t);
    GANCU_CUDA_CHECK(cudaMemcpyAsync(device_state_, staging_, bytes, cudaMemcpyHostToDevice, stream));
    GANCU_CUDA_CHECK(cudaEventRecord(staging_free_, stream));
    staging_in_use_ = true;
    device_known_ = true;
    known_step_ = state.step;
    std::copy_n(state.counters.begin(), n, known_counters_.begin());
  }

  // Before launching: if a launch fails halfway, the device state is unknown and the next step uploads it again.
  void forget_device_state() { device_known_ = false; }

  // After the step's work is enqueued: the device advances the step by one and each counter once per Adam node
  // using it. Advance the host counters the same way (the CPU backend's Adam does it on the host); the host step
  // is advanced by Plan::run after execute() returns.
  void advance(StepState& state) {
    for (size_t k = 0; k < adam_steps_per_counter_.size(); ++k) state.counters[k] += adam_steps_per_counter_[k];
    device_known_ = true;
    known_step_ = state.step + 1;
    std::copy_n(state.counters.begin(), known_counters_.size(), known_counters_.begin());
  }

  void free_resources() {
    graph_ = CapturedGraph();
    if (staging_free_) report_if_failed(cudaEventDestroy(staging_free_), "cudaEventDestroy");
    if (staging_) report_if_failed(cudaFreeHost(staging_), "cudaFreeHost");
    if (device_state_) report_if_failed(cudaFree(device_state_), "cudaFree");
    staging_free_ = nullptr;
    staging_ = nullptr;
    device_state_ = nullptr;
  }

  // The first step of a list runs eagerly (see execute); later ones may be captured.
  bool warmed_up() const { return warmed_up_; }
  void set_warmed_up() { warmed_up_ = true; }
  bool has_graph(uint64_t seed) const { return graph_ && graph_seed_ == seed; }
  const CapturedGraph& graph() const { return graph_; }
  void set_graph(CapturedGraph graph, uint64_t seed) {
    graph_ = std::move(graph);
    graph_seed_ = seed;
  }

 private:
  const KernelCall* first_call_;
  size_t num_calls_;
  std::vector<int64_t> adam_steps_per_counter_;
  std::vector<signed char> call_choices_;  // --kernels auto: each call's resolved choice (see CudaContext)
  int64_t* device_state_ = nullptr;  // device [step, counters...]
  int64_t* staging_ = nullptr;       // pinned host, same layout
  cudaEvent_t staging_free_ = nullptr;
  bool staging_in_use_ = false;
  bool device_known_ = false;
  int64_t known_step_ = 0;
  std::vector<int64_t> known_counters_;
  bool warmed_up_ = false;
  CapturedGraph graph_;
  uint64_t graph_seed_ = 0;  // the seed is a kernel argument of random ops: a new seed needs a new capture
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options)
      : options_(options), table_(cuda_backend::make_cuda_dispatch_table(options.kernels)) {
    if (cuda::device_count() == 0) throw std::runtime_error("CUDA backend: no CUDA device is available");
    // Non-blocking: the legacy default stream never serialises with ours; every copy below is ordered on this stream.
    GANCU_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    try {
      cublas_ = std::make_unique<cuda::CublasHandle>(stream_);
      if (options_.kernels != CudaBackendOptions::kCustom) cudnn_ = std::make_unique<cudnn::Context>();
      if (options_.kernels == CudaBackendOptions::kAuto) {
        choices_ = std::make_unique<KernelChoiceCache>(options_.kernel_choice_file);
        // Choices are measurements of this GPU with this cuDNN: both name the device in the key.
        device_name_ = cuda::device_name() + ", cuDNN " + std::to_string(cudnnGetVersion());
      }
    } catch (...) {  // the destructor does not run for a half-built object
      cudnn_.reset();
      cublas_.reset();
      report_if_failed(cudaStreamDestroy(stream_), "cudaStreamDestroy");
      throw;
    }
  }

  ~CudaBackend() override {
    report_if_failed(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    call_lists_.clear();
    for (cudaEvent_t e : profile_events_) report_if_failed(cudaEventDestroy(e), "cudaEventDestroy");
    for (cudaEvent_t e : step_events_)
      if (e) report_if_failed(cudaEventDestroy(e), "cudaEventDestroy");
    for (StagingSlot& slot : staging_ring_) {
      if (slot.event) report_if_failed(cudaEventDestroy(slot.event), "cudaEventDestroy");
      if (slot.buffer) report_if_failed(cudaFreeHost(slot.buffer), "cudaFreeHost");
    }
    cudnn_.reset();
    cublas_.reset();
    report_if_failed(cudaStreamDestroy(stream_), "cudaStreamDestroy");
  }

  std::string name() const override { return "cuda"; }
  // The batch-norm kernels apply ReLU/LeakyReLU in the same pass (kernels/cuda/batch_norm2d.h).
  bool fuses_batch_norm_activation() const override { return true; }
  const DispatchTable& kernels() const override { return table_; }
  cudnn::Context* cudnn_context() { return cudnn_.get(); }
  const CudaLaunchCounts& launch_counts() const { return counts_; }

  int64_t available_bytes() const override {
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
      (void)cudaGetLastError();
      return -1;
    }
    return static_cast<int64_t>(free);
  }
  float* allocate(int64_t floats) override {
    if (floats < 0) throw std::invalid_argument("CUDA backend: negative allocation size");
    const size_t bytes = size_t(floats) * sizeof(float);
    void* p = nullptr;
    GANCU_CUDA_CHECK(cudaMalloc(&p, bytes));
    // On our stream, so it is ordered before any upload or kernel that touches the memory.
    GANCU_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
    return static_cast<float*>(p);
  }

  void release(float* p) override {
    // Wait for any step still using the memory. A later plan may be given the same addresses, so no captured graph
    // may be replayed after this: drop them all (and their device state); live plans capture again on their next step.
    report_if_failed(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    call_lists_.clear();
    // No graph is left that could hold a cuDNN workspace the context outgrew: those may go now.
    if (cudnn_) cudnn_->release_retired_workspaces();
    report_if_failed(cudaFree(p), "cudaFree");
  }

  // Both copies are ordered on the backend's stream after every step enqueued so far, and return once done (the
  // host buffer may be pageable and reused at once).
  void upload(float* dst, const float* src, int64_t n) override { copy(dst, src, n, cudaMemcpyHostToDevice); }

  // Data batches go through a ring of pinned buffers and are copied on the stream, ordered after the steps already
  // enqueued and before the next: the host fills batch k+1 while the GPU runs step k. A slot is reused only after its
  // earlier copy has finished (its event), which with several slots rarely waits.
  void upload_async(float* dst, const float* src, int64_t n) override {
    if (n < 0) throw std::invalid_argument("CUDA backend: negative copy size");
    if (n == 0) return;
    StagingSlot& slot = staging_ring_[next_slot_];
    next_slot_ = (next_slot_ + 1) % staging_ring_.size();
    if (slot.event == nullptr) GANCU_CUDA_CHECK(cudaEventCreateWithFlags(&slot.event, cudaEventDisableTiming));
    GANCU_CUDA_CHECK(cudaEventSynchronize(slot.event));  // returns at once if never recorded
    const size_t bytes = size_t(n) * sizeof(float);
    if (slot.capacity < bytes) {
      if (slot.buffer) GANCU_CUDA_CHECK(cudaFreeHost(slot.buffer));
      slot.buffer = nullptr;
      slot.capacity = 0;
      GANCU_CUDA_CHECK(cudaMallocHost(&slot.buffer, bytes));
      slot.capacity = bytes;
    }
    std::memcpy(slot.buffer, src, bytes);
    GANCU_CUDA_CHECK(cudaMemcpyAsync(dst, slot.buffer, bytes, cudaMemcpyHostToDevice, stream_));
    GANCU_CUDA_CHECK(cudaEventRecord(slot.event, stream_));
  }
  void download(float* dst, const float* src, int64_t n) override { copy(dst, src, n, cudaMemcpyDeviceToHost); }

  void execute(const std::vector<KernelCall>& calls, StepState& state) override {
    CallListState& list = state_for(calls, state);
    // What this step's kernel functions run with (cuda_dispatch.h): handed to every call, read while it enqueues.
    CudaContext context;
    context.stream = stream_;
    context.math = options_.math;
    context.cudnn = cudnn_.get();
    context.cublas = cublas_->get();
    context.device_step = list.device_step();
    context.device_counters = list.device_counters();
    context.choices = choices_.get();
    context.device_name = &device_name_;
    context.calls_begin = calls.data();
    context.call_choices = list.call_choices();

    // Capture before anything of this step is enqueued: a capture that fails throws with the host state, the device
    // state and the stream as they were, and the next execute() simply tries again.
    const cuda_backend::StepLaunch how =
        cuda_backend::step_launch(options_.graph_replay, profiling_, list.warmed_up(), list.has_graph(state.seed));
    if (how == cuda_backend::StepLaunch::kCaptureThenLaunch) {
      list.set_graph(capture(calls, list, state, context), state.seed);
      ++counts_.captures;
    }
    const bool replay = how != cuda_backend::StepLaunch::kCallByCall;

    list.sync_to_device(state, stream_);
    list.forget_device_state();  // until the whole step is enqueued
    if (step_timing_) record(step_events_.at(0));
    if (replay) {
      list.graph().launch(stream_);
      ++counts_.graph_launches;
    } else {
      // Call by call: always when profiling or without graph replay, else the warm-up step, which is the list's first
      // step and lets cuDNN run its synchronising algorithm search (and --kernels auto measure) outside any capture.
      if (profiling_) launch_calls_profiled(calls, list, state, context);
      else launch_calls(calls, list, state, context);
      list.set_warmed_up();
      ++counts_.call_by_call_steps;
    }
    list.advance(state);  // the step is enqueued: the host state follows it even if saving the choices fails
    if (step_timing_) record(step_events_.at(1));
    if (!replay) save_kernel_choices();
  }

  // A profiled step is launched call by call with an event after each call (a captured graph cannot be timed per
  // kernel), then waited for. Gaps where the GPU waited for the host's next launch fall into the next call's time,
  // which is what eager launching costs.
  void enable_profiling() override { profiling_ = true; }
  std::string profile_report() const override {
    return "CUDA backend, launched call by call with an event after each call:\n" + profile_.report();
  }

  void enable_step_timing() override {
    for (cudaEvent_t& e : step_events_)
      if (e == nullptr) GANCU_CUDA_CHECK(cudaEventCreate(&e));
    step_timing_ = true;
  }
  double last_step_ms() override {
    if (!step_timing_) throw std::logic_error("CUDA backend: last_step_ms() without enable_step_timing()");
    GANCU_CUDA_CHECK(cudaEventSynchronize(step_events_[1]));
    float ms = 0;
    GANCU_CUDA_CHECK(cudaEventElapsedTime(&ms, step_events_[0], step_events_[1]));
    return ms;
  }

 private:
  // --kernels auto: the first step of a call list measured its new shapes; remember them (a no-op otherwise).
  void save_kernel_choices() {
    if (choices_) choices_->save_if_changed();
  }

  void copy(void* dst, const void* src, int64_t n, cudaMemcpyKind kind) {
    if (n < 0) throw std::invalid_argument("CUDA backend: negative copy size");
    if (n == 0) return;
    GANCU_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), kind, stream_));
    GANCU_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  CallListState& state_for(const std::vector<KernelCall>& calls, const StepState& state) {
    auto it = call_lists_.find(&calls);
    if (it == call_lists_.end())
      it = call_lists_.emplace(&calls, std::make_unique<CallListState>(calls, state.counters.size())).first;
    it->second->check_same_list(calls, state);
    return *it->second;
  }

  // The step's kernels in order, then the device step's increment (the step's last kernel).
  void launch_calls(const std::vector<KernelCall>& calls, const CallListState& list, StepState& state,
                    const CudaContext& context) {
    for (const KernelCall& call : calls) call.fn(call, state, context);
    cuda::increment_device_step(list.device_step(), stream_);
  }

  void record(cudaEvent_t event) { GANCU_CUDA_CHECK(cudaEventRecord(event, stream_)); }

  void launch_calls_profiled(const std::vector<KernelCall>& calls, const CallListState& list, StepState& state,
                             const CudaContext& context) {
    while (profile_events_.size() < calls.size() + 1) {
      cudaEvent_t e = nullptr;
      GANCU_CUDA_CHECK(cudaEventCreate(&e));
      profile_events_.push_back(e);
    }
    record(profile_events_[0]);
    for (size_t i = 0; i < calls.size(); ++i) {
      calls[i].fn(calls[i], state, context);
      record(profile_events_[i + 1]);
    }
    cuda::increment_device_step(list.device_step(), stream_);
    GANCU_CUDA_CHECK(cudaEventSynchronize(profile_events_[calls.size()]));
    for (size_t i = 0; i < calls.size(); ++i) {
      float ms = 0;
      GANCU_CUDA_CHECK(cudaEventElapsedTime(&ms, profile_events_[i], profile_events_[i + 1]));
      profile_.add(*calls[i].graph, *calls[i].node, 1e-3 * ms);
    }
    profile_.end_step();
  }

  // Records the step's calls as a graph without running them. The kernel functions only enqueue and only read the
  // seed; a copy of the state keeps the capture from touching the host's.
  CapturedGraph capture(const std::vector<KernelCall>& calls, const CallListState& list, const StepState& state,
                        const CudaContext& context) {
    StepState scratch_state = state;
    return CapturedGraph(stream_, [&] { launch_calls(calls, list, scratch_state, context); });
  }

  CudaBackendOptions options_;
  CudaLaunchCounts counts_;
  DispatchTable table_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::CublasHandle> cublas_;  // bound to stream_, with a workspace that outlives every graph
  std::unique_ptr<cudnn::Context> cudnn_;
  std::unique_ptr<KernelChoiceCache> choices_;  // --kernels auto only
  std::string device_name_;
  std::map<const std::vector<KernelCall>*, std::unique_ptr<CallListState>> call_lists_;
  struct StagingSlot {
    void* buffer = nullptr;  // pinned host memory
    size_t capacity = 0;
    cudaEvent_t event = nullptr;  // recorded after the slot's last copy
  };
  bool profiling_ = false;
  OpProfile profile_;
  std::vector<cudaEvent_t> profile_events_;  // [before call 0, after call 0, after call 1, ...]
  bool step_timing_ = false;
  std::array<cudaEvent_t, 2> step_events_{};  // around the last execute()'s work
  std::array<StagingSlot, 4> staging_ring_{};  // ≥ 2 per step's inputs, so filling one never waits on the step
  size_t next_slot_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

cudnn::Context* cudnn_context_of(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  return cuda ? cuda->cudnn_context() : nullptr;
}

CudaLaunchCounts cuda_launch_counts(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  return cuda ? cuda->launch_counts() : CudaLaunchCounts{};
}

bool cuda_backend_available() { return cuda::device_count() > 0; }

}  // namespace gancu
