// The data-parallel pass (engine/data_parallel.h) in one process: where its all-reduce buckets go, that a group of one
// trains bit for bit as the plain step, and that synchronised batch norm on one rank is batch norm. The collectives
// themselves run under mpirun in tests/mpi/test_data_parallel_mpi.cpp and tests/data_parallel.py.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "engine/comm.h"
#include "engine/engine.h"
#include "tests/data_parallel_net.h"
#include "tests/testing.h"

namespace gancu {
namespace {

bool touches(const Graph& g, const Node& n, ValueId root) {
  for (const auto* list : {&n.inputs, &n.outputs})
    for (ValueId v : *list)
      if (v != kNoValue && g.storage_root(v) == root) return true;
  return false;
}

// Every gradient of every Adam step is averaged exactly once, by a bucket placed after the last node that touches it
// and before the Adam step; a bucket is closed once it reaches the cap.
void expect_buckets_well_placed(const Graph& g, int64_t bucket_bytes) {
  const std::vector<Node>& nodes = g.nodes();
  std::map<ValueId, int> averaged_at;  // gradient root -> all-reduce node index
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    if (nodes[size_t(i)].op != OpKind::kAllReduceMean) continue;
    int64_t bytes = 0;
    for (ValueId v : nodes[size_t(i)].inputs) {
      EXPECT_TRUE(averaged_at.emplace(g.storage_root(v), i).second) << g.value(v).name << " averaged twice";
      bytes += g.value(v).numel() * 4;
    }
    EXPECT_LT(bytes - g.value(nodes[size_t(i)].inputs.back()).numel() * 4, bucket_bytes) << nodes[size_t(i)].name;
  }
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    const Node& step = nodes[size_t(i)];
    if (step.op != OpKind::kAdamStep) continue;
    for (size_t k = 1; k < step.inputs.size(); k += 4) {
      const ValueId root = g.storage_root(step.inputs[k]);
      const auto it = averaged_at.find(root);
      ASSERT_NE(it, averaged_at.end()) << g.value(root).name << " is never averaged";
      EXPECT_LT(it->second, i) << g.value(root).name << " averaged after its optimiser step";
      for (int j = it->second + 1; j < i; ++j)
        EXPECT_FALSE(touches(g, nodes[size_t(j)], root) && nodes[size_t(j)].op != OpKind::kAdamStep)
            << g.value(root).name << " is used by " << nodes[size_t(j)].name << " after it was averaged";
    }
  }
}

TEST(DataParallel, BucketsCoverEveryGradientOnceAfterItsLastUse) {
  // The tiny DCGAN has 5 D and 7 G parameter tensors. A 1-byte cap gives each gradient its own bucket; 512 bytes
  // closes a bucket at the first tensor that fills it (2 per network here); the default puts each network in one.
  for (const auto& [cap, want] : std::vector<std::pair<int64_t, int>>{{1, 12}, {512, 4}, {DataParallelOptions{}.bucket_bytes, 2}}) {
    recipes::GanStep step = testing::tiny_gan_step();
    const size_t before = step.graph.nodes().size();
    DataParallelOptions o;
    o.bucket_bytes = cap;
    EXPECT_EQ(make_data_parallel(step.graph, o), want) << "cap " << cap;
    EXPECT_EQ(step.graph.nodes().size(), before + size_t(want));
    expect_buckets_well_placed(step.graph, cap);
  }
}

TEST(DataParallel, AveragesAGradientOnlyAfterItsLastReader) {
  // y = conv(x) + p: p's gradient is the very value conv's backward reads afterwards (an add passes gy to both).
  Graph g;
  Builder b(g);
  b.set_training(true);
  g.optimiser("net");
  ValueId x = b.input("x", Shape{2, 1, 4, 4});
  ValueId p = b.parameter("p", Shape{2, 2, 4, 4}, Init{Init::kOnes});
  Init init;
  init.kind = Init::kNormal;
  init.stddev = 0.5f;
  ValueId y = b.add(b.conv2d(x, "conv", 2, 3, 1, 1, false, init), p);
  ValueId loss = b.mse(y, b.input("target", Shape{2, 2, 4, 4}));
  std::vector<ValueId> params{p, g.find("conv.weight")};
  b.adam_step("net", params, append_backward(g, {loss}, params), AdamParams{});
  ASSERT_EQ(make_data_parallel(g, DataParallelOptions{1}), 2);  // a bucket per gradient
  expect_buckets_well_placed(g, 1);
}

TEST(DataParallel, AGroupOfOneTrainsBitForBitAsThePlainStep) {
  ASSERT_EQ(process_group().size(), 1) << "run gancu_tests without mpirun";
  std::unique_ptr<Backend> backend = make_cpu_backend();
  ParameterStore plain_store(*backend, 5), parallel_store(*backend, 5);
  Plan plain(testing::tiny_gan_step().graph, plain_store);
  recipes::GanStep step = testing::tiny_gan_step();
  DataParallelOptions o;
  o.bucket_bytes = 4096;
  make_data_parallel(step.graph, o);
  Plan parallel(std::move(step.graph), parallel_store);
  const std::vector<float> images = testing::random_floats(4 * 16 * 16, 1);
  for (int s = 0; s < 3; ++s)
    for (Plan* p : {&plain, &parallel}) {
      p->write(p->find("data.real0"), images.data());
      p->run();
    }
  ASSERT_EQ(plain_store.size(), parallel_store.size());
  for (ParameterStore::Handle h = 0; h < plain_store.size(); ++h) {
    const Tensor a = plain_store.read(h), b = parallel_store.read(parallel_store.find(plain_store.entry(h).name));
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float))) << plain_store.entry(h).name;
  }
}

TEST(DataParallel, SynchronisedBatchNormOnOneRankIsBatchNorm) {
  std::unique_ptr<Backend> backend = make_cpu_backend();
  testing::BatchNormNet plain_net = testing::batch_norm_net(4), sync_net = testing::batch_norm_net(4);
  DataParallelOptions o;
  o.sync_batch_norm = true;
  make_data_parallel(sync_net.graph, o);
  int synchronised = 0;
  for (const Node& n : sync_net.graph.nodes()) {
    EXPECT_NE(n.op, OpKind::kBatchNorm2dTrain);
    EXPECT_NE(n.op, OpKind::kBatchNorm2dBackward);
    synchronised += n.op == OpKind::kSyncBatchNorm2dTrain || n.op == OpKind::kSyncBatchNorm2dBackward;
  }
  EXPECT_EQ(synchronised, 2);
  ParameterStore plain_store(*backend, 3), sync_store(*backend, 3);
  Plan plain(std::move(plain_net.graph), plain_store), sync(std::move(sync_net.graph), sync_store);
  const std::vector<float> x = testing::random_floats(4 * 3 * 36, 1), target = testing::random_floats(4 * 2 * 36, 2);
  for (Plan* p : {&plain, &sync}) {
    p->write(p->find("x"), x.data());
    p->write(p->find("target"), target.data());
    p->run();
  }
  auto values = [](const Plan& p, ValueId id) {
    const Tensor t = p.read(id);
    return std::vector<float>(t.data(), t.data() + t.numel());
  };
  EXPECT_TRUE(testing::close_rel_l2(values(sync, sync_net.y), values(plain, plain_net.y), 1e-6)) << "y";
  for (size_t k = 0; k < plain_net.grads.size(); ++k)
    EXPECT_TRUE(testing::close_rel_l2(values(sync, sync_net.grads[k]), values(plain, plain_net.grads[k]), 1e-6))
        << plain.graph().value(plain_net.grads[k]).name;
  for (const char* buffer : {"bn1.running_mean", "bn1.running_var"}) {
    const Tensor a = sync_store.read(sync_store.find(buffer)), b = plain_store.read(plain_store.find(buffer));
    EXPECT_TRUE(testing::close_rel_l2(std::vector<float>(a.data(), a.data() + a.numel()),
                                      std::vector<float>(b.data(), b.data() + b.numel()), 1e-6))
        << buffer;
  }
}

TEST(DataParallel, SynchronisedBatchNormRefusesAFusedOne) {
  testing::BatchNormNet net = testing::batch_norm_net(4);
  fuse_batch_norm_activations(net.graph);
  DataParallelOptions o;
  o.sync_batch_norm = true;
  EXPECT_THROW(make_data_parallel(net.graph, o), std::invalid_argument);
}

}  // namespace
}  // namespace gancu
