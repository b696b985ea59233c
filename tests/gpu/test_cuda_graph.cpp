// The CUDA backend's capture helper (engine/cuda_graph.h): a capture that fails in any way leaves the stream out of
// capture mode and no error for the next launch to report; a good capture replays what it recorded. The step-launch
// policy needs no GPU; the rest skips without one.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cuda_graph.h"
#include "kernels/cuda/activations.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using cuda_backend::CapturedGraph;
using testing::poisoned_vector;
using testing::random_vector;

// ReLU is exact in fp32: the GPU's result must equal this bit for bit.
std::vector<float> relu_of(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] > 0 ? x[i] : 0.0f;
  return y;
}

// No GPU needed: the backend's choice of how to run a step.
TEST(StepLaunch, WarmUpCallByCallThenCaptureOncePerSeedThenLaunch) {
  using cuda_backend::step_launch;
  using cuda_backend::StepLaunch;
  // graph_replay, profiling, warmed_up, has_graph_for_seed
  EXPECT_EQ(step_launch(true, false, false, false), StepLaunch::kCallByCall);  // first step of a list
  EXPECT_EQ(step_launch(true, false, true, false), StepLaunch::kCaptureThenLaunch);  // second, or a new seed
  EXPECT_EQ(step_launch(true, false, true, true), StepLaunch::kLaunch);
  for (bool warmed_up : {false, true})
    for (bool has_graph : {false, true}) {
      EXPECT_EQ(step_launch(false, false, warmed_up, has_graph), StepLaunch::kCallByCall);  // --no-cuda-graph
      EXPECT_EQ(step_launch(true, true, warmed_up, has_graph), StepLaunch::kCallByCall);    // --profile
    }
}

class CapturedGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GANCU_REQUIRE_GPU();
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
    // One eager launch first, as the backend's warm-up step does: the kernel is loaded before any capture meets it.
    DeviceArray<float> x(random_vector<float>(8, 60)), y(poisoned_vector<float>(8));
    cuda::relu_forward(8, x.get(), y.get(), stream_);
    ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  }
  void TearDown() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  // After a failed capture: no error is pending, the stream is not capturing, an ordinary launch and its check
  // succeed, and a new capture on the same stream records and replays correctly.
  void expect_recovered() {
    EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess) << "the failed capture left its error behind";
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
    ASSERT_EQ(cudaStreamIsCapturing(stream_, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusNone) << "the stream is still capturing";
    const int64_t n = 1000;
    const std::vector<float> x = random_vector<float>(n, 61);
    DeviceArray<float> d_x(x), d_y(poisoned_vector<float>(n));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the pageable uploads above went through the legacy stream
    EXPECT_NO_THROW(cuda::relu_forward(n, d_x.get(), d_y.get(), stream_));
    ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    EXPECT_EQ(d_y.to_host(), relu_of(x)) << "eager launch";

    d_y.upload(poisoned_vector<float>(n));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const CapturedGraph graph(stream_, [&] { cuda::relu_forward(n, d_x.get(), d_y.get(), stream_); });
    ASSERT_TRUE(graph);
    graph.launch(stream_);
    ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    EXPECT_EQ(d_y.to_host(), relu_of(x)) << "replayed graph";
  }

  cudaStream_t stream_ = nullptr;
};

TEST_F(CapturedGraphTest, SmallThrowAfterEnqueueingIsCleanedUp) {
  DeviceArray<float> x(random_vector<float>(64, 62)), y(poisoned_vector<float>(64));
  EXPECT_THROW(CapturedGraph(stream_,
                             [&] {
                               cuda::relu_forward(64, x.get(), y.get(), stream_);
                               throw std::runtime_error("fails after enqueueing");
                             }),
               std::runtime_error);
  expect_recovered();
}

// Synchronising a capturing stream is illegal: it fails, invalidates the capture and sets the thread's last error.
// (Not "Small": the deliberate API error would count as a compute-sanitizer error in the GPU check.)
TEST_F(CapturedGraphTest, IllegalCallThenThrowIsCleanedUp) {
  DeviceArray<float> x(random_vector<float>(64, 63)), y(poisoned_vector<float>(64));
  EXPECT_THROW(CapturedGraph(stream_,
                             [&] {
                               cuda::relu_forward(64, x.get(), y.get(), stream_);
                               if (cudaStreamSynchronize(stream_) != cudaSuccess)
                                 throw std::runtime_error("synchronise under capture failed");
                             }),
               std::runtime_error);
  expect_recovered();
}

// The same illegal call with its error ignored: the capture ends invalidated, which the helper reports itself.
TEST_F(CapturedGraphTest, InvalidatedCaptureThatNothingReportedIsCleanedUp) {
  DeviceArray<float> x(random_vector<float>(64, 64)), y(poisoned_vector<float>(64));
  EXPECT_THROW(CapturedGraph(stream_,
                             [&] {
                               cuda::relu_forward(64, x.get(), y.get(), stream_);
                               (void)cudaStreamSynchronize(stream_);
                             }),
               std::runtime_error);
  expect_recovered();
}

TEST_F(CapturedGraphTest, SmallMovedGraphKeepsItsCapture) {
  const int64_t n = 256;
  const std::vector<float> x = random_vector<float>(n, 65);
  DeviceArray<float> d_x(x), d_y(poisoned_vector<float>(n));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  CapturedGraph first(stream_, [&] { cuda::relu_forward(n, d_x.get(), d_y.get(), stream_); });
  CapturedGraph second = std::move(first);
  EXPECT_FALSE(first);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  ASSERT_TRUE(second);
  second.launch(stream_);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(d_y.to_host(), relu_of(x));
  EXPECT_THROW(first.launch(stream_), std::logic_error);
}

}  // namespace
}  // namespace gancu
