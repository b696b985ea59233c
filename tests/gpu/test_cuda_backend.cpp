// The engine's CUDA backend (engine/cuda_backend.h) on whole DCGAN-32 training steps, against the CPU backend from the
// same seed and data, and against itself (graph replay vs call-by-call launches, resuming from saved state).
// Both plans initialise their parameters on the host from the seed, so they start bit-identical; random ops (z, label
// noise) draw the same Philox numbers on both backends.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/files.h"
#include "core/rng.h"
#include "engine/cuda_backend.h"
#include "engine/cuda_dispatch.h"
#include "engine/engine.h"
#include "recipes/gan_step.h"
#include "engine/kernel_choice.h"
#include "engine/kernel_params.h"
#include "kernels/cuda/activations.h"
#include "kernels/cuda/check.h"
#include "kernels/cudnn/cudnn_context.h"
#include "models/dcgan.h"
#include "tests/gpu/gpu_test.h"
#include "tests/temp_dir.h"
#include "tests/testing.h"

namespace gancu {
using recipes::build_gan_step;
using recipes::GanStep;
using recipes::GanStepConfig;
namespace {

namespace fs = std::filesystem;
using testing::rel_l2_error;

constexpr uint64_t kSeed = 20240611;

// The DCGAN of a run: DCGAN-32 by default; the "Small" tests use a smaller one (fast under compute-sanitizer).
struct DcganShape {
  int batch = 16, width = 16, image_size = 32, channels = 3, latent = 32;
  int d_steps = 1;
};
constexpr DcganShape kSmall{4, 8, 16, 3, 16};

GanStep dcgan_step(const DcganShape& shape) {
  models::DcganConfig m;
  m.image_size = shape.image_size;
  m.channels = shape.channels;
  m.latent_size = shape.latent;
  m.generator_width = m.discriminator_width = shape.width;
  GanStepConfig c;
  c.batch_size = shape.batch;
  c.latent = Shape{shape.latent, 1, 1};
  c.image = Shape{shape.channels, shape.image_size, shape.image_size};
  c.label_noise = 0.05;  // exercises target_fill's device-step draws
  c.d_steps = shape.d_steps;
  return build_gan_step(c, [m](Builder& b, ValueId z, ValueId) { return models::dcgan_generator(b, z, m); },
                        [m](Builder& b, ValueId x, ValueId) { return models::dcgan_discriminator(b, x, m); });
}

// A DCGAN training run on a backend it owns, or on one it shares with other runs. The data batch of step s is a
// function of s alone, so runs on different backends (or resumed runs) see the same data.
class TrainingRun {
 public:
  explicit TrainingRun(std::unique_ptr<Backend> backend, const DcganShape& shape = {})
      : owned_backend_(std::move(backend)) {
    make_plan(*owned_backend_, shape);
  }
  TrainingRun(Backend& shared_backend, const DcganShape& shape) { make_plan(shared_backend, shape); }

  void steps(int count) {
    for (int i = 0; i < count; ++i) {
      for (size_t k = 0; k < real_batches_.size(); ++k) {
        const ValueId real = real_batches_[k];
        Rng rng(kSeed, 1000 + uint64_t(plan_->step()) * 16 + k);
        std::vector<float> batch(size_t(plan_->graph().shape(real).numel()));
        for (float& x : batch) x = rng.uniform(-1.0f, 1.0f);
        plan_->write(real, batch.data());
      }
      plan_->run();
    }
  }

  // Parameters, batch-norm statistics and Adam moments: everything a checkpoint holds.
  std::vector<ValueId> state_values() const {
    std::vector<ValueId> ids;
    for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState})
      for (ValueId id : plan_->values_of_kind(kind)) ids.push_back(id);
    return ids;
  }
  std::vector<float> read(ValueId id) const {
    Tensor t = plan_->read(id);
    return std::vector<float>(t.data(), t.data() + t.numel());
  }
  Plan& plan() { return *plan_; }

 private:
  void make_plan(Backend& backend, const DcganShape& shape) {
    GanStep step = dcgan_step(shape);
    real_batches_ = step.real_batches;
    store_ = std::make_unique<ParameterStore>(backend, kSeed);
    plan_ = std::make_unique<Plan>(std::move(step.graph), *store_);
  }

  std::unique_ptr<Backend> owned_backend_;  // declared first: destroyed after the plan that uses it (null: shared)
  std::unique_ptr<ParameterStore> store_;
  std::unique_ptr<Plan> plan_;
  std::vector<ValueId> real_batches_;
};

CudaBackendOptions options(CudaBackendOptions::Kernels kernels, cuda::MathMode math, bool graph_replay = true) {
  CudaBackendOptions o;
  o.kernels = kernels;
  o.math = math;
  o.graph_replay = graph_replay;
  return o;
}

// Relative L2 error of every value of the given kinds, GPU against CPU; returns the largest.
double expect_close(TrainingRun& gpu, TrainingRun& cpu, const std::vector<ValueKind>& kinds, double tol,
                    const std::string& what) {
  double worst = 0;
  for (ValueKind kind : kinds)
    for (ValueId id : cpu.plan().values_of_kind(kind)) {
      const std::string& name = cpu.plan().graph().value(id).name;
      const double err = rel_l2_error(gpu.read(gpu.plan().find(name)), cpu.read(id));
      EXPECT_LE(err, tol) << what << ": " << name;
      worst = std::max(worst, err);
    }
  std::printf("%s: worst relative L2 error %.3g (tolerance %.3g)\n", what.c_str(), worst, tol);
  return worst;
}

void expect_bit_identical(TrainingRun& a, TrainingRun& b, const std::string& what) {
  for (ValueId id : a.state_values()) {
    const std::vector<float> x = a.read(id), y = b.read(id);
    ASSERT_EQ(x.size(), y.size());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0)
        << what << ": " << a.plan().graph().value(id).name << " differs";
  }
}

// Needs no GPU: building the table touches no device. Every op but the reshape view has a CUDA kernel, with a scratch
// request where the kernel needs a workspace from the plan.
TEST(CudaBackend, DispatchTableCoversEveryOp) {
  for (auto kernels : {CudaBackendOptions::kCustom, CudaBackendOptions::kCudnn, CudaBackendOptions::kAuto}) {
    const DispatchTable table = cuda_backend::make_cuda_dispatch_table(kernels);
    for (size_t i = 0; i < table.size(); ++i) {
      const OpKind op = static_cast<OpKind>(i);
      // A reshape is a view; synchronised batch norm is host-only (engine/data_parallel.h: --sync-bn refuses cuda).
      const bool absent = op == OpKind::kReshape || op == OpKind::kSyncBatchNorm2dTrain ||
                          op == OpKind::kSyncBatchNorm2dBackward;
      EXPECT_EQ(table[i].run == nullptr, absent) << op_name(op);
    }
    for (OpKind loss : {OpKind::kBceWithLogits, OpKind::kBceWithLogitsBackward, OpKind::kMse, OpKind::kMseBackward,
                        OpKind::kL1, OpKind::kL1Backward, OpKind::kCrossEntropy, OpKind::kCrossEntropyBackward})
      EXPECT_NE(table[static_cast<size_t>(loss)].scratch_floats, nullptr) << op_name(loss);
    const bool custom = kernels != CudaBackendOptions::kCudnn;  // auto may choose the custom kernels
    for (OpKind conv : {OpKind::kConv2d, OpKind::kConv2dBackwardInput, OpKind::kConv2dBackwardWeight,
                        OpKind::kConvTranspose2d, OpKind::kConvTranspose2dBackwardInput,
                        OpKind::kConvTranspose2dBackwardWeight})  // split-K partials
      EXPECT_EQ(table[static_cast<size_t>(conv)].scratch_floats != nullptr, custom) << op_name(conv);
  }
}

// Needs no GPU: a CUDA kernel function handed another backend's context (the host backends' empty one) refuses it
// before reading the call or enqueueing anything, for every op, instead of misreading it as a CudaContext.
TEST(CudaBackend, KernelFunctionsRefuseAnotherBackendsContext) {
  const DispatchTable table = cuda_backend::make_cuda_dispatch_table(CudaBackendOptions::kCustom);
  const BackendContext host_context;
  const KernelCall empty_call;
  StepState state;
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].run == nullptr) continue;
    EXPECT_THROW(table[i].run(empty_call, state, host_context), std::logic_error) << op_name(static_cast<OpKind>(i));
  }
}

// One step in strict fp32. After one Adam step every parameter moved by lr·g/(|g| + eps) ≈ ±lr (m̂/√v̂ = g/|g| at
// t = 1), so the parameters barely see the gradients' rounding: fp32 sums in a different order (GPU tiles vs OpenBLAS)
// and normals a few ulps apart leave them ~1e-7 apart; 1e-4 leaves room for the odd gradient within rounding of zero
// changing sign in a large tensor. The Adam moments are the gradients themselves (m = (1 − β1)·g): they carry the
// rounding of every kernel through both backward passes, ~1e-6..1e-5, held to 1e-3.
void check_one_fp32_step(CudaBackendOptions::Kernels kernels, const std::string& what) {
  GANCU_REQUIRE_GPU();
  TrainingRun cpu(make_cpu_backend());
  TrainingRun gpu(make_cuda_backend(options(kernels, cuda::MathMode::kFp32)));
  cpu.steps(1);
  gpu.steps(1);
  expect_close(gpu, cpu, {ValueKind::kParameter, ValueKind::kBuffer}, 1e-4, what + " parameters");
  expect_close(gpu, cpu, {ValueKind::kOptState}, 1e-3, what + " Adam moments (gradients)");
  EXPECT_EQ(gpu.plan().step(), 1);
  EXPECT_EQ(gpu.plan().counters(), cpu.plan().counters());
}

TEST(CudaBackend, OneDcganStepCustomFp32MatchesCpu) { check_one_fp32_step(CudaBackendOptions::kCustom, "custom fp32"); }

TEST(CudaBackend, OneDcganStepCudnnFp32MatchesCpu) { check_one_fp32_step(CudaBackendOptions::kCudnn, "cuDNN fp32"); }

// --kernels auto: the first step measures every convolution pass and shape of the step (both kernels, on the call's own
// buffers), writes the choices to its file, and runs the winners: the step is as close to the CPU's as either kernel
// set's is (tolerances as in check_one_fp32_step). The file then names every (pass, shape) the graph holds, with both measured times.
TEST(CudaBackend, OneDcganStepAutoFp32MatchesCpuAndRecordsItsChoices) {
  GANCU_REQUIRE_GPU();
  const fs::path dir = testing::fresh_temp_dir("cuda_auto");
  CudaBackendOptions o = options(CudaBackendOptions::kAuto, cuda::MathMode::kFp32);
  o.kernel_choice_file = (dir / "kernel_choices.json").string();
  TrainingRun cpu(make_cpu_backend());
  TrainingRun gpu(make_cuda_backend(o));
  cpu.steps(1);
  gpu.steps(1);
  expect_close(gpu, cpu, {ValueKind::kParameter, ValueKind::kBuffer}, 1e-4, "auto fp32 parameters");
  expect_close(gpu, cpu, {ValueKind::kOptState}, 1e-3, "auto fp32 Adam moments (gradients)");

  std::set<std::pair<std::string, std::string>> expected;  // (op, shape) of every convolution in the step
  for (const Node& n : gpu.plan().graph().nodes()) {
    switch (n.op) {
      case OpKind::kConv2d:
      case OpKind::kConv2dBackwardInput:
      case OpKind::kConv2dBackwardWeight:
        expected.insert({op_name(n.op), conv_shape_key(conv2d_params_of(gpu.plan().graph(), n))});
        break;
      case OpKind::kConvTranspose2d:
      case OpKind::kConvTranspose2dBackwardInput:
      case OpKind::kConvTranspose2dBackwardWeight:
        expected.insert({op_name(n.op), conv_shape_key(conv_transpose2d_params_of(gpu.plan().graph(), n))});
        break;
      default: break;
    }
  }
  const std::vector<char> bytes = read_file(o.kernel_choice_file);
  const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end());
  std::set<std::pair<std::string, std::string>> recorded;
  int cudnn_wins = 0;
  for (const nlohmann::json& e : j.at("choices")) {
    EXPECT_EQ(e.at("device").get<std::string>().rfind(cuda::device_name() + ", cuDNN ", 0), 0u) << e.dump();
    EXPECT_EQ(e.at("math").get<std::string>(), "fp32");
    EXPECT_GT(e.at("custom_ms").get<double>(), 0.0);
    EXPECT_NE(e.at("cudnn_ms").get<double>(), 0.0);
    const bool cudnn = e.at("kernels").get<std::string>() == "cudnn";
    const double cudnn_ms = e.at("cudnn_ms").get<double>();  // −1: cuDNN had no acceptable algorithm
    EXPECT_EQ(cudnn, cudnn_ms >= 0 && cudnn_ms < e.at("custom_ms").get<double>()) << e.dump();
    cudnn_wins += cudnn;
    recorded.insert({e.at("op").get<std::string>(), e.at("shape").get<std::string>()});
    std::printf("  %-34s %-34s custom %.4f ms, cuDNN %.4f ms\n", e.at("op").get<std::string>().c_str(),
                e.at("shape").get<std::string>().c_str(), e.at("custom_ms").get<double>(), e.at("cudnn_ms").get<double>());
  }
  EXPECT_EQ(recorded, expected);
  std::printf("auto: cuDNN chosen for %d of %zu passes\n", cudnn_wins, recorded.size());
  fs::remove_all(dir);
}

// A choice file is obeyed without measuring again: with every choice rewritten to "custom", the auto backend's steps
// are bit-identical to the custom backend's, and the file is left as it was (nothing new to record).
TEST(CudaBackend, AutoFollowsItsChoiceFile) {
  GANCU_REQUIRE_GPU();
  const fs::path dir = testing::fresh_temp_dir("cuda_auto_file");
  CudaBackendOptions o = options(CudaBackendOptions::kAuto, cuda::MathMode::kTf32);
  o.kernel_choice_file = (dir / "kernel_choices.json").string();
  {
    TrainingRun measure(make_cuda_backend(o));
    measure.steps(1);
  }
  const std::vector<char> bytes = read_file(o.kernel_choice_file);
  nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end());
  for (nlohmann::json& e : j.at("choices")) e["kernels"] = "custom";
  const std::string forced = j.dump(1) + "\n";
  write_file_atomic(o.kernel_choice_file, forced);

  TrainingRun automatic(make_cuda_backend(o));
  TrainingRun custom(make_cuda_backend(options(CudaBackendOptions::kCustom, cuda::MathMode::kTf32)));
  automatic.steps(3);
  custom.steps(3);
  expect_bit_identical(automatic, custom, "auto (file says custom) vs custom");
  const std::vector<char> after = read_file(o.kernel_choice_file);
  EXPECT_EQ(std::string(after.begin(), after.end()), forced);
  fs::remove_all(dir);
}

// Several steps: a GAN is a feedback loop (D's update changes G's gradient and back), and from step 2 Adam's m̂/√v̂ is
// no longer a sign, so rounding differences grow step by step. Weights drift ~1e-3 apart in ten steps, but the
// batch-norm betas start at zero and hold only ten ±lr moves, so their relative error is relative to the motion
// itself: the CPU's own fp32 run is ~2e-2 from the double-precision reference backend there. Each tensor is therefore
// held to 1e-2 or to four times the CPU's distance from the reference, whichever is larger: the GPU's fp32 may drift
// from the CPU's fp32 about as far as the CPU drifts from exact arithmetic. A wrong step number, counter or kernel
// gives O(1) differences.
void expect_tracks_cpu(TrainingRun& gpu, TrainingRun& cpu, TrainingRun& reference, const std::string& what) {
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer})
    for (ValueId id : cpu.plan().values_of_kind(kind)) {
      const std::string& name = cpu.plan().graph().value(id).name;
      const std::vector<float> on_cpu = cpu.read(id);
      const double cpu_drift = rel_l2_error(on_cpu, reference.read(reference.plan().find(name)));
      const double gpu_error = rel_l2_error(gpu.read(gpu.plan().find(name)), on_cpu);
      EXPECT_LE(gpu_error, std::max(1e-2, 4 * cpu_drift)) << what << ": " << name << " (CPU vs reference: " << cpu_drift << ")";
      std::printf("  %s %-32s GPU vs CPU %.3g, CPU vs reference %.3g\n", what.c_str(), name.c_str(), gpu_error,
                  cpu_drift);
    }
  EXPECT_EQ(gpu.plan().step(), cpu.plan().step()) << what;
  EXPECT_EQ(gpu.plan().counters(), cpu.plan().counters()) << what;
}

TEST(CudaBackend, TenDcganStepsCustomFp32TrackCpu) {
  GANCU_REQUIRE_GPU();
  constexpr int kSteps = 10;
  TrainingRun reference(make_reference_backend());
  TrainingRun cpu(make_cpu_backend());
  TrainingRun gpu(make_cuda_backend(options(CudaBackendOptions::kCustom, cuda::MathMode::kFp32)));
  reference.steps(kSteps);
  cpu.steps(kSteps);
  gpu.steps(kSteps);
  expect_tracks_cpu(gpu, cpu, reference, "custom fp32");
  EXPECT_EQ(gpu.plan().step(), kSteps);
}

// Two D updates per step share one Adam state and advance D's device counter twice (the host counter must follow),
// replayed as a graph: three steps track the CPU backend.
TEST(CudaBackend, TwoDiscriminatorUpdatesPerStepTrackCpu) {
  GANCU_REQUIRE_GPU();
  DcganShape shape = kSmall;
  shape.d_steps = 2;
  TrainingRun reference(make_reference_backend(), shape);
  TrainingRun cpu(make_cpu_backend(), shape);
  TrainingRun gpu(make_cuda_backend(options(CudaBackendOptions::kCustom, cuda::MathMode::kFp32)), shape);
  reference.steps(3);
  cpu.steps(3);
  gpu.steps(3);
  expect_tracks_cpu(gpu, cpu, reference, "custom fp32, two D updates per step");
  EXPECT_EQ(gpu.plan().counters(), cpu.plan().counters());
  EXPECT_EQ(gpu.plan().counters().at(size_t(gpu.plan().store().counter(recipes::kOptimiserD))), 6);
}

// TF32 rounds conv inputs to 10 mantissa bits (~5e-4 relative); after one step the parameters (≈ p0 ± lr) stay within
// 5e-3 of the CPU's fp32 result.
TEST(CudaBackend, OneDcganStepTf32NearCpu) {
  GANCU_REQUIRE_GPU();
  TrainingRun cpu(make_cpu_backend());
  TrainingRun gpu(make_cuda_backend(options(CudaBackendOptions::kCustom, cuda::MathMode::kTf32)));
  cpu.steps(1);
  gpu.steps(1);
  expect_close(gpu, cpu, {ValueKind::kParameter, ValueKind::kBuffer}, 5e-3, "custom tf32");
}

// The custom kernels are deterministic, so the replayed graph must reproduce call-by-call launches bit for bit: same
// kernels, same arguments, same device step and counters.
TEST(CudaBackend, GraphReplayIsBitIdenticalToEagerLaunches) {
  GANCU_REQUIRE_GPU();
  const auto tf32 = cuda::MathMode::kTf32;
  TrainingRun eager(make_cuda_backend(options(CudaBackendOptions::kCustom, tf32, /*graph_replay=*/false)));
  TrainingRun replay(make_cuda_backend(options(CudaBackendOptions::kCustom, tf32, /*graph_replay=*/true)));
  eager.steps(3);
  replay.steps(3);
  expect_bit_identical(replay, eager, "graph replay vs eager");
  EXPECT_EQ(replay.plan().counters(), eager.plan().counters());
}

// The same on a small DCGAN-16 (run under compute-sanitizer by the GPU check): step 1 eager, step 2 captured and
// replayed, step 3 replayed.
TEST(CudaBackend, SmallGraphReplayIsBitIdenticalToEagerLaunches) {
  GANCU_REQUIRE_GPU();
  const auto tf32 = cuda::MathMode::kTf32;
  std::unique_ptr<Backend> eager_backend = make_cuda_backend(options(CudaBackendOptions::kCustom, tf32, false));
  std::unique_ptr<Backend> replay_backend = make_cuda_backend(options(CudaBackendOptions::kCustom, tf32, true));
  TrainingRun eager(*eager_backend, kSmall);
  TrainingRun replay(*replay_backend, kSmall);
  eager.steps(3);
  replay.steps(3);
  expect_bit_identical(replay, eager, "small: graph replay vs eager");
  EXPECT_EQ(replay.plan().counters(), eager.plan().counters());
  // Proof that the comparison is between the two launch modes, not eager against eager.
  const CudaLaunchCounts e = cuda_launch_counts(*eager_backend), r = cuda_launch_counts(*replay_backend);
  EXPECT_EQ(e.call_by_call_steps, 3);
  EXPECT_EQ(e.captures + e.graph_launches, 0);
  EXPECT_EQ(r.call_by_call_steps, 1);  // the warm-up
  EXPECT_EQ(r.captures, 1);
  EXPECT_EQ(r.graph_launches, 2);
}

// Two plans on one backend, the second with larger shapes, so cuDNN wants a larger workspace: plan A's graph,
// captured with the old workspace, must still replay correctly (the old buffer is kept, not freed) after plan B grew
// it. If B's algorithms happen to fit the old workspace, the test grows it itself, so the move always happens between
// A's capture and A's replay. Destroying B releases memory, which drops every graph and with them the kept buffers.
void check_replay_after_workspace_growth(CudaBackendOptions::Kernels kernels, const std::string& what) {
  GANCU_REQUIRE_GPU();
  const DcganShape large{8, 8, 32, 3, 16};  // twice the image side: larger convolutions, larger workspaces
  std::unique_ptr<Backend> backend = make_cuda_backend(options(kernels, cuda::MathMode::kFp32));
  cudnn::Context* dnn = cudnn_context_of(*backend);
  ASSERT_NE(dnn, nullptr);
  TrainingRun reference(make_reference_backend(), kSmall);
  TrainingRun cpu(make_cpu_backend(), kSmall);
  TrainingRun a(*backend, kSmall);
  a.steps(2);  // eager warm-up, then captured and replayed
  const void* captured_with = dnn->workspace_address();
  const int growths = dnn->workspace_growths();
  {
    TrainingRun b(*backend, large);
    b.steps(2);
    const bool grown_by_b = dnn->workspace_growths() > growths;
    if (!grown_by_b) dnn->workspace(dnn->workspace_bytes() + 1);
    std::printf("%s: workspace %s → %zu bytes (%s), %zu outgrown buffers kept\n", what.c_str(),
                captured_with ? "set" : "empty", dnn->workspace_bytes(), grown_by_b ? "grown by plan B" : "grown by the test",
                dnn->retired_workspaces());
    EXPECT_NE(dnn->workspace_address(), captured_with);
    if (captured_with != nullptr) {
      EXPECT_GE(dnn->retired_workspaces(), 1u) << "the workspace A's graph holds is gone";
    }
    const CudaLaunchCounts before = cuda_launch_counts(*backend);
    a.steps(1);  // replays A's graph
    const CudaLaunchCounts after = cuda_launch_counts(*backend);
    EXPECT_EQ(after.graph_launches, before.graph_launches + 1) << "A's step was not a replay of its graph";
    EXPECT_EQ(after.captures, before.captures) << "A's step captured a new graph instead of replaying the old one";
    reference.steps(3);
    cpu.steps(3);
    expect_tracks_cpu(a, cpu, reference, what + ", A replayed after B grew the workspace");
  }
  EXPECT_EQ(dnn->retired_workspaces(), 0u) << "releasing B dropped every graph: the outgrown workspaces may go";
  a.steps(2);  // warm-up again (release dropped A's graph too), then captured and replayed with the new workspace
  reference.steps(2);
  cpu.steps(2);
  expect_tracks_cpu(a, cpu, reference, what + ", A after B was released");
}

TEST(CudaBackend, CudnnReplayAfterALargerPlanGrewTheWorkspace) {
  check_replay_after_workspace_growth(CudaBackendOptions::kCudnn, "cuDNN fp32");
}

TEST(CudaBackend, AutoReplayAfterALargerPlanGrewTheWorkspace) {
  check_replay_after_workspace_growth(CudaBackendOptions::kAuto, "auto fp32");
}

// A backend that forwards to the CUDA backend, with conv2d's kernel function wrapped to fail once inside a capture:
// it enqueues the convolution, then makes a call that is illegal while the stream captures (which invalidates the
// capture and leaves its error in the thread's last-error slot) and, in one variant, throws, as a cuDNN call that
// fails mid-capture does.
enum class CaptureFault { kNone, kIllegalCallThenThrow, kIllegalCallOnly };
CaptureFault g_capture_fault = CaptureFault::kNone;
KernelFn g_conv2d = nullptr;

void conv2d_failing_in_capture(const KernelCall& c, StepState& s, const BackendContext& context) {
  g_conv2d(c, s, context);
  const cudaStream_t stream = cuda_backend::cuda_context(context).stream;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  GANCU_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  if (status != cudaStreamCaptureStatusActive || g_capture_fault == CaptureFault::kNone) return;
  const CaptureFault fault = std::exchange(g_capture_fault, CaptureFault::kNone);
  EXPECT_NE(cudaStreamSynchronize(stream), cudaSuccess) << "synchronising a capturing stream should fail";
  if (fault == CaptureFault::kIllegalCallThenThrow) throw std::runtime_error("injected failure inside a capture");
}

class CaptureFaultBackend final : public Backend {
 public:
  explicit CaptureFaultBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)), table_(inner_->kernels()) {
    KernelEntry& conv = table_[static_cast<size_t>(OpKind::kConv2d)];
    g_conv2d = conv.run;
    conv.run = conv2d_failing_in_capture;
  }
  std::string name() const override { return inner_->name(); }
  const DispatchTable& kernels() const override { return table_; }
  float* allocate(int64_t floats) override { return inner_->allocate(floats); }
  void release(float* p) override { inner_->release(p); }
  void upload(float* dst, const float* src, int64_t n) override { inner_->upload(dst, src, n); }
  void download(float* dst, const float* src, int64_t n) override { inner_->download(dst, src, n); }
  void upload_async(float* dst, const float* src, int64_t n) override { inner_->upload_async(dst, src, n); }
  bool fuses_batch_norm_activation() const override { return inner_->fuses_batch_norm_activation(); }
  void execute(const std::vector<KernelCall>& calls, StepState& state) override { inner_->execute(calls, state); }
  void enable_step_timing() override { inner_->enable_step_timing(); }
  double last_step_ms() override { return inner_->last_step_ms(); }

 private:
  std::unique_ptr<Backend> inner_;
  DispatchTable table_;
};

// A failed capture throws with nothing of the step enqueued and the host state untouched, leaves no CUDA error for
// the next launch to report as its own, and the step can be run again: the run then tracks the CPU's as if nothing
// had happened. Small shapes, but not "Small": the deliberate API errors would count as compute-sanitizer errors.
TEST(CudaBackend, FailedCaptureLeavesNoErrorAndTheStepCanBeRetried) {
  GANCU_REQUIRE_GPU();
  TrainingRun reference(make_reference_backend(), kSmall);
  TrainingRun cpu(make_cpu_backend(), kSmall);
  TrainingRun gpu(
      std::make_unique<CaptureFaultBackend>(make_cuda_backend(options(CudaBackendOptions::kCudnn, cuda::MathMode::kFp32))),
      kSmall);
  gpu.steps(1);  // eager warm-up: nothing is captured yet
  const std::vector<int64_t> counters = gpu.plan().counters();
  for (CaptureFault fault : {CaptureFault::kIllegalCallThenThrow, CaptureFault::kIllegalCallOnly}) {
    SCOPED_TRACE(fault == CaptureFault::kIllegalCallOnly ? "illegal call only" : "illegal call, then a throw");
    g_capture_fault = fault;
    EXPECT_ANY_THROW(gpu.steps(1));
    EXPECT_EQ(g_capture_fault, CaptureFault::kNone) << "the fault was never reached inside a capture";
    EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess) << "the failed capture left its error behind";
    EXPECT_EQ(gpu.plan().step(), 1);
    EXPECT_EQ(gpu.plan().counters(), counters);
    // An ordinary launch and its check see no stale error.
    DeviceArray<float> x(testing::random_vector<float>(64, 51)), y(testing::poisoned_vector<float>(64));
    EXPECT_NO_THROW(cuda::relu_forward(64, x.get(), y.get(), nullptr));
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  g_capture_fault = CaptureFault::kNone;
  gpu.steps(2);  // captured now, then replayed
  reference.steps(3);
  cpu.steps(3);
  expect_tracks_cpu(gpu, cpu, reference, "cuDNN fp32 after failed captures");
}

// Loading a checkpoint into a plan whose graph is already captured (a different step and counters on the host than
// on the device) must upload the new step and counters before the replay: the resumed step then equals the
// uninterrupted run's step bit for bit.
TEST(CudaBackend, ResumedStepMatchesUninterruptedRun) {
  GANCU_REQUIRE_GPU();
  const CudaBackendOptions o = options(CudaBackendOptions::kCustom, cuda::MathMode::kFp32);
  TrainingRun uninterrupted(make_cuda_backend(o));
  uninterrupted.steps(2);
  std::vector<std::vector<float>> saved;
  for (ValueId id : uninterrupted.state_values()) saved.push_back(uninterrupted.read(id));
  const int64_t saved_step = uninterrupted.plan().step();
  const std::vector<int64_t> saved_counters = uninterrupted.plan().counters();
  uninterrupted.steps(1);

  TrainingRun resumed(make_cuda_backend(o));
  resumed.steps(3);  // step 2 captured the graph; the device now holds step 3 and counters {3, 3}
  const std::vector<ValueId> ids = resumed.state_values();
  ASSERT_EQ(ids.size(), saved.size());
  for (size_t i = 0; i < ids.size(); ++i) resumed.plan().write(ids[i], saved[i].data());
  resumed.plan().set_step(saved_step);
  resumed.plan().counters() = saved_counters;
  resumed.steps(1);
  expect_bit_identical(resumed, uninterrupted, "resumed vs uninterrupted");
  EXPECT_EQ(resumed.plan().step(), uninterrupted.plan().step());
  EXPECT_EQ(resumed.plan().counters(), uninterrupted.plan().counters());
}

}  // namespace
}  // namespace gancu
