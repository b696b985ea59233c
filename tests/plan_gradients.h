// The engine's autodiff checked on a whole plan: analytic gradients against central finite differences of the loss.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "engine/plan.h"
#include "tests/testing.h"

namespace gancu::testing {

// For each value in `wrt` (parameters or inputs of `plan`), its gradient `grads[k]` after one run against
// (loss(w + h) − loss(w − h)) / 2h element by element, where `loss` runs the plan and returns the loss. Tolerance: relative
// L2 ≤ 2e-2, because the plan's forward runs in float32 (h = 1e-3 balances float rounding against curvature and
// the kinks of LeakyReLU); a gradient that is truly 0 is compared in absolute terms, against ~0.
inline void expect_plan_gradients_match_finite_differences(Plan& plan, const std::vector<ValueId>& wrt,
                                                           const std::vector<ValueId>& grads,
                                                           const std::function<double()>& loss) {
  loss();
  std::vector<Tensor> analytic;
  for (ValueId g : grads) {
    ASSERT_NE(g, kNoValue);
    analytic.push_back(plan.read(plan.graph().storage_root(g)));
  }
  const double h = 1e-3;
  for (size_t k = 0; k < wrt.size(); ++k) {
    Tensor value = plan.read(wrt[k]);
    std::vector<double> numeric(static_cast<size_t>(value.numel()));
    for (int64_t i = 0; i < value.numel(); ++i) {
      const float saved = value[i];
      value[i] = saved + float(h);
      plan.write(wrt[k], value.data());
      const double plus = loss();
      value[i] = saved - float(h);
      plan.write(wrt[k], value.data());
      const double minus = loss();
      value[i] = saved;
      plan.write(wrt[k], value.data());
      numeric[size_t(i)] = (plus - minus) / (2 * h);
    }
    EXPECT_LE(rel_l2_error(analytic[k].data(), numeric.data(), value.numel()), 2e-2) << plan.graph().value(wrt[k]).name;
  }
}

}  // namespace gancu::testing
