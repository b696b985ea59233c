// Data-parallel training across processes: run by ctest as `mpirun -np 2 gancu_mpi_tests` (one thread per rank).
// Each rank checks its own side and the ranks compare through MPI; gtest's result is per rank and mpirun fails if any
// rank fails.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "engine/comm.h"
#include "engine/engine.h"
#include "tests/data_parallel_net.h"
#include "tests/testing.h"
#include "tests/train_test.h"
#include "tools/gan/train.h"

namespace gancu {
namespace {

constexpr int kRankBatch = 4;

std::vector<float> values(const Plan& p, ValueId id) {
  const Tensor t = p.read(id);
  return std::vector<float>(t.data(), t.data() + t.numel());
}

std::vector<float> rows(const std::vector<float>& v, int64_t first, int64_t count, int64_t row_floats) {
  return std::vector<float>(v.begin() + first * row_floats, v.begin() + (first + count) * row_floats);
}

// Two ranks at batch b (each its half of a fixed global batch) against one process at 2b, for three steps of the
// same data: the forward output, the averaged gradients, the loss's mean over the ranks and the parameters.
// Returns the largest relative L2 error of the gradients, and asserts on the rest only with `sync`.
double compare_with_one_rank_at_twice_the_batch(bool sync) {
  Communicator& group = process_group();
  const int global = kRankBatch * group.size(), rank = group.rank();
  const std::vector<float> x = testing::random_floats(int64_t(global) * 3 * 36, 1);
  const std::vector<float> target = testing::random_floats(int64_t(global) * 2 * 36, 2);
  std::unique_ptr<Backend> backend = make_cpu_backend();

  testing::BatchNormNet one = testing::batch_norm_net(global);  // the one-process reference (no collectives)
  ParameterStore one_store(*backend, 3);
  Plan one_plan(std::move(one.graph), one_store);
  one_plan.write(one.x, x.data());
  one_plan.write(one.target, target.data());

  testing::BatchNormNet mine = testing::batch_norm_net(kRankBatch);
  DataParallelOptions o;
  o.sync_batch_norm = sync;
  o.bucket_bytes = 256;  // several buckets
  make_data_parallel(mine.graph, o);
  ParameterStore store(*backend, 3);
  Plan plan(std::move(mine.graph), store);
  plan.write(mine.x, rows(x, int64_t(rank) * kRankBatch, kRankBatch, 3 * 36).data());
  plan.write(mine.target, rows(target, int64_t(rank) * kRankBatch, kRankBatch, 2 * 36).data());

  double worst_gradient = 0;
  for (int step = 0; step < 3; ++step) {
    one_plan.run();
    plan.run();
    double loss = values(plan, mine.loss)[0];
    group.all_reduce_sum(&loss, 1);
    for (size_t k = 0; k < one.grads.size(); ++k)
      worst_gradient = std::max(worst_gradient, testing::rel_l2_error(values(plan, mine.grads[k]), values(one_plan, one.grads[k])));
    if (!sync) continue;
    EXPECT_TRUE(testing::close_rel_l2(values(plan, mine.y), rows(values(one_plan, one.y), int64_t(rank) * kRankBatch, kRankBatch, 2 * 36), 1e-5))
        << "y of rank " << rank << ", step " << step;
    EXPECT_NEAR(loss / group.size(), values(one_plan, one.loss)[0], 1e-6 * std::abs(values(one_plan, one.loss)[0]))
        << "step " << step;
    for (size_t k = 0; k < one.grads.size(); ++k)
      EXPECT_TRUE(testing::close_rel_l2(values(plan, mine.grads[k]), values(one_plan, one.grads[k]), 1e-5))
          << one_plan.graph().value(one.grads[k]).name << ", step " << step;
  }
  if (sync)
    for (ParameterStore::Handle h = 0; h < one_store.size(); ++h) {
      const Tensor want = one_store.read(h), got = store.read(store.find(one_store.entry(h).name));
      EXPECT_TRUE(testing::close_rel_l2(std::vector<float>(got.data(), got.data() + got.numel()),
                                        std::vector<float>(want.data(), want.data() + want.numel()), 1e-5))
          << one_store.entry(h).name;
    }
  return worst_gradient;
}

TEST(DataParallelMpi, SynchronisedBatchNormOnTwoRanksIsOneRankAtTwiceTheBatch) {
  if (process_group().size() != 2) GTEST_SKIP() << "needs mpirun -np 2";
  EXPECT_LT(compare_with_one_rank_at_twice_the_batch(true), 1e-5);
}

TEST(DataParallelMpi, PerRankBatchNormIsNot) {
  // The control: with each rank's own batch statistics the same comparison fails by far more than the tolerance.
  if (process_group().size() != 2) GTEST_SKIP() << "needs mpirun -np 2";
  EXPECT_GT(compare_with_one_rank_at_twice_the_batch(false), 1e-3);
}

// The trainer itself (sharding, per-rank noise, the pass): after every step, every rank holds the same weights and
// optimiser state, although each trained on other images and noise (their own losses differ).
TEST(DataParallelMpi, TrainerRanksStayIdenticalAfterEveryStep) {
  Communicator& group = process_group();
  if (group.size() != 2) GTEST_SKIP() << "needs mpirun -np 2";
  if (!std::filesystem::exists(testing::kFashionTestImages)) GTEST_SKIP() << "no Fashion-MNIST";
  app::TrainOptions o = testing::tiny_train_options();
  recipes::DcganRecipe recipe = testing::tiny_dcgan();
  ImageSet data = load_dataset(o.data, 1, recipe.data_request().image_size, DatasetOptions{});
  app::Trainer trainer(o, recipe, data);
  trainer.broadcast_store_from_rank0();
  ASSERT_EQ(trainer.check_ranks_identical(), "");
  bool losses_differ = false;
  for (int step = 0; step < 4; ++step) {
    trainer.run_step();
    std::vector<double> local(2, 0.0);  // each rank's own loss_d_real, in its slot
    const Tensor loss = trainer.plan().read(trainer.metrics().at(1).values.at(0));
    local[size_t(group.rank())] = loss[0];
    group.all_reduce_sum(local.data(), 2);
    losses_differ = losses_differ || local[0] != local[1];
    ASSERT_EQ(trainer.check_ranks_identical(), "") << "after step " << step + 1;
  }
  EXPECT_TRUE(losses_differ) << "both ranks trained on the same data and noise";
}

}  // namespace
}  // namespace gancu
