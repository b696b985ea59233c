// A small convolutional net with a batch norm, trained by one Adam step per run: what the data-parallel tests
// (tests/test_data_parallel.cpp on one process, tests/mpi/ under mpirun) average and synchronise.
#pragma once
#include <vector>

#include "core/rng.h"
#include "engine/autodiff.h"
#include "engine/builder.h"
#include "engine/data_parallel.h"
#include "models/dcgan.h"
#include "recipes/gan_step.h"

namespace gancu::testing {

struct BatchNormNet {
  Graph graph;
  ValueId x = kNoValue, target = kNoValue, y = kNoValue, loss = kNoValue;
  std::vector<ValueId> params, grads;  // grads kept: after a step they hold what Adam read (averaged, under the pass)
};

// x [batch, 3, 6, 6] → conv 3x3 (no bias) → batch norm → leaky relu → conv 3x3 → y [batch, 2, 6, 6]; mse(y, target).
inline BatchNormNet batch_norm_net(int batch) {
  BatchNormNet net;
  Builder b(net.graph);
  b.set_training(true);
  net.graph.optimiser("net");
  net.x = b.input("x", Shape{batch, 3, 6, 6});
  net.target = b.input("target", Shape{batch, 2, 6, 6});
  Init conv_init;
  conv_init.kind = Init::kNormal;
  conv_init.stddev = 0.3f;
  ValueId h = b.conv2d(net.x, "conv1", 4, 3, 1, 1, false, conv_init);
  h = b.leaky_relu(b.batch_norm2d(h, "bn1"), 0.2f);
  net.y = b.conv2d(h, "conv2", 2, 3, 1, 1, true, conv_init);
  b.keep(net.y);
  net.loss = b.mse(net.y, net.target);
  b.keep(net.loss);
  for (const Value& v : net.graph.values())
    if (v.kind == ValueKind::kParameter) net.params.push_back(v.id);
  net.grads = append_backward(net.graph, {net.loss}, net.params);
  for (ValueId g : net.grads) b.keep(g);
  b.adam_step("net", net.params, net.grads, AdamParams{});
  return net;
}

// Fixed random inputs of a global batch: x [batch, 3, 6, 6] and target [batch, 2, 6, 6], never zeros.
inline std::vector<float> random_floats(int64_t n, uint64_t stream) {
  std::vector<float> v(static_cast<size_t>(n));
  Rng rng(7, stream);
  for (float& f : v) f = 2.0f * rng.uniform() - 1.0f;
  return v;
}

// DCGAN-16 at width 4, batch 4: the whole GAN step, two optimisers.
inline recipes::GanStep tiny_gan_step() {
  models::DcganConfig m;
  m.image_size = 16;
  m.channels = 1;
  m.latent_size = 4;
  m.generator_width = m.discriminator_width = 4;
  recipes::GanStepConfig c;
  c.batch_size = 4;
  c.latent = Shape{4, 1, 1};
  c.image = Shape{1, 16, 16};
  return recipes::build_gan_step(c, [m](Builder& b, ValueId z, ValueId) { return models::dcgan_generator(b, z, m); },
                                 [m](Builder& b, ValueId x, ValueId) { return models::dcgan_discriminator(b, x, m); });
}

}  // namespace gancu::testing
