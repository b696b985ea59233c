// Graph rewrites that trade intermediate tensors for fused kernels. A backend asks for them
// (Backend::fuses_batch_norm_activation) and the Plan applies them before planning memory.
#pragma once
#include "engine/graph.h"

namespace gancu {

// Folds each ReLU / LeakyReLU / PReLU applied to a batch norm's output into the batch-norm node, forward and backward:
//   y = batch_norm(x); z = act(y)            →  z = batch_norm_act(x)
//   gy = act_backward(y, gz); gx.. = bn_backward(gy, x, ..)  →  gx.. = bn_act_backward(gz, x, gamma, mean, invstd, beta)
// PReLU's slope joins both fused nodes as their last input (forward input 5, backward input 6), and the fused backward
// gains the slope's gradient as its fourth output (what prelu_backward wrote: Σ over z ≤ 0 of z·gz per channel).
// The fused backward recomputes the pre-activation from x, the saved statistics and beta (appended as its sixth input)
// to get the activation's mask, so y and gy are never stored: the activation's three passes over memory and the
// tensor between them disappear. A pair is fused only when y has no other reader and is not kept for the host.
// Returns the number of pairs fused. Values y and gy stay in the graph, unused (the memory planner gives them nothing).
// Runs on a graph with its backward already derived (autodiff refuses fused nodes); a pair whose beta an optimiser
// step updates between the forward and the backward is left alone (the backward's mask would see the new beta; the
// same for a PReLU slope).
int fuse_batch_norm_activations(Graph& graph);

}  // namespace gancu
