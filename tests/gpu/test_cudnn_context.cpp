// The cuDNN context's bookkeeping (kernels/cudnn/cudnn_context.h): where its algorithm search runs and how its
// workspace grows. The growth policy needs no GPU; the rest skips without one.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <limits>
#include <thread>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cudnn/conv2d.h"
#include "kernels/cudnn/cudnn_context.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::poisoned_vector;
using testing::random_vector;

// No GPU needed. A workspace grows at least twofold, so the outgrown buffers kept for earlier graphs (each at most
// half the next) sum to less than the live one; a need that fits changes nothing.
TEST(CudnnWorkspace, GrowsAtLeastTwofoldAndOnlyWhenNeeded) {
  EXPECT_EQ(cudnn::grown_workspace_bytes(0, 0), 0u);
  EXPECT_EQ(cudnn::grown_workspace_bytes(0, 100), 100u);
  EXPECT_EQ(cudnn::grown_workspace_bytes(100, 100), 100u);
  EXPECT_EQ(cudnn::grown_workspace_bytes(100, 40), 100u);
  EXPECT_EQ(cudnn::grown_workspace_bytes(100, 101), 200u);
  EXPECT_EQ(cudnn::grown_workspace_bytes(100, 1000), 1000u);
  const size_t huge = std::numeric_limits<size_t>::max() / 2 + 1;  // doubling would overflow: the need itself
  EXPECT_EQ(cudnn::grown_workspace_bytes(huge, huge + 1), huge + 1);
  // A sequence of growths: every retired size sums below the live one.
  size_t live = 0, retired = 0;
  for (size_t need : {size_t(3), size_t(5), size_t(6), size_t(7), size_t(100), size_t(150), size_t(1000)}) {
    const size_t grown = cudnn::grown_workspace_bytes(live, need);
    EXPECT_GE(grown, need);
    if (grown != live) retired += live, live = grown;
    EXPECT_LT(retired, live) << "after a need of " << need;
  }
}

// A host function that holds the stream for a while: the stand-in for a long kernel still queued when a new shape is
// planned.
void CUDART_CB hold_stream(void*) { std::this_thread::sleep_for(std::chrono::milliseconds(300)); }

// The first call of a shape plans it. The search must run on the call's stream (not on whatever stream the handle
// was bound to before) and only once the work queued there has finished; the convolution that follows must still be
// right.
TEST(CudnnContext, SearchRunsOnTheCallsStreamAfterItsQueuedWork) {
  GANCU_REQUIRE_GPU();
  Conv2dParams p;
  p.batch = 2, p.in_channels = 3, p.in_h = p.in_w = 8, p.out_channels = 4, p.kernel = 3, p.stride = 1, p.pad = 1;
  const std::vector<float> x = random_vector<float>(p.x_size(), 31), w = random_vector<float>(p.w_size(), 32, 0.2),
                           b = random_vector<float>(p.out_channels, 33);
  const int64_t y_size = int64_t(p.batch) * p.out_channels * p.out_h() * p.out_w();
  std::vector<double> want(size_t(y_size), 0.0);
  {
    const std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(b.begin(), b.end());
    ref::conv2d_forward<double>(p, xd.data(), wd.data(), bd.data(), want.data());
  }

  cudaStream_t other = nullptr, stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t queued_done = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&queued_done, cudaEventDisableTiming), cudaSuccess);
  {
    cudnn::Context dnn;
    dnn.bind(other);  // as if the handle had served another stream last
    DeviceArray<float> d_x(x), d_w(w), d_b(b), d_y(poisoned_vector<float>(y_size));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the pageable uploads above went through the legacy stream

    ASSERT_EQ(cudaLaunchHostFunc(stream, hold_stream, nullptr), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(queued_done, stream), cudaSuccess);
    cudnn::conv2d_forward(dnn, p, cuda::MathMode::kFp32, d_x.get(), d_w.get(), d_b.get(), d_y.get(), stream);
    EXPECT_EQ(dnn.last_search_stream(), stream) << "the algorithm search ran on the handle's previous stream";
    EXPECT_EQ(cudaEventQuery(queued_done), cudaSuccess) << "the search did not wait for the stream's queued work";
    cudaStream_t bound = nullptr;
    ASSERT_EQ(cudnnGetStream(dnn.handle(), &bound), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(bound, stream);

    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_TRUE(testing::close_rel_l2(d_y.to_host(), want, 1e-5, {p.batch, p.out_channels, p.out_h(), p.out_w()}));
  }
  cudaEventDestroy(queued_done);
  cudaStreamDestroy(stream);
  cudaStreamDestroy(other);
}

// A shape first met inside a capture is refused before the search could invalidate the capture, and the refusal
// leaves no CUDA error behind.
TEST(CudnnContext, SmallUnplannedShapeInsideACaptureIsRefused) {
  GANCU_REQUIRE_GPU();
  Conv2dParams p;
  p.batch = 1, p.in_channels = 2, p.in_h = p.in_w = 6, p.out_channels = 2, p.kernel = 3, p.stride = 1, p.pad = 0;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    cudnn::Context dnn;
    DeviceArray<float> d_x(random_vector<float>(p.x_size(), 41)), d_w(random_vector<float>(p.w_size(), 42)),
        d_y(poisoned_vector<float>(int64_t(p.batch) * p.out_channels * p.out_h() * p.out_w()));
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    EXPECT_THROW(
        cudnn::conv2d_forward(dnn, p, cuda::MathMode::kFp32, d_x.get(), d_w.get(), nullptr, d_y.get(), stream),
        std::logic_error);
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess) << "the refusal invalidated the capture";
    if (graph) cudaGraphDestroy(graph);
    EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess);
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace gancu
