// SRGAN on the CUDA backend (issue 12): the SRResNet pixel-MSE step, whose residual blocks' batch norm + PReLU pairs
// the backend fuses (engine/fusion.h → the kPrelu batch-norm kernels of kernels/cuda/batch_norm2d.cu, slope gradient
// included), against the unfused step on the CPU backend.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/cuda_backend.h"
#include "tests/gpu/gpu_test.h"
#include "tests/srgan_step.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::close_rel_l2;

std::vector<float> host(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

CudaBackendOptions custom_fp32() {
  CudaBackendOptions o;
  o.kernels = CudaBackendOptions::kCustom;
  o.math = cuda::MathMode::kFp32;
  return o;
}

models::SrresnetConfig small_srresnet() {
  models::SrresnetConfig c;
  c.residual_blocks = 2;
  c.channels = 64;
  return c;
}

// Without Adam: the output, loss, running statistics and every gradient (the fused PReLU slopes' among them), CUDA
// (fused, custom fp32 kernels) against CPU (unfused). Tolerances: 1e-5 relative L2 for the forward values and running
// statistics, 1e-4 for the gradients (fp32 sums in other orders through two residual blocks and their batch norms,
// as CudaBackend.OneDcganStepCustomFp32MatchesCpu allows for the Adam moments).
TEST(SrganCuda, FusedSrresnetBackwardMatchesTheCpu) {
  GANCU_REQUIRE_GPU();
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(custom_fp32());
  ASSERT_TRUE(gpu->fuses_batch_norm_activation());
  testing::SrresnetStep want_step = testing::srresnet_step(small_srresnet(), 4, 12, false);
  testing::SrresnetStep got_step = testing::srresnet_step(small_srresnet(), 4, 12, false);
  ParameterStore want_store(*cpu, 13), got_store(*gpu, 13);
  Plan want(std::move(want_step.graph), want_store), got(std::move(got_step.graph), got_store);
  int fused = 0;
  for (const Node& n : got.graph().nodes()) fused += n.attrs.fused_activation == FusedActivation::kPRelu;
  EXPECT_EQ(fused, 2 * 2) << "each residual block's BN + PReLU, forward and backward";
  const auto lr = testing::random_vector<float>(want.graph().shape(want_step.lr).numel(), 41, 0.5);
  const auto hr = testing::random_vector<float>(want.graph().shape(want_step.hr).numel(), 42, 0.5);
  for (Plan* p : {&want, &got}) {
    testing::randomize_persistent_values(*p, 700);
    p->write(p->graph().find("lr"), lr.data());
    p->write(p->graph().find("hr"), hr.data());
    p->run();
  }
  const Shape out = want.graph().shape(want_step.output);
  EXPECT_TRUE(close_rel_l2(host(got.read(got_step.output)), host(want.read(want_step.output)), 1e-5, out.dims()))
      << "SRResNet output";
  EXPECT_TRUE(close_rel_l2(host(got.read(got_step.loss)), host(want.read(want_step.loss)), 1e-5)) << "loss";
  for (ValueId id : want.values_of_kind(ValueKind::kBuffer)) {
    const std::string& name = want.graph().value(id).name;
    EXPECT_TRUE(close_rel_l2(host(got.read(got.find(name))), host(want.read(id)), 1e-5)) << name;
  }
  for (size_t k = 0; k < want_step.params.size(); ++k) {
    const Tensor w = want.read(want.graph().storage_root(want_step.grads[k]));
    const Tensor g = got.read(got.graph().storage_root(got_step.grads[k]));
    EXPECT_TRUE(close_rel_l2(host(g), host(w), 1e-4, w.shape().dims()))
        << "gradient of " << want.graph().value(want_step.params[k]).name;
  }
}

// Two whole steps with Adam: parameters and running statistics to 1e-4, Adam moments to 1e-3 (as
// CudaBackend.OneDcganStepCustomFp32MatchesCpu).
TEST(SrganCuda, TwoSrresnetStepsTrackTheCpu) {
  GANCU_REQUIRE_GPU();
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(custom_fp32());
  testing::SrresnetStep want_step = testing::srresnet_step(small_srresnet(), 4, 12, true);
  testing::SrresnetStep got_step = testing::srresnet_step(small_srresnet(), 4, 12, true);
  ParameterStore want_store(*cpu, 17), got_store(*gpu, 17);
  Plan want(std::move(want_step.graph), want_store), got(std::move(got_step.graph), got_store);
  testing::randomize_persistent_values(want, 900);
  testing::randomize_persistent_values(got, 900);
  for (int step = 0; step < 2; ++step) {
    const auto lr = testing::random_vector<float>(want.graph().shape(want_step.lr).numel(), 50 + step, 0.5);
    const auto hr = testing::random_vector<float>(want.graph().shape(want_step.hr).numel(), 60 + step, 0.5);
    for (Plan* p : {&want, &got}) {
      p->write(p->graph().find("lr"), lr.data());
      p->write(p->graph().find("hr"), hr.data());
      p->run();
    }
  }
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer, ValueKind::kOptState})
    for (ValueId id : want.values_of_kind(kind)) {
      const std::string& name = want.graph().value(id).name;
      EXPECT_TRUE(close_rel_l2(host(got.read(got.find(name))), host(want.read(id)),
                               kind == ValueKind::kOptState ? 1e-3 : 1e-4))
          << name;
    }
}

}  // namespace
}  // namespace gancu
