// The parameter store (engine/parameter_store.h): one run's weights, buffers, optimiser state and counters, shared
// by every plan bound to it. A training plan and an inference plan over one store read and write the same memory;
// optimiser counters are found by name; an inference plan leaves the run's step where it was.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/engine.h"
#include "tests/testing.h"

namespace gancu {
namespace {

bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}

TEST(ParameterStore, BindsByNameOnceAndRefusesAnotherKindOrShape) {
  auto backend = make_cpu_backend();
  ParameterStore store(*backend, 3);
  const auto w = store.bind("net.w", Shape{2, 3}, ValueKind::kParameter, {Init::kNormal, 0.0f, 1.0f});
  EXPECT_EQ(store.bind("net.w", Shape{2, 3}, ValueKind::kParameter, {}), w);  // the init of a later request is moot
  EXPECT_EQ(store.find("net.w"), w);
  EXPECT_EQ(store.find("net.v"), ParameterStore::kNoHandle);
  EXPECT_THROW(store.bind("net.w", Shape{3, 2}, ValueKind::kParameter, {}), std::invalid_argument);
  EXPECT_THROW(store.bind("net.w", Shape{2, 3}, ValueKind::kBuffer, {}), std::invalid_argument);
  EXPECT_THROW(store.bind("x", Shape{2}, ValueKind::kInput, {}), std::invalid_argument);
  // Initialised from its own stream: the same name and seed give the same values in another store, whatever else
  // the store holds.
  ParameterStore other(*backend, 3);
  other.bind("net.first", Shape{5}, ValueKind::kParameter, {Init::kNormal, 0.0f, 1.0f});
  const auto w2 = other.bind("net.w", Shape{2, 3}, ValueKind::kParameter, {Init::kNormal, 0.0f, 1.0f});
  EXPECT_TRUE(bit_identical(store.read(w), other.read(w2)));
  const Tensor values = store.read(w);
  double sum_sq = 0;
  for (int64_t i = 0; i < values.numel(); ++i) sum_sq += double(values[i]) * values[i];
  EXPECT_GT(sum_sq, 0.0);
  const auto ones = store.bind("bn.running_var", Shape{4}, ValueKind::kBuffer, {Init::kOnes, 0, 0});
  EXPECT_EQ(store.read(ones)[3], 1.0f);
  EXPECT_EQ(store.of_kind(ValueKind::kBuffer), std::vector<ParameterStore::Handle>{ones});
}

// A one-layer model: training plan (linear → MSE → Adam "opt") and inference plan (linear alone) over one store.
struct TwoPlans {
  std::unique_ptr<Backend> backend = make_cpu_backend();
  ParameterStore store{*backend, 11};
  std::unique_ptr<Plan> train, infer;
  ValueId train_x = kNoValue, target = kNoValue, infer_x = kNoValue, infer_y = kNoValue;

  TwoPlans() {
    const Init init{Init::kNormal, 0.0f, 0.5f};
    Graph g;
    Builder b(g);
    train_x = b.input("x", Shape{4, 3});
    target = b.input("target", Shape{4, 2});
    const ValueId loss = b.mse(b.linear(train_x, "fc", 2, true, init), target);
    const std::vector<ValueId> params{g.find("fc.weight"), g.find("fc.bias")};
    b.adam_step("opt", params, append_backward(g, {loss}, params), AdamParams{});
    train = std::make_unique<Plan>(std::move(g), store);

    Graph h;
    Builder c(h);
    c.set_training(false);
    infer_x = c.input("x", Shape{1, 3});
    infer_y = c.linear(infer_x, "fc", 2, true, init);
    c.keep(infer_y);
    infer = std::make_unique<Plan>(std::move(h), store, StepAdvance::kKeep);
  }
  void train_step(uint64_t seed) {
    const auto x = testing::random_vector<float>(12, seed), t = testing::random_vector<float>(8, seed + 1);
    train->write(train_x, x.data());
    train->write(target, t.data());
    train->run();
  }
};

TEST(ParameterStore, AnInferencePlanSeesTheTrainingPlansWeightsWithoutACopy) {
  TwoPlans p;
  EXPECT_EQ(p.train->device_pointer(p.train->find("fc.weight")), p.infer->device_pointer(p.infer->find("fc.weight")));
  const std::vector<float> x{0.5f, -1.0f, 2.0f};
  auto infer = [&] {
    p.infer->write(p.infer_x, x.data());
    p.infer->run();
    return p.infer->read(p.infer_y);
  };
  const Tensor before = infer();
  p.train_step(1);
  const Tensor after = infer();
  EXPECT_FALSE(bit_identical(before, after)) << "inference did not see the update";
  // By hand from the updated weights in the store.
  const Tensor w = p.store.read(p.store.find("fc.weight")), bias = p.store.read(p.store.find("fc.bias"));
  for (int o = 0; o < 2; ++o) {
    double want = bias[o];
    for (int i = 0; i < 3; ++i) want += double(w[o * 3 + i]) * x[size_t(i)];
    EXPECT_NEAR(after[o], want, 1e-5 * (1 + std::abs(want)));
  }
  // Optimiser state lives in the store too, created once.
  EXPECT_NE(p.store.find("optim.opt.fc.weight.exp_avg"), ParameterStore::kNoHandle);
  EXPECT_EQ(p.store.of_kind(ValueKind::kOptState).size(), 4u);
}

TEST(ParameterStore, CountersAreNamedAndOnlyTrainingPlansAdvanceTheStep) {
  TwoPlans p;
  EXPECT_EQ(p.store.counter_names(), std::vector<std::string>{"opt"});
  p.train_step(1);
  p.train_step(2);
  EXPECT_EQ(p.store.state().step, 2);
  EXPECT_EQ(p.store.state().counters[size_t(p.store.counter("opt"))], 2);
  p.infer->run();
  EXPECT_EQ(p.store.state().step, 2);  // sampling leaves the run where it was
  EXPECT_EQ(p.train->step(), 2);
  // A second training plan updating the same optimiser continues its counter.
  Graph g;
  Builder b(g);
  const ValueId grad = b.input("grad", Shape{2});
  const ValueId bias = b.parameter("fc.bias", Shape{2}, {});
  b.adam_step("opt", {bias}, {grad}, AdamParams{});
  Plan more(std::move(g), p.store);
  const std::vector<float> ones{1.0f, 1.0f};
  more.write(more.find("grad"), ones.data());
  more.run();
  EXPECT_EQ(p.store.state().counters[size_t(p.store.counter("opt"))], 3);
  EXPECT_EQ(p.store.state().step, 3);
}

}  // namespace
}  // namespace gancu

namespace gancu {
namespace {

// A plan that would need more memory than its backend has is refused with the numbers before anything is allocated
// (here 4 TiB of activations), instead of being left to the OOM killer.
TEST(PlanMemory, AnImpossiblePlanIsRefusedWithItsNumbers) {
  auto backend = make_cpu_backend();
  ASSERT_GT(backend->available_bytes(), 0) << "this machine's available memory cannot be read";
  Graph g;
  Builder b(g);
  const ValueId x = b.input("x", Shape{1 << 20, 1 << 20});
  b.keep(b.tanh(x));
  ParameterStore store(*backend, 1);
  try {
    Plan plan(std::move(g), store);
    FAIL() << "a 4 TiB plan was built";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("the plan needs 8.0 TiB"), std::string::npos) << msg;  // the input and the kept output
    EXPECT_NE(msg.find("available"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_EQ(store.size(), 0);
}

}  // namespace
}  // namespace gancu
