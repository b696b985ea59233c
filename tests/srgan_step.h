// A small SRResNet pixel-MSE training step (forward, backward, Adam), shared by the host tests (tests/test_srgan.cpp)
// and the GPU tests (tests/gpu/test_srgan_cuda.cpp), and the randomised state they start from.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "models/srgan.h"
#include "tests/testing.h"

namespace gancu::testing {

struct SrresnetStep {
  Graph graph;
  ValueId lr = kNoValue, hr = kNoValue, output = kNoValue, loss = kNoValue;
  std::vector<ValueId> params, grads;  // grads[k] of params[k] (kept, so a plan without Adam can read them)
};

// G(lr) against hr with a pixel MSE; `adam` adds the paper's optimiser (Adam, lr 1e-4, β1 0.9) on every parameter.
inline SrresnetStep srresnet_step(const models::SrresnetConfig& config, int batch, int lr_size, bool adam) {
  SrresnetStep s;
  Builder b(s.graph);
  s.lr = b.input("lr", Shape{batch, config.image_channels, lr_size, lr_size});
  s.output = models::srresnet(b, s.lr, config);
  b.keep(s.output);
  s.hr = b.input("hr", s.graph.shape(s.output));
  s.loss = b.mse(s.output, s.hr);
  b.keep(s.loss);
  for (const Value& v : s.graph.values())
    if (v.kind == ValueKind::kParameter) s.params.push_back(v.id);
  s.grads = append_backward(s.graph, {s.loss}, s.params);
  for (ValueId g : s.grads) s.graph.value(s.graph.storage_root(g)).keep = true;
  if (adam) {
    AdamParams p;
    p.lr = 1e-4;
    p.beta1 = 0.9;
    b.adam_step("G", s.params, s.grads, p);
  }
  return s;
}

// Persistent values away from their initial values, as a trained network's are, so that every term matters: batch
// norm gamma 1 + 0.2·N (a few negative ones too), beta and biases 0.3·N (beta away from 0 moves the activation's
// kink), running statistics far from (0, 1), PReLU slopes 0.25 + 0.1·N. Weights keep their initialisation.
inline void randomize_persistent_values(Plan& plan, uint64_t seed) {
  const Graph& g = plan.graph();
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (ValueKind kind : {ValueKind::kParameter, ValueKind::kBuffer})
    for (ValueId id : plan.values_of_kind(kind)) {
      const Value& v = g.value(id);
      if (v.shape.rank() != 1) continue;
      std::vector<float> x = random_vector<float>(v.numel(), seed++);
      const std::string stem = v.name.substr(0, v.name.rfind('.'));
      for (float& e : x) {
        if (ends_with(v.name, ".running_var")) e = 1.0f + 0.5f * std::abs(e);
        else if (ends_with(v.name, ".running_mean") || ends_with(v.name, ".bias")) e *= 0.3f;
        else if (g.find(stem + ".running_mean") != kNoValue) e = 1.0f + 0.4f * e;  // batch-norm gamma
        else e = 0.25f + 0.1f * e;                                                   // PReLU slope
      }
      plan.write(id, x.data());
    }
}

}  // namespace gancu::testing
