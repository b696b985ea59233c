// The NCCL path of data-parallel training (engine/comm_nccl.cu) on one GPU, one rank: the DCGAN step with its
// gradients averaged by ncclAllReduce (ncclAvg over a group of one: the identity) must train exactly as the plain step,
// including the steps replayed from the captured CUDA graph that holds the NCCL calls. Never run: written without a
// GPU. Skips without a GPU or without libnccl.so.2.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/comm.h"
#include "engine/comm_nccl.h"
#include "engine/cuda_backend.h"
#include "engine/engine.h"
#include "tests/data_parallel_net.h"
#include "tests/gpu/gpu_test.h"

namespace gancu {
namespace {

TEST(DataParallelCuda, OneRankOverNcclTrainsBitForBitAsThePlainStep) {
  GANCU_REQUIRE_GPU();
  if (const std::string why = nccl_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  ASSERT_EQ(process_group().size(), 1) << "run gancu_gpu_tests without mpirun";
  std::unique_ptr<Backend> backend = make_cuda_backend();
  ParameterStore plain_store(*backend, 5), parallel_store(*backend, 5);
  Plan plain(testing::tiny_gan_step().graph, plain_store);
  recipes::GanStep step = testing::tiny_gan_step();
  DataParallelOptions o;
  o.bucket_bytes = 4096;  // several buckets, so several grouped NCCL calls per update
  ASSERT_GT(make_data_parallel(step.graph, o), 2);
  Plan parallel(std::move(step.graph), parallel_store);
  const std::vector<float> images = testing::random_floats(4 * 16 * 16, 1);
  // Step 1 runs call by call (NCCL's communicator is made there, outside any capture), step 2 captures, 3 and 4 replay.
  for (int s = 0; s < 4; ++s)
    for (Plan* p : {&plain, &parallel}) {
      p->write(p->find("data.real0"), images.data());
      p->run();
    }
  ASSERT_EQ(plain_store.size(), parallel_store.size());
  for (ParameterStore::Handle h = 0; h < plain_store.size(); ++h) {
    const Tensor a = plain_store.read(h), b = parallel_store.read(parallel_store.find(plain_store.entry(h).name));
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float))) << plain_store.entry(h).name;
  }
  const CudaLaunchCounts counts = cuda_launch_counts(*backend);
  EXPECT_EQ(counts.captures, 2) << "each plan's step captured once (the NCCL calls inside the data-parallel one)";
  EXPECT_EQ(counts.graph_launches, 6);
}

}  // namespace
}  // namespace gancu
