// Max pooling: the reference kernels against PyTorch's values (ties included), float against double on random
// inputs, the backward against finite differences, and the op through the builder, autodiff and a plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/engine.h"
#include "kernels/cpu/pooling.h"
#include "tests/plan_gradients.h"
#include "tests/testing.h"

namespace gancu {
namespace {

using testing::close_rel_l2;
using testing::error_of;
using testing::poisoned_vector;
using testing::random_vector;

MaxPool2dParams pool(int batch, int channels, int h, int w, int kernel, int stride, int pad) {
  MaxPool2dParams p;
  p.batch = batch;
  p.channels = channels;
  p.in_h = h;
  p.in_w = w;
  p.kernel = kernel;
  p.stride = stride;
  p.pad = pad;
  return p;
}

// A 4×5 plane full of ties. Expected values from Debian's python3-torch 1.13 (CPU):
//   x = torch.tensor(X).reshape(1, 1, 4, 5).requires_grad_(); y = F.max_pool2d(x, k, s, p)
//   dx = torch.autograd.grad(y, x, torch.arange(1., y.numel() + 1).reshape(y.shape))
// The gradients show which element each window picked: the first maximum in row-major order.
const std::vector<float> kTies = {3, 1, 3, 2, 0,  //
                                  1, 3, 0, 2, 2,  //
                                  4, 4, 1, 5, 5,  //
                                  0, 4, 2, 5, 1};

struct TorchCase {
  int kernel, stride, pad;
  std::vector<float> y, dx;
};

TEST(MaxPoolRef, MatchesPyTorchWithTies) {
  const TorchCase cases[] = {
      {2, 2, 0, {3, 3, 4, 5}, {1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 4, 0, 0, 0, 0, 0, 0}},
      {3, 2, 1, {3, 3, 2, 4, 5, 5}, {1, 0, 2, 3, 0, 0, 0, 0, 0, 0, 4, 0, 0, 11, 0, 0, 0, 0, 0, 0}},
      {3, 1, 1,
       {3, 3, 3, 3, 2, 4, 4, 5, 5, 5, 4, 4, 5, 5, 5, 4, 4, 5, 5, 5},
       {3, 0, 7, 5, 0, 0, 0, 0, 0, 0, 69, 0, 0, 126, 0, 0, 0, 0, 0, 0}},
  };
  for (const TorchCase& c : cases) {
    SCOPED_TRACE("kernel " + std::to_string(c.kernel) + " stride " + std::to_string(c.stride) + " pad " +
                 std::to_string(c.pad));
    const MaxPool2dParams p = pool(1, 1, 4, 5, c.kernel, c.stride, c.pad);
    ASSERT_EQ(p.y_size(), int64_t(c.y.size()));
    std::vector<float> y = poisoned_vector<float>(p.y_size()), dx = poisoned_vector<float>(p.x_size());
    std::vector<float> dy(c.y.size());
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = float(i + 1);
    ref::max_pool2d_forward(p, kTies.data(), y.data());
    ref::max_pool2d_backward(p, kTies.data(), dy.data(), dx.data());
    EXPECT_EQ(y, c.y);
    EXPECT_EQ(dx, c.dx);
  }
}

// Padding is −∞: a window of negative values at the border picks a value, never the padding's 0.
TEST(MaxPoolRef, PaddingIsNeverPicked) {
  const std::vector<float> x = {-3, -1, -2, -4};
  const MaxPool2dParams p = pool(1, 1, 2, 2, 2, 1, 1);  // 2×2 windows over a 2×2 plane padded by 1: 3×3 outputs
  std::vector<float> y = poisoned_vector<float>(p.y_size());
  ref::max_pool2d_forward(p, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{-3, -1, -1, -2, -1, -1, -2, -2, -4}));
}

// A NaN in a window wins it, forward and backward (torch.nn.MaxPool2d propagates NaN).
TEST(MaxPoolRef, NanPropagates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {1, nan, 5, 2};
  const MaxPool2dParams p = pool(1, 1, 2, 2, 2, 2, 0);
  std::vector<float> y(1), dx(4);
  const float dy = 3;
  ref::max_pool2d_forward(p, x.data(), y.data());
  ref::max_pool2d_backward(p, x.data(), &dy, dx.data());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(dx, (std::vector<float>{0, 3, 0, 0}));
}

TEST(MaxPoolRef, RejectsBadWindows) {
  std::vector<float> buffer(64);
  EXPECT_THROW(ref::max_pool2d_forward(pool(1, 1, 4, 4, 2, 2, 2), buffer.data(), buffer.data()), std::invalid_argument);
  EXPECT_THROW(ref::max_pool2d_forward(pool(1, 1, 2, 2, 3, 1, 0), buffer.data(), buffer.data()), std::invalid_argument);
  EXPECT_THROW(ref::max_pool2d_forward(pool(1, 1, 4, 4, 2, 0, 0), buffer.data(), buffer.data()), std::invalid_argument);
}

// The float kernels against the double ones on fresh random inputs, several geometries (odd sizes, overlapping
// windows, padding, the VGG 2×2/2 pool). Outputs are NaN-poisoned first.
TEST(MaxPoolRef, FloatMatchesDoubleOnRandomInputs) {
  const MaxPool2dParams cases[] = {pool(2, 3, 8, 8, 2, 2, 0), pool(2, 3, 7, 9, 3, 2, 1), pool(1, 4, 6, 5, 3, 1, 1),
                                   pool(3, 2, 5, 5, 2, 1, 0), pool(1, 2, 11, 6, 4, 3, 2)};
  uint64_t seed = 100;
  for (const MaxPool2dParams& p : cases) {
    SCOPED_TRACE(std::to_string(p.in_h) + "x" + std::to_string(p.in_w) + " k" + std::to_string(p.kernel) + " s" +
                 std::to_string(p.stride) + " p" + std::to_string(p.pad));
    const auto x = random_vector<float>(p.x_size(), seed++), dy = random_vector<float>(p.y_size(), seed++);
    const std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end());
    std::vector<float> y = poisoned_vector<float>(p.y_size()), dx = poisoned_vector<float>(p.x_size());
    std::vector<double> yd(size_t(p.y_size())), dxd(size_t(p.x_size()));
    ref::max_pool2d_forward(p, x.data(), y.data());
    ref::max_pool2d_forward(p, xd.data(), yd.data());
    ref::max_pool2d_backward(p, x.data(), dy.data(), dx.data());
    ref::max_pool2d_backward(p, xd.data(), dyd.data(), dxd.data());
    const std::vector<int64_t> y_shape = {p.batch, p.channels, p.out_h(), p.out_w()};
    EXPECT_TRUE(close_rel_l2(y, yd, 1e-6, y_shape)) << "forward";
    EXPECT_TRUE(close_rel_l2(dx, dxd, 1e-6, {p.batch, p.channels, p.in_h, p.in_w})) << "backward";
  }
}

// f(x) = ⟨w, max_pool(x)⟩ in double on inputs without ties (continuous random values; finite differences of h = 1e-6
// never cross a tie at these gaps), overlapping windows so that gradients add up.
TEST(MaxPoolRef, BackwardMatchesFiniteDifferences) {
  for (const MaxPool2dParams& p : {pool(2, 2, 6, 7, 3, 2, 1), pool(1, 3, 5, 5, 2, 1, 0)}) {
    std::vector<double> x = random_vector<double>(p.x_size(), 7);
    const std::vector<double> w = random_vector<double>(p.y_size(), 8);
    std::vector<double> y(size_t(p.y_size())), dx(size_t(p.x_size()));
    const auto f = [&] {
      ref::max_pool2d_forward(p, x.data(), y.data());
      return testing::dot(w, y);
    };
    const std::vector<double> numeric = testing::numerical_gradient(x, f);
    ref::max_pool2d_backward(p, x.data(), w.data(), dx.data());
    EXPECT_TRUE(close_rel_l2(dx, numeric, 1e-6, {p.batch, p.channels, p.in_h, p.in_w}));
  }
}

TEST(MaxPoolEngine, ShapesAndErrors) {
  Graph g;
  Builder b(g);
  const ValueId x = b.input("x", Shape{2, 3, 9, 8});
  EXPECT_EQ(g.shape(b.max_pool2d(x, 2, 2)), (Shape{2, 3, 4, 4}));
  EXPECT_EQ(g.shape(b.max_pool2d(x, 3, 2, 1)), (Shape{2, 3, 5, 4}));
  EXPECT_EQ(g.shape(b.max_pool2d(x, 3, 1, 1)), (Shape{2, 3, 9, 8}));
  EXPECT_NE(error_of([&] { b.max_pool2d(x, 2, 2, 2); }).find("padding"), std::string::npos);
  EXPECT_NE(error_of([&] { b.max_pool2d(x, 10, 1); }).find("[2, 3, 9, 8]"), std::string::npos);
  EXPECT_NE(error_of([&] { b.max_pool2d(b.input("flat", Shape{2, 3}), 2, 2); }).find("rank-4"), std::string::npos);
}

// conv → max_pool (overlapping, padded) → conv → loss on the reference backend: autodiff's max_pool2d_backward node
// against finite differences of the plan, for the input and both convolutions' weights.
TEST(MaxPoolEngine, GradientsMatchFiniteDifferences) {
  Graph g;
  Builder b(g);
  const Init w{Init::kNormal, 0.0f, 0.3f};
  const ValueId x = b.input("x", Shape{2, 2, 7, 7}), target = b.input("target", Shape{2, 3, 4, 4});
  ValueId h = b.conv2d(x, "conv", 3, 3, 1, 1, true, w);
  h = b.max_pool2d(h, 3, 2, 1);  // [2, 3, 4, 4]
  h = b.conv2d(h, "mix", 3, 1, 1, 0, false, w);
  const ValueId loss = b.mse(h, target);
  std::vector<ValueId> wrt = {x, g.find("conv.weight"), g.find("mix.weight")};
  const std::vector<ValueId> grads = append_backward(g, {loss}, wrt);
  int backward_nodes = 0;
  for (const Node& n : g.nodes()) backward_nodes += n.op == OpKind::kMaxPool2dBackward;
  EXPECT_EQ(backward_nodes, 1);
  for (ValueId grad : grads) g.value(g.storage_root(grad)).keep = true;
  auto backend = make_reference_backend();
  ParameterStore store(*backend, 3);
  Plan plan(std::move(g), store);
  const auto xs = random_vector<float>(2 * 2 * 7 * 7, 21), ts = random_vector<float>(2 * 3 * 4 * 4, 22);
  plan.write(x, xs.data());
  plan.write(target, ts.data());
  testing::expect_plan_gradients_match_finite_differences(plan, wrt, grads, [&] {
    plan.run();
    return double(plan.read(loss)[0]);
  });
}

}  // namespace
}  // namespace gancu
