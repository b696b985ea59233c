// The CPU backends' dispatch tables: one row per op kind. The reference backend runs every op through the
// double-accumulating reference kernels; the CPU backend replaces convolutions and linear layers with im2col +
// OpenBLAS SGEMM and keeps the reference kernels for everything else (they are memory-bound and cheap).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "core/memory.h"
#include "core/philox.h"
#include "engine/backend.h"
#include "engine/data_parallel.h"
#include "engine/kernel_params.h"
#include "engine/op_profile.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/adam.h"
#include "kernels/cpu/batch_norm2d.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv_transpose2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/losses.h"
#include "kernels/cpu/pooling.h"

namespace gancu {
namespace {

using C = KernelCall;
using S = StepState;
using B = BackendContext;  // the host kernels need no context

int i32(int64_t v) { return to_int(v); }

// ---- convolutions: the reference (ref::) and the fast (blas::) variants ----------------------------------------
// Inputs/outputs by position: conv2d {x, w, b} → {y}; backward_input {dy, w} → {dx}; backward_weight {x, dy} → {dw}.
void conv2d_ref(const C& c, S&, const B&) {
  ref::conv2d_forward(conv2d_params_of(*c.graph, *c.node), c.in[0], c.in[1], c.in[2], c.out[0]);
}
void conv2d_backward_input_ref(const C& c, S&, const B&) {
  ref::conv2d_backward_input(conv2d_params_of(*c.graph, *c.node), c.in[0], c.in[1], c.out[0]);
}
void conv2d_backward_weight_ref(const C& c, S&, const B&) {
  ref::conv2d_backward_weight(conv2d_params_of(*c.graph, *c.node), c.in[0], c.in[1], c.out[0]);
}
void conv_transpose2d_ref(const C& c, S&, const B&) {
  ref::conv_transpose2d_forward(conv_transpose2d_params_of(*c.graph, *c.node), c.in[0], c.in[1],
                                c.in[2], c.out[0]);
}
void conv_transpose2d_backward_input_ref(const C& c, S&, const B&) {
  ref::conv_transpose2d_backward_input(conv_transpose2d_params_of(*c.graph, *c.node), c.in[0],
                                       c.in[1], c.out[0]);
}
void conv_transpose2d_backward_weight_ref(const C& c, S&, const B&) {
  ref::conv_transpose2d_backward_weight(conv_transpose2d_params_of(*c.graph, *c.node), c.in[0],
                                        c.in[1], c.out[0]);
}
void linear_ref(const C& c, S&, const B&) {
  ref::linear_forward(linear_params(c.in_shape(0), c.out_shape(0)), c.in[0], c.in[1], c.in[2], c.out[0]);
}
void linear_backward_input_ref(const C& c, S&, const B&) {
  ref::linear_backward_input(linear_params(c.out_shape(0), c.in_shape(0)), c.in[0], c.in[1], c.out[0]);
}
void linear_backward_weight_ref(const C& c, S&, const B&) {
  ref::linear_backward_weight(linear_params(c.in_shape(0), c.in_shape(1)), c.in[0], c.in[1], c.out[0]);
}

void conv2d_blas(const C& c, S&, const B&) {
  blas::conv2d_forward(conv2d_params_of(*c.graph, *c.node), c.in[0], c.in[1], c.in[2], c.out[0],
                       c.scratch);
}
void conv2d_backward_input_blas(const C& c, S&, const B&) {
  blas::conv2d_backward_input(conv2d_params_of(*c.graph, *c.node), c.in[0], c.in[1], c.out[0],
                              c.scratch);
}
void conv2d_backward_weight_blas(const C& c, S&, const B&) {
  blas::conv2d_backward_weight(conv2d_params_of(*c.graph, *c.node), c.in[0], c.in[1], c.out[0],
                               c.scratch);
}
void conv_transpose2d_blas(const C& c, S&, const B&) {
  blas::conv_transpose2d_forward(conv_transpose2d_params_of(*c.graph, *c.node), c.in[0],
                                 c.in[1], c.in[2], c.out[0], c.scratch);
}
void conv_transpose2d_backward_input_blas(const C& c, S&, const B&) {
  blas::conv_transpose2d_backward_input(conv_transpose2d_params_of(*c.graph, *c.node), c.in[0],
                                        c.in[1], c.out[0], c.scratch);
}
void conv_transpose2d_backward_weight_blas(const C& c, S&, const B&) {
  blas::conv_transpose2d_backward_weight(conv_transpose2d_params_of(*c.graph, *c.node), c.in[0],
                                         c.in[1], c.out[0], c.scratch);
}
void linear_blas(const C& c, S&, const B&) {
  blas::linear_forward(linear_params(c.in_shape(0), c.out_shape(0)), c.in[0], c.in[1], c.in[2], c.out[0]);
}
void linear_backward_input_blas(const C& c, S&, const B&) {
  blas::linear_backward_input(linear_params(c.out_shape(0), c.in_shape(0)), c.in[0], c.in[1], c.out[0]);
}
void linear_backward_weight_blas(const C& c, S&, const B&) {
  blas::linear_backward_weight(linear_params(c.in_shape(0), c.in_shape(1)), c.in[0], c.in[1], c.out[0]);
}

int64_t conv2d_scratch(const Graph& g, const Node& n) { return blas::conv_scratch_floats(conv2d_params_of(g, n)); }
int64_t conv_transpose2d_scratch(const Graph& g, const Node& n) {
  return blas::conv_scratch_floats(conv_transpose2d_params_of(g, n));
}

// ---- everything else: reference kernels on both CPU backends ----------------------------------------------------
void bias2d_backward(const C& c, S&, const B&) {
  const Shape& dy = c.in_shape(0);
  const int spatial = dy.rank() == 4 ? i32(dy[2] * dy[3]) : 1;
  ref::bias2d_backward(i32(dy[0]), i32(dy[1]), spatial, c.in[0], c.out[0]);
}
void linear_backward_bias(const C& c, S&, const B&) {
  ref::linear_backward_bias(linear_params(c.in_shape(0), c.in_shape(0)), c.in[0], c.out[0]);
}
// A batch norm may carry a fused activation (engine/fusion.h). On the host it is the plain composition: the
// activation in place after the batch norm; backward recomputes the pre-activation z = γ·(x − mean)·invstd + β from
// the saved statistics (beta is the node's sixth input), masks the incoming gradient with it into the scratch
// (ref::batch_norm2d_activation_backward), and hands that to the batch norm's backward. A fused PReLU's slope is the
// last input of both nodes, and its gradient the backward's fourth output.
void apply_fused_activation(const C& c, const Shape& shape, float* y) {
  const Attrs& a = c.node->attrs;
  if (a.fused_activation == FusedActivation::kRelu) ref::relu_forward(shape.numel(), y, y);
  if (a.fused_activation == FusedActivation::kLeakyRelu) ref::leaky_relu_forward(shape.numel(), a.slope, y, y);
  if (a.fused_activation == FusedActivation::kPRelu) {
    const BatchNorm2dParams p = batch_norm2d_params(shape, a);
    ref::prelu_forward(p.batch, p.channels, p.spatial, y, c.in[5], y);
  }
}
void batch_norm2d_train(const C& c, S&, const B&) {
  ref::batch_norm2d_forward_train(batch_norm2d_params(c.in_shape(0), c.node->attrs), c.in[0], c.in[1], c.in[2], c.in[3],
                                  c.in[4], c.out[0], c.out[1], c.out[2]);
  apply_fused_activation(c, c.out_shape(0), c.out[0]);
}
void batch_norm2d_infer(const C& c, S&, const B&) {
  ref::batch_norm2d_forward_infer(batch_norm2d_params(c.in_shape(0), c.node->attrs), c.in[0], c.in[1], c.in[2], c.in[3],
                                  c.in[4], c.out[0]);
  apply_fused_activation(c, c.out_shape(0), c.out[0]);
}
void batch_norm2d_backward(const C& c, S&, const B&) {
  const BatchNorm2dParams p = batch_norm2d_params(c.in_shape(1), c.node->attrs);
  const float* dy = c.in[0];
  const Attrs& a = c.node->attrs;
  if (a.fused_activation != FusedActivation::kNone) {
    const bool prelu = a.fused_activation == FusedActivation::kPRelu;
    const float negative_slope = a.fused_activation == FusedActivation::kLeakyRelu ? a.slope : 0.0f;
    ref::batch_norm2d_activation_backward(p, negative_slope, prelu ? c.in[6] : nullptr, c.in[0], c.in[1], c.in[2],
                                          c.in[5], c.in[3], c.in[4], c.scratch, prelu ? c.out[3] : nullptr);
    dy = c.scratch;
  }
  ref::batch_norm2d_backward(p, dy, c.in[1], c.in[2], c.in[3], c.in[4], c.out[0], c.out[1], c.out[2]);
}
// The masked gradient of a fused backward.
int64_t batch_norm2d_backward_scratch(const Graph& g, const Node& n) {
  return n.attrs.fused_activation == FusedActivation::kNone ? 0 : g.shape(n.inputs[0]).numel();
}
int64_t numel_in0(const C& c) { return c.in_shape(0).numel(); }
void relu(const C& c, S&, const B&) { ref::relu_forward(numel_in0(c), c.in[0], c.out[0]); }
void relu_backward(const C& c, S&, const B&) { ref::relu_backward(numel_in0(c), c.in[0], c.in[1], c.out[0]); }
void leaky_relu(const C& c, S&, const B&) {
  ref::leaky_relu_forward(numel_in0(c), c.node->attrs.slope, c.in[0], c.out[0]);
}
void leaky_relu_backward(const C& c, S&, const B&) {
  ref::leaky_relu_backward(numel_in0(c), c.node->attrs.slope, c.in[0], c.in[1], c.out[0]);
}
void prelu_dims(const Shape& s, int* batch, int* channels, int* spatial) {
  *batch = i32(s[0]);
  *channels = i32(s[1]);
  *spatial = i32(s.numel() / (s[0] * s[1]));
}
void prelu(const C& c, S&, const B&) {
  int b, ch, sp;
  prelu_dims(c.in_shape(0), &b, &ch, &sp);
  ref::prelu_forward(b, ch, sp, c.in[0], c.in[1], c.out[0]);
}
void prelu_backward(const C& c, S&, const B&) {
  int b, ch, sp;
  prelu_dims(c.in_shape(0), &b, &ch, &sp);
  ref::prelu_backward(b, ch, sp, c.in[0], c.in[1], c.in[2], c.out[0], c.out[1]);
}
void tanh_fwd(const C& c, S&, const B&) { ref::tanh_forward(numel_in0(c), c.in[0], c.out[0]); }
void tanh_backward(const C& c, S&, const B&) { ref::tanh_backward(numel_in0(c), c.in[0], c.in[1], c.out[0]); }
void sigmoid(const C& c, S&, const B&) { ref::sigmoid_forward(numel_in0(c), c.in[0], c.out[0]); }
void sigmoid_backward(const C& c, S&, const B&) { ref::sigmoid_backward(numel_in0(c), c.in[0], c.in[1], c.out[0]); }
void add(const C& c, S&, const B&) { ref::add_forward(numel_in0(c), c.in[0], c.in[1], c.out[0]); }
void dropout(const C& c, S& s, const B&) {
  ref::dropout_forward(numel_in0(c), c.node->attrs.p, s.seed, philox_step_stream(c.node->attrs.stream, s.step), c.in[0],
                       c.out[0], c.out[1]);
}
void dropout_backward(const C& c, S&, const B&) { ref::dropout_backward(numel_in0(c), c.in[0], c.in[1], c.out[0]); }
void pixel_shuffle(const C& c, S&, const B&) {
  const Shape& y = c.out_shape(0);
  const int r = c.node->attrs.upscale;
  ref::pixel_shuffle_forward(i32(y[0]), i32(y[1]), i32(y[2] / r), i32(y[3] / r), r, c.in[0], c.out[0]);
}
void pixel_shuffle_backward(const C& c, S&, const B&) {
  const Shape& dy = c.in_shape(0);
  const int r = c.node->attrs.upscale;
  ref::pixel_shuffle_backward(i32(dy[0]), i32(dy[1]), i32(dy[2] / r), i32(dy[3] / r), r, c.in[0], c.out[0]);
}
// max_pool2d {x} → {y}; its backward {x, dy} → {dx}.
void max_pool2d(const C& c, S&, const B&) {
  ref::max_pool2d_forward(max_pool2d_params(c.in_shape(0), c.node->attrs), c.in[0], c.out[0]);
}
void max_pool2d_backward(const C& c, S&, const B&) {
  ref::max_pool2d_backward(max_pool2d_params(c.in_shape(0), c.node->attrs), c.in[0], c.in[1], c.out[0]);
}
// concat {x0, x1, ...} → {y}; channel_slice {x} → {y} from channel attrs.channel_begin; one_hot {labels} → {y}.
void concat(const C& c, S&, const B&) {
  std::vector<const float*> xs(c.in.begin(), c.in.end());
  std::vector<int> channels;
  for (size_t i = 0; i < c.in.size(); ++i) channels.push_back(i32(c.in_shape(int(i))[1]));
  const Shape& y = c.out_shape(0);
  ref::concat_channels(i32(y[0]), per_channel_size(y), int(xs.size()), xs.data(), channels.data(), c.out[0]);
}
void channel_slice(const C& c, S&, const B&) {
  const Shape& x = c.in_shape(0);
  ref::channel_slice(i32(x[0]), i32(x[1]), c.node->attrs.channel_begin, i32(c.out_shape(0)[1]), per_channel_size(x),
                     c.in[0], c.out[0]);
}
void one_hot(const C& c, S&, const B&) {
  const Shape& y = c.out_shape(0);
  ref::one_hot(i32(y[0]), i32(y[1]), per_channel_size(y), c.in[0], c.out[0]);
}
void bce_with_logits(const C& c, S&, const B&) {
  c.out[0][0] = static_cast<float>(ref::bce_with_logits_forward(numel_in0(c), c.in[0], c.in[1]));
}
void bce_with_logits_backward(const C& c, S&, const B&) {
  ref::bce_with_logits_backward(numel_in0(c), c.in[0], c.in[1], c.node->attrs.loss_scale, c.out[0]);
}
void mse(const C& c, S&, const B&) {
  c.out[0][0] = static_cast<float>(ref::mse_forward(numel_in0(c), c.in[0], c.in[1]));
}
void mse_backward(const C& c, S&, const B&) {
  ref::mse_backward(numel_in0(c), c.in[0], c.in[1], c.node->attrs.loss_scale, c.out[0]);
}
void l1(const C& c, S&, const B&) { c.out[0][0] = static_cast<float>(ref::l1_forward(numel_in0(c), c.in[0], c.in[1])); }
void l1_backward(const C& c, S&, const B&) {
  ref::l1_backward(numel_in0(c), c.in[0], c.in[1], c.node->attrs.loss_scale, c.out[0]);
}
// cross_entropy {logits [N, K], labels [N]} → {loss}; its backward → {dlogits}.
void cross_entropy(const C& c, S&, const B&) {
  const Shape& x = c.in_shape(0);
  c.out[0][0] = static_cast<float>(ref::cross_entropy_forward(i32(x[0]), i32(x[1]), c.in[0], c.in[1]));
}
void cross_entropy_backward(const C& c, S&, const B&) {
  const Shape& x = c.in_shape(0);
  ref::cross_entropy_backward(i32(x[0]), i32(x[1]), c.in[0], c.in[1], c.node->attrs.loss_scale, c.out[0]);
}
void normal_fill(const C& c, S& s, const B&) {
  const Attrs& a = c.node->attrs;
  const int64_t n = c.out_shape(0).numel();
  const uint64_t stream = philox_step_stream(a.stream, s.step);
  for (int64_t i = 0; i < n; ++i)
    c.out[0][i] = a.fill_value + a.fill_stddev * philox_normal_at(s.seed, stream, uint64_t(i));
}
void target_fill(const C& c, S& s, const B&) {
  const Attrs& a = c.node->attrs;
  const int64_t n = c.out_shape(0).numel();
  const uint64_t stream = philox_step_stream(a.stream, s.step);
  for (int64_t i = 0; i < n; ++i) {
    const bool flip = a.label_noise > 0 && philox_uniform_at(s.seed, stream, uint64_t(i)) <= a.label_noise;
    c.out[0][i] = flip ? 1.0f - a.fill_value : a.fill_value;
  }
}
void adam_step(const C& c, S& s, const B&) {
  const int64_t t = ++s.counters[static_cast<size_t>(c.node->attrs.counter)];
  for (size_t i = 0; i + 3 < c.in.size(); i += 4)
    ref::adam_step(c.in_shape(int(i)).numel(), c.node->attrs.adam, t, c.in[i], c.in[i + 1], c.in[i + 2], c.in[i + 3]);
}

DispatchTable make_table(bool use_blas) {
  DispatchTable t{};
  auto set = [&t](OpKind op, KernelFn fn, ScratchFn scratch = nullptr) { t[static_cast<size_t>(op)] = {fn, scratch}; };
  if (use_blas) {
    set(OpKind::kConv2d, conv2d_blas, conv2d_scratch);
    set(OpKind::kConv2dBackwardInput, conv2d_backward_input_blas, conv2d_scratch);
    set(OpKind::kConv2dBackwardWeight, conv2d_backward_weight_blas, conv2d_scratch);
    set(OpKind::kConvTranspose2d, conv_transpose2d_blas, conv_transpose2d_scratch);
    set(OpKind::kConvTranspose2dBackwardInput, conv_transpose2d_backward_input_blas, conv_transpose2d_scratch);
    set(OpKind::kConvTranspose2dBackwardWeight, conv_transpose2d_backward_weight_blas, conv_transpose2d_scratch);
    set(OpKind::kLinear, linear_blas);
    set(OpKind::kLinearBackwardInput, linear_backward_input_blas);
    set(OpKind::kLinearBackwardWeight, linear_backward_weight_blas);
  } else {
    set(OpKind::kConv2d, conv2d_ref);
    set(OpKind::kConv2dBackwardInput, conv2d_backward_input_ref);
    set(OpKind::kConv2dBackwardWeight, conv2d_backward_weight_ref);
    set(OpKind::kConvTranspose2d, conv_transpose2d_ref);
    set(OpKind::kConvTranspose2dBackwardInput, conv_transpose2d_backward_input_ref);
    set(OpKind::kConvTranspose2dBackwardWeight, conv_transpose2d_backward_weight_ref);
    set(OpKind::kLinear, linear_ref);
    set(OpKind::kLinearBackwardInput, linear_backward_input_ref);
    set(OpKind::kLinearBackwardWeight, linear_backward_weight_ref);
  }
  set(OpKind::kBias2dBackward, bias2d_backward);
  set(OpKind::kLinearBackwardBias, linear_backward_bias);
  set(OpKind::kBatchNorm2dTrain, batch_norm2d_train);
  set(OpKind::kBatchNorm2dInfer, batch_norm2d_infer);
  set(OpKind::kBatchNorm2dBackward, batch_norm2d_backward, batch_norm2d_backward_scratch);
  set(OpKind::kRelu, relu);
  set(OpKind::kReluBackward, relu_backward);
  set(OpKind::kLeakyRelu, leaky_relu);
  set(OpKind::kLeakyReluBackward, leaky_relu_backward);
  set(OpKind::kPRelu, prelu);
  set(OpKind::kPReluBackward, prelu_backward);
  set(OpKind::kTanh, tanh_fwd);
  set(OpKind::kTanhBackward, tanh_backward);
  set(OpKind::kSigmoid, sigmoid);
  set(OpKind::kSigmoidBackward, sigmoid_backward);
  set(OpKind::kAdd, add);
  set(OpKind::kDropout, dropout);
  set(OpKind::kDropoutBackward, dropout_backward);
  set(OpKind::kPixelShuffle, pixel_shuffle);
  set(OpKind::kPixelShuffleBackward, pixel_shuffle_backward);
  set(OpKind::kMaxPool2d, max_pool2d);
  set(OpKind::kMaxPool2dBackward, max_pool2d_backward);
  set(OpKind::kConcat, concat);
  set(OpKind::kChannelSlice, channel_slice);
  set(OpKind::kOneHot, one_hot);
  set(OpKind::kBceWithLogits, bce_with_logits);
  set(OpKind::kBceWithLogitsBackward, bce_with_logits_backward);
  set(OpKind::kMse, mse);
  set(OpKind::kMseBackward, mse_backward);
  set(OpKind::kL1, l1);
  set(OpKind::kL1Backward, l1_backward);
  set(OpKind::kCrossEntropy, cross_entropy);
  set(OpKind::kCrossEntropyBackward, cross_entropy_backward);
  set(OpKind::kNormalFill, normal_fill);
  set(OpKind::kTargetFill, target_fill);
  set(OpKind::kAdamStep, adam_step);
  set_host_data_parallel_kernels(t);
  return t;
}

class HostBackend final : public Backend {
 public:
  HostBackend(bool use_blas) : use_blas_(use_blas), table_(make_table(use_blas)) {}
  std::string name() const override { return use_blas_ ? "cpu" : "reference"; }
  const DispatchTable& kernels() const override { return table_; }
  float* allocate(int64_t floats) override { return new float[static_cast<size_t>(floats)](); }
  int64_t available_bytes() const override { return available_host_memory_bytes(); }
  void release(float* p) override { delete[] p; }
  void upload(float* dst, const float* src, int64_t n) override { std::memcpy(dst, src, size_t(n) * sizeof(float)); }
  void download(float* dst, const float* src, int64_t n) override { std::memcpy(dst, src, size_t(n) * sizeof(float)); }
  void execute(const std::vector<KernelCall>& calls, StepState& state) override {
    const auto step_start = std::chrono::steady_clock::now();
    if (!profiling_) {
      for (const KernelCall& call : calls) call.fn(call, state, context_);
    } else {
      for (const KernelCall& call : calls) {
        const auto start = std::chrono::steady_clock::now();
        call.fn(call, state, context_);
        const auto end = std::chrono::steady_clock::now();
        profile_.add(*call.graph, *call.node, std::chrono::duration<double>(end - start).count());
      }
      profile_.end_step();
    }
    last_step_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - step_start).count();
  }
  void enable_profiling() override { profiling_ = true; }
  std::string profile_report() const override { return profile_.report(); }
  // The host kernels run inside execute(), so its duration is the step's.
  void enable_step_timing() override {}
  double last_step_ms() override { return last_step_ms_; }

 private:
  bool use_blas_;
  DispatchTable table_;
  const BackendContext context_;
  bool profiling_ = false;
  OpProfile profile_;
  double last_step_ms_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<HostBackend>(true); }
std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<HostBackend>(false); }

}  // namespace gancu
