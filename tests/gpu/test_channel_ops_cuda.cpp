// The concat, channel-slice and one-hot CUDA kernels (kernels/cuda/elementwise.h). ChannelMaps runs their index maps
// and concat's launch plan (kernels/cuda/channel_maps.h) through a scalar loop on the host, no GPU needed; the Small*
// tests run the kernels against the reference with NaN-poisoned outputs, and a small conditional graph on the CUDA
// backend against the CPU backend. Without a GPU those skip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/cuda_backend.h"
#include "engine/engine.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/channel_maps.h"
#include "kernels/cuda/elementwise.h"
#include "tests/gpu/gpu_test.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::close_rel_l2;
using testing::poisoned_vector;
using testing::random_vector;

// The kernels copy values (or write 0 and 1): they must equal the reference exactly; 1e-5 is the stated bound of the
// fp32 kernels, and any misplaced or unwritten (NaN) element exceeds it.
constexpr double kTol = 1e-5;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct ConcatCase {
  int batch, inner;
  std::vector<int> channels;
  std::string name() const {  // built with += only: GCC 12 misreports const char* + std::string (-Wrestrict)
    std::string s = std::to_string(batch);
    s += " x (";
    for (size_t i = 0; i < channels.size(); ++i) {
      if (i) s += "+";
      s += std::to_string(channels[i]);
    }
    s += ") x ";
    s += std::to_string(inner);
    return s;
  }
  int total() const {
    int t = 0;
    for (int c : channels) t += c;
    return t;
  }
};

// Two inputs (image + label maps, z + one-hot); eleven inputs, one empty, so the plan needs two launches; odd sizes.
const ConcatCase kConcatCases[] = {{3, 25, {1, 10}},
                                   {5, 1, {7, 3}},
                                   {2, 3, {1, 2, 0, 3, 1, 1, 2, 1, 4, 1, 2}},
                                   {4, 7, {5, 1, 2}}};

std::vector<std::vector<float>> concat_inputs(const ConcatCase& c, uint64_t seed) {
  std::vector<std::vector<float>> xs;
  for (size_t i = 0; i < c.channels.size(); ++i)
    xs.push_back(random_vector<float>(int64_t(c.batch) * c.channels[i] * c.inner, seed + i));
  return xs;
}

std::vector<float> reference_concat(const ConcatCase& c, const std::vector<std::vector<float>>& xs) {
  std::vector<const float*> pointers;
  for (const auto& x : xs) pointers.push_back(x.data());
  std::vector<float> y = poisoned_vector<float>(int64_t(c.batch) * c.total() * c.inner);
  ref::concat_channels<float>(c.batch, c.inner, int(xs.size()), pointers.data(), c.channels.data(), y.data());
  return y;
}

// ---- the index maps on the host -------------------------------------------------------------------------------

// Every launch of the plan, every thread's element, as concat_kernel runs them, into a poisoned output.
TEST(ChannelMaps, ConcatLaunchesWriteEveryElementFromItsInput) {
  for (const ConcatCase& c : kConcatCases) {
    SCOPED_TRACE(c.name());
    const auto xs = concat_inputs(c, 10);
    std::vector<const float*> pointers;
    for (const auto& x : xs) pointers.push_back(x.data());
    const auto launches = cuda::detail::plan_concat(c.batch, c.inner, int(xs.size()), pointers.data(),
                                                    c.channels.data());
    int nonempty = 0;
    for (int ch : c.channels) nonempty += ch > 0;
    EXPECT_EQ(int(launches.size()), (nonempty + cuda::detail::kConcatInputsPerLaunch - 1) /
                                        cuda::detail::kConcatInputsPerLaunch);
    std::vector<float> y = poisoned_vector<float>(int64_t(c.batch) * c.total() * c.inner);
    std::vector<int> writes(y.size(), 0);
    for (const auto& launch : launches)
      for (int o = 0; o < launch.elements(); ++o) {
        const cuda::detail::ConcatElement e = cuda::detail::concat_element(launch, o);
        ASSERT_GE(e.dst, 0);
        ASSERT_LT(size_t(e.dst), y.size());
        ASSERT_LT(e.src, launch.rows * launch.width[e.input]);
        y[size_t(e.dst)] = cuda::detail::concat_source(launch, e.input)[e.src];
        ++writes[size_t(e.dst)];
      }
    for (int w : writes) ASSERT_EQ(w, 1) << "an element written other than once";
    EXPECT_TRUE(close_rel_l2(y, reference_concat(c, xs), 0.0, {c.batch, c.total(), c.inner}));
  }
}

TEST(ChannelMaps, ChannelSliceReadsItsChannels) {
  for (const ConcatCase& c : kConcatCases) {
    SCOPED_TRACE(c.name());
    const std::vector<float> x = random_vector<float>(int64_t(c.batch) * c.total() * c.inner, 5);
    int begin = 0;
    for (int channels : c.channels) {
      const auto map = cuda::detail::plan_channel_slice(c.batch, c.total(), begin, channels, c.inner);
      std::vector<float> got = poisoned_vector<float>(int64_t(c.batch) * channels * c.inner);
      std::vector<float> want = got;
      for (size_t o = 0; o < got.size(); ++o) got[o] = x[size_t(cuda::detail::channel_slice_source(map, int(o)))];
      ref::channel_slice<float>(c.batch, c.total(), begin, channels, c.inner, x.data(), want.data());
      EXPECT_TRUE(close_rel_l2(got, want, 0.0, {c.batch, channels, c.inner})) << "channels from " << begin;
      begin += channels;
    }
  }
  EXPECT_THROW(cuda::detail::plan_channel_slice(2, 4, 3, 2, 5), std::invalid_argument);
  EXPECT_THROW(cuda::detail::plan_channel_slice(1 << 16, 1 << 10, 0, 1, 1 << 6), std::invalid_argument);  // 2³²
}

// Valid labels as the reference; a label that is not a class index leaves its example's maps all zero.
TEST(ChannelMaps, OneHotMatchesTheReferenceAndZeroesBadLabels) {
  const int classes = 4, spatial = 6;
  const std::vector<float> labels = {3, 0, 2, 1, 1};
  const auto map = cuda::detail::plan_one_hot(int(labels.size()), classes, spatial);
  const int64_t n = int64_t(labels.size()) * classes * spatial;
  std::vector<float> got = poisoned_vector<float>(n), want = poisoned_vector<float>(n);
  for (int o = 0; o < n; ++o) got[size_t(o)] = cuda::detail::one_hot_value(map, labels.data(), o);
  ref::one_hot<float>(int(labels.size()), classes, spatial, labels.data(), want.data());
  EXPECT_TRUE(close_rel_l2(got, want, 0.0, {int64_t(labels.size()), classes, spatial}));

  for (float bad : {-1.0f, 4.0f, 2.5f, kNaN, -0.5f}) {
    const std::vector<float> with_bad = {1, bad, 0};
    const auto bad_map = cuda::detail::plan_one_hot(3, classes, spatial);
    for (int o = 0; o < 3 * classes * spatial; ++o) {
      const int example = o / (classes * spatial), channel = o / spatial % classes;
      const float expected = example == 1 ? 0.0f : float(channel == int(with_bad[size_t(example)]));
      ASSERT_EQ(cuda::detail::one_hot_value(bad_map, with_bad.data(), o), expected) << "label " << bad << ", o " << o;
    }
  }
}

// ---- the kernels on a GPU ------------------------------------------------------------------------------------------

TEST(ChannelOpsCuda, SmallConcatAndSliceMatchTheReference) {
  GANCU_REQUIRE_GPU();
  for (const ConcatCase& c : kConcatCases) {
    SCOPED_TRACE(c.name());
    const auto xs = concat_inputs(c, 70);
    std::vector<std::unique_ptr<DeviceArray<float>>> device_xs;
    std::vector<const float*> pointers;
    for (const auto& x : xs) {
      device_xs.push_back(std::make_unique<DeviceArray<float>>(x));
      pointers.push_back(device_xs.back()->get());
    }
    const std::vector<float> want = reference_concat(c, xs);
    DeviceArray<float> y(poisoned_vector<float>(int64_t(want.size())));
    cuda::concat_channels(c.batch, c.inner, int(xs.size()), pointers.data(), c.channels.data(), y.get(), nullptr);
    GANCU_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_TRUE(close_rel_l2(y.to_host(), want, kTol, {c.batch, c.total(), c.inner})) << "concat";

    int begin = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      DeviceArray<float> slice(poisoned_vector<float>(int64_t(xs[i].size())));
      cuda::channel_slice(c.batch, c.total(), begin, c.channels[i], c.inner, y.get(), slice.get(), nullptr);
      GANCU_CUDA_CHECK(cudaDeviceSynchronize());
      EXPECT_TRUE(close_rel_l2(slice.to_host(), xs[i], kTol, {c.batch, c.channels[i], c.inner})) << "slice " << i;
      begin += c.channels[i];
    }
  }
}

TEST(ChannelOpsCuda, SmallOneHotMatchesTheReference) {
  GANCU_REQUIRE_GPU();
  for (int spatial : {1, 28 * 28}) {
    const int classes = 10;
    std::vector<float> labels;
    for (int i = 0; i < 13; ++i) labels.push_back(float((i * 7) % classes));
    const int64_t n = int64_t(labels.size()) * classes * spatial;
    std::vector<float> want = poisoned_vector<float>(n);
    ref::one_hot<float>(int(labels.size()), classes, spatial, labels.data(), want.data());
    DeviceArray<float> d_labels(labels), y(poisoned_vector<float>(n));
    cuda::one_hot(int(labels.size()), classes, spatial, d_labels.get(), y.get(), nullptr);
    GANCU_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_TRUE(close_rel_l2(y.to_host(), want, kTol, {int64_t(labels.size()), classes, spatial}));
  }
  // A bad label: that example's maps are zero, the others as usual (the CPU reference would throw instead).
  const std::vector<float> labels = {1, kNaN, 12, 0};
  DeviceArray<float> d_labels(labels), y(poisoned_vector<float>(4 * 10));
  cuda::one_hot(4, 10, 1, d_labels.get(), y.get(), nullptr);
  GANCU_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> got = y.to_host();
  for (int i = 0; i < 40; ++i)
    EXPECT_EQ(got[size_t(i)], float((i == 1) || (i == 30))) << "element " << i;
}

// The dispatch rows: a conditional graph (label maps and one-hot vectors joined by concat, BatchNorm1d) on the CUDA
// backend in strict fp32 against the CPU backend, loss and gradients. Tolerance 1e-4 relative L2: the linear and conv
// layers sum in another order than OpenBLAS; the ops under test themselves copy exactly.
TEST(ChannelOpsCuda, SmallConditionalGraphMatchesTheCpuBackend) {
  GANCU_REQUIRE_GPU();
  auto build = [](std::vector<ValueId>* grads, ValueId* loss) {
    Graph g;
    Builder b(g);
    const ValueId x = b.input("x", Shape{4, 1, 4, 4}), labels = b.input("labels", Shape{4});
    ValueId h = b.conv2d(b.concat({x, b.one_hot(labels, 3, 4, 4)}), "conv", 4, 4, 2, 1, false, {Init::kNormal, 0, 0.3f});
    h = b.concat({b.flatten(b.one_hot(labels, 3, 1, 1)), b.flatten(h)});  // [4, 19]
    h = b.leaky_relu(b.batch_norm1d(b.linear(h, "fc", 8, false, Init::uniform(-0.3f, 0.3f)), "bn"), 0.2f);
    *loss = b.bce_with_logits(b.linear(h, "out", 1, true, {Init::kNormal, 0, 0.3f}), b.input("target", Shape{4, 1}));
    std::vector<ValueId> wrt;
    for (const Value& v : g.values())
      if (v.kind == ValueKind::kParameter) wrt.push_back(v.id);
    wrt.push_back(x);
    *grads = append_backward(g, {*loss}, wrt);
    for (ValueId id : *grads) g.value(g.storage_root(id)).keep = true;
    return g;
  };
  std::vector<ValueId> grads;
  ValueId loss;
  Graph graph = build(&grads, &loss);
  CudaBackendOptions options;
  options.math = cuda::MathMode::kFp32;
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(options);
  ParameterStore want_store(*cpu, 5), got_store(*gpu, 5);
  Plan want(graph, want_store), got(graph, got_store);
  const std::vector<float> x = random_vector<float>(64, 8), labels = {2, 0, 1, 2}, target = {1, 0, 0, 1};
  for (Plan* p : {&want, &got}) {
    p->write(p->find("x"), x.data());
    p->write(p->find("labels"), labels.data());
    p->write(p->find("target"), target.data());
    p->run();
  }
  EXPECT_NEAR(got.read(loss)[0], want.read(loss)[0], 1e-4 * std::abs(want.read(loss)[0]));
  for (ValueId id : grads) {
    const Tensor w = want.read(want.graph().storage_root(id)), g = got.read(got.graph().storage_root(id));
    EXPECT_TRUE(close_rel_l2(std::vector<float>(g.data(), g.data() + g.numel()),
                             std::vector<float>(w.data(), w.data() + w.numel()), 1e-4, w.shape().dims()))
        << want.graph().value(id).name;
  }
}

}  // namespace
}  // namespace gancu
