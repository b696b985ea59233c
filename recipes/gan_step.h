// The GAN training step as one graph: k discriminator updates, then one generator update, as PyTorch's DCGAN
// example does it. Each D update runs D on a real batch and on a fake batch (two forward passes, each with its own
// batch-norm statistics), sums the two BCE losses, and takes an Adam step on D: the k steps are k updates of one
// optimiser, in order (each D update's forward reads the weights the previous one wrote; they continue one set of
// moments, and D's counter advances k times a step, as k optimizer.step() calls do). The G update runs the updated D on
// the last fake batch and minimises −log D(G(z)) (non-saturating) or log(1 − D(G(z))) (saturating), differentiating
// through D to its input without computing D's weight gradients, and takes an Adam step on G.
// A conditional GAN (classes > 0) gives both networks class labels too: each D update takes the real batch's labels
// and draws labels for its fake batch; G and D decide how to use them (models/conditional_dcgan.h).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/builder.h"
#include "engine/graph.h"

namespace gancu::recipes {

// Declares a network with the builder: returns its output for `input` (and class `labels` [B], kNoValue unless the
// GAN is conditional). Called several times per graph (the parameters are shared by name) and with the builder's
// training flag set.
using NetworkFn = std::function<ValueId(Builder& builder, ValueId input, ValueId labels)>;

struct GanStepConfig {
  int batch_size = 128;
  Shape latent{100, 1, 1};        // z's shape without the batch: [nz, 1, 1] (convolutional G) or [nz] (MLP)
  Shape image{1, 64, 64};         // [C, H, W]
  int classes = 0;                // > 0: conditional on a class label in [0, classes)
  int d_steps = 1;                // discriminator updates per generator update
  float real_label = 1.0f;        // 0.9: one-sided label smoothing
  double label_noise = 0.0;       // probability of flipping each D label
  bool saturating_generator_loss = false;
  AdamParams adam_g, adam_d;
};

struct GanStep {
  Graph graph;
  std::vector<ValueId> real_batches;  // d_steps inputs [batch, C, H, W], written by the host before each step
  std::vector<ValueId> real_labels, fake_labels;  // conditional: d_steps inputs [batch] each (else empty)
  ValueId loss_d_real = kNoValue, loss_d_fake = kNoValue, loss_g = kNoValue;  // of the last D update / the G update
  ValueId d_real_logits = kNoValue;    // D(x) logits of the last D update
  ValueId d_fake_logits = kNoValue;    // D(G(z)) logits before the D update
  ValueId g_fake_logits = kNoValue;    // D(G(z)) logits after it (the G update's pass)
  std::vector<ValueId> g_params, d_params;
};

// The optimisers' names ("G", "D"): their counters in the run's store are found by these.
inline constexpr const char* kOptimiserG = "G";
inline constexpr const char* kOptimiserD = "D";

GanStep build_gan_step(const GanStepConfig& config, const NetworkFn& generator, const NetworkFn& discriminator);

// The trainable parameters (ValueKind::kParameter) whose names start with `prefix` ("G."), in declaration order: what a
// network's Adam update takes.
std::vector<ValueId> parameters_with_prefix(const Graph& graph, const std::string& prefix);

// Generator alone in inference mode (batch norm with running statistics): z [n, latent...] (and labels [n] when
// classes > 0) → images.
struct GeneratorGraph {
  Graph graph;
  ValueId z = kNoValue, labels = kNoValue, images = kNoValue;
};
GeneratorGraph build_generator(int n, const Shape& latent, int classes, const NetworkFn& generator);

}  // namespace gancu::recipes
