// Reverse-mode automatic differentiation on the static graph.
#pragma once
#include <string>
#include <vector>

#include "engine/graph.h"

namespace gancu {

// Appends to `graph` the backward nodes that compute d(Σ losses)/d(v) for every v in `wrt`, and returns those
// gradient values (kNoValue where a v does not influence the losses). Each loss must be a scalar loss node's output
// and is seeded with gradient 1. Only what is needed is derived: a node gets backward nodes only if it lies on a path
// from some v in `wrt` to some loss, and an input gets a gradient only if it depends on `wrt`. So the generator's
// update differentiates through D to its input without computing D's weight gradients, and the first layer of D
// computes no gradient for the real images.
std::vector<ValueId> append_backward(Graph& graph, const std::vector<ValueId>& losses, const std::vector<ValueId>& wrt);

}  // namespace gancu
