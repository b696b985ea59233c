// The CUDA backend's dispatch table: one row per op kind, with exactly the argument mapping of the CPU backend's
// table (engine/cpu_backend.cpp), so a node means the same thing on either backend. Every function only enqueues work
// on the context's stream; nothing here synchronises (a captured CUDA graph must not).
#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cuda_dispatch.h"
#include "engine/cuda_graph.h"
#include "engine/kernel_params.h"
#include "kernels/cuda/adam.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/batch_norm2d.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv_transpose2d.h"
#include "kernels/cuda/activations.h"
#include "engine/comm_nccl.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/losses.h"
#include "kernels/cuda/pooling.h"
#include "kernels/cuda/random.h"
#include "kernels/cudnn/conv2d.h"
#include "kernels/cudnn/conv_transpose2d.h"

namespace gancu::cuda_backend {
namespace {

using C = KernelCall;
using S = StepState;
// A table row: the call, the step state and this backend's context (cast once, by entry<row> below).
using CudaRow = void (*)(const C&, S&, const CudaContext&);
int i32(int64_t v) { return to_int(v); }
int64_t numel_in0(const C& c) { return c.in_shape(0).numel(); }
// Workspace bytes as scratch floats, rounded up.
int64_t floats_for_bytes(size_t bytes) { return static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float)); }

// ---- convolutions, custom kernels ----------------------------------------------------------------------------
// Inputs/outputs by position: conv2d {x, w, b} → {y}; backward_input {dy, w} → {dx}; backward_weight {x, dy} → {dw}.
void conv2d_custom(const C& c, S&, const CudaContext& ctx) {
  cuda::conv2d_forward(conv2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1], c.in[2], c.out[0], c.scratch,
                       ctx.stream);
}
void conv2d_backward_input_custom(const C& c, S&, const CudaContext& ctx) {
  cuda::conv2d_backward_input(conv2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1], c.out[0], c.scratch,
                              ctx.stream);
}
void conv2d_backward_weight_custom(const C& c, S&, const CudaContext& ctx) {
  cuda::conv2d_backward_weight(conv2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1], c.out[0], c.scratch,
                               ctx.stream);
}
void conv_transpose2d_custom(const C& c, S&, const CudaContext& ctx) {
  cuda::conv_transpose2d_forward(conv_transpose2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1], c.in[2],
                                 c.out[0], c.scratch, ctx.stream);
}
void conv_transpose2d_backward_input_custom(const C& c, S&, const CudaContext& ctx) {
  cuda::conv_transpose2d_backward_input(conv_transpose2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1],
                                        c.out[0], c.scratch, ctx.stream);
}
void conv_transpose2d_backward_weight_custom(const C& c, S&, const CudaContext& ctx) {
  cuda::conv_transpose2d_backward_weight(conv_transpose2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1],
                                         c.out[0], c.scratch, ctx.stream);
}

// The custom kernels split long reductions of small outputs and sum the splits from a workspace: ask each pass's plan.
int64_t conv2d_scratch(const Graph& g, const Node& n) {
  return floats_for_bytes(cuda::conv2d_forward_workspace_bytes(conv2d_params_of(g, n)));
}
int64_t conv2d_backward_input_scratch(const Graph& g, const Node& n) {
  return floats_for_bytes(cuda::conv2d_backward_input_workspace_bytes(conv2d_params_of(g, n)));
}
int64_t conv_transpose2d_scratch(const Graph& g, const Node& n) {
  return floats_for_bytes(cuda::conv_transpose2d_forward_workspace_bytes(conv_transpose2d_params_of(g, n)));
}
int64_t conv_transpose2d_backward_input_scratch(const Graph& g, const Node& n) {
  return floats_for_bytes(cuda::conv_transpose2d_backward_input_workspace_bytes(conv_transpose2d_params_of(g, n)));
}
int64_t conv2d_backward_weight_scratch(const Graph& g, const Node& n) {
  const Conv2dParams p = conv2d_params_of(g, n);
  return floats_for_bytes(cuda::conv2d_backward_weight_workspace_bytes(p));
}
int64_t conv_transpose2d_backward_weight_scratch(const Graph& g, const Node& n) {
  const ConvTranspose2dParams p = conv_transpose2d_params_of(g, n);
  return floats_for_bytes(cuda::conv_transpose2d_backward_weight_workspace_bytes(p));
}

// ---- convolutions, cuDNN (its workspace lives in the cuDNN Context, not in the plan's scratch) ------------------
cudnn::Context& cudnn_context(const CudaContext& ctx) {
  cudnn::Context* context = ctx.cudnn;
  if (context == nullptr) throw std::logic_error("CUDA backend: a cuDNN kernel ran without a cuDNN context");
  return *context;
}
void conv2d_cudnn(const C& c, S&, const CudaContext& ctx) {
  cudnn::conv2d_forward(cudnn_context(ctx), conv2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1], c.in[2],
                        c.out[0], ctx.stream);
}
void conv2d_backward_input_cudnn(const C& c, S&, const CudaContext& ctx) {
  cudnn::conv2d_backward_input(cudnn_context(ctx), conv2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1],
                               c.out[0], ctx.stream);
}
void conv2d_backward_weight_cudnn(const C& c, S&, const CudaContext& ctx) {
  cudnn::conv2d_backward_weight(cudnn_context(ctx), conv2d_params_of(*c.graph, *c.node), ctx.math, c.in[0], c.in[1],
                                c.out[0], ctx.stream);
}
void conv_transpose2d_cudnn(const C& c, S&, const CudaContext& ctx) {
  cudnn::conv_transpose2d_forward(cudnn_context(ctx), conv_transpose2d_params_of(*c.graph, *c.node), ctx.math, c.in[0],
                                  c.in[1], c.in[2], c.out[0], ctx.stream);
}
void conv_transpose2d_backward_input_cudnn(const C& c, S&, const CudaContext& ctx) {
  cudnn::conv_transpose2d_backward_input(cudnn_context(ctx), conv_transpose2d_params_of(*c.graph, *c.node), ctx.math,
                                         c.in[0], c.in[1], c.out[0], ctx.stream);
}
void conv_transpose2d_backward_weight_cudnn(const C& c, S&, const CudaContext& ctx) {
  cudnn::conv_transpose2d_backward_weight(cudnn_context(ctx), conv_transpose2d_params_of(*c.graph, *c.node), ctx.math,
                                          c.in[0], c.in[1], c.out[0], ctx.stream);
}

// ---- convolutions, per pass and shape whichever is faster here (--kernels auto) --------------------------------
// The first call of a (pass, shape) on this device times both kernels on the call's own buffers: each reads the
// node's inputs and overwrites its one output, and the chosen kernel runs last, so the step's result is the chosen
// kernel's. The backend's first step is launched eagerly before any CUDA-graph capture, so every call has chosen by
// the time it is captured; a capture never measures (it could not synchronise).
//
// Each candidate is timed as the step runs it, inside a CUDA graph: kRunsPerGraph back-to-back calls are captured
// once and the graph is launched kLaunches times between events. Timing eager launches instead would charge each
// kernel its host-side launch cost (larger for cuDNN, which sets its stream and a bias descriptor per call), which a
// replayed step never pays, and would favour the custom kernels on small shapes.
class TimingEvents {
 public:
  explicit TimingEvents(size_t count) : events_(count, nullptr) {
    for (cudaEvent_t& e : events_) {
      const cudaError_t err = cudaEventCreate(&e);
      if (err != cudaSuccess) {
        destroy();
        GANCU_CUDA_CHECK(err);
      }
    }
  }
  ~TimingEvents() { destroy(); }
  TimingEvents(const TimingEvents&) = delete;
  TimingEvents& operator=(const TimingEvents&) = delete;
  cudaEvent_t operator[](size_t i) const { return events_[i]; }

 private:
  void destroy() {
    for (cudaEvent_t& e : events_)
      if (e) cudaEventDestroy(e), e = nullptr;
  }
  std::vector<cudaEvent_t> events_;
};

// `runs` calls of fn captured on the context's stream (fn only enqueues work; it ran once eagerly before, so cuDNN has
// planned the shape and nothing in it synchronises).
CapturedGraph graph_of_calls(CudaRow fn, const C& c, S& s, const CudaContext& ctx, int runs) {
  return CapturedGraph(ctx.stream, [&] {
    for (int r = 0; r < runs; ++r) fn(c, s, ctx);
  });
}

// Median over kLaunches graph launches of the time per call, after one untimed eager call (cuDNN plans the shape then,
// with its own synchronising search) and one untimed launch (caches and clocks settle).
double median_call_ms(CudaRow fn, const C& c, S& s, const CudaContext& ctx) {
  constexpr int kRunsPerGraph = 5, kLaunches = 5;
  const cudaStream_t stream = ctx.stream;
  fn(c, s, ctx);
  const CapturedGraph graph = graph_of_calls(fn, c, s, ctx, kRunsPerGraph);
  graph.launch(stream);
  TimingEvents events(kLaunches + 1);
  GANCU_CUDA_CHECK(cudaEventRecord(events[0], stream));
  for (int r = 0; r < kLaunches; ++r) {
    graph.launch(stream);
    GANCU_CUDA_CHECK(cudaEventRecord(events[size_t(r) + 1], stream));
  }
  GANCU_CUDA_CHECK(cudaEventSynchronize(events[kLaunches]));
  std::array<float, kLaunches> ms{};
  for (int r = 0; r < kLaunches; ++r)
    GANCU_CUDA_CHECK(cudaEventElapsedTime(&ms[size_t(r)], events[size_t(r)], events[size_t(r) + 1]));
  std::nth_element(ms.begin(), ms.begin() + kLaunches / 2, ms.end());
  return ms[kLaunches / 2] / kRunsPerGraph;
}

bool choose_cudnn(const C& c, S& s, const CudaContext& context, const std::string& shape, CudaRow custom,
                  CudaRow cudnn_fn) {
  if (context.choices == nullptr || context.device_name == nullptr || context.call_choices == nullptr)
    throw std::logic_error("CUDA backend: an auto-chosen convolution ran without the backend's kernel choices");
  const char* math = cuda::to_string(context.math);
  const char* op = op_name(c.node->op);
  const KernelChoice* choice = context.choices->find(*context.device_name, math, op, shape);
  if (choice == nullptr) {
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    GANCU_CUDA_CHECK(cudaStreamIsCapturing(context.stream, &capturing));
    if (capturing != cudaStreamCaptureStatusNone)
      throw std::logic_error(std::string("CUDA backend: ") + op + " " + shape +
                             " has no kernel choice yet inside a capture");
    KernelChoice measured;
    measured.custom_ms = median_call_ms(custom, c, s, context);
    // cuDNN may have no acceptable algorithm for a shape (deterministic, and FMA-only in strict fp32): then the
    // custom kernel is the choice, recorded with cudnn_ms −1. It fails while planning, before enqueueing anything.
    try {
      measured.cudnn_ms = median_call_ms(cudnn_fn, c, s, context);
    } catch (const std::exception& e) {
      // A failed CUDA call leaves its error for the next launch to report as its own (a failed capture has cleared
      // its own already): clear it before the custom kernel runs.
      clear_cuda_error_state("cuDNN's failed measurement");
      std::fprintf(stderr, "gancu: --kernels auto: cuDNN cannot run %s %s (%s); using the custom kernel\n", op,
                   shape.c_str(), e.what());
      measured.cudnn_ms = -1;
    }
    measured.cudnn = measured.cudnn_ms >= 0 && measured.cudnn_ms < measured.custom_ms;  // a tie keeps custom
    choice = &context.choices->insert(*context.device_name, math, op, shape, measured);
  }
  return choice->cudnn;
}

template <typename ParamsOf>
void run_auto(const C& c, S& s, const CudaContext& ctx, ParamsOf params_of, CudaRow custom, CudaRow cudnn_fn) {
  signed char& memo = ctx.call_choices[&c - ctx.calls_begin];
  if (memo < 0) memo = choose_cudnn(c, s, ctx, conv_shape_key(params_of(*c.graph, *c.node)), custom, cudnn_fn) ? 1 : 0;
  (memo ? cudnn_fn : custom)(c, s, ctx);
}
void conv2d_auto(const C& c, S& s, const CudaContext& ctx) {
  run_auto(c, s, ctx, conv2d_params_of, conv2d_custom, conv2d_cudnn);
}
void conv2d_backward_input_auto(const C& c, S& s, const CudaContext& ctx) {
  run_auto(c, s, ctx, conv2d_params_of, conv2d_backward_input_custom, conv2d_backward_input_cudnn);
}
void conv2d_backward_weight_auto(const C& c, S& s, const CudaContext& ctx) {
  run_auto(c, s, ctx, conv2d_params_of, conv2d_backward_weight_custom, conv2d_backward_weight_cudnn);
}
void conv_transpose2d_auto(const C& c, S& s, const CudaContext& ctx) {
  run_auto(c, s, ctx, conv_transpose2d_params_of, conv_transpose2d_custom, conv_transpose2d_cudnn);
}
void conv_transpose2d_backward_input_auto(const C& c, S& s, const CudaContext& ctx) {
  run_auto(c, s, ctx, conv_transpose2d_params_of, conv_transpose2d_backward_input_custom,
           conv_transpose2d_backward_input_cudnn);
}
void conv_transpose2d_backward_weight_auto(const C& c, S& s, const CudaContext& ctx) {
  run_auto(c, s, ctx, conv_transpose2d_params_of, conv_transpose2d_backward_weight_custom,
           conv_transpose2d_backward_weight_cudnn);
}

// Bias gradients: the custom deterministic reduction for both convolution kernel choices.
void bias2d_backward(const C& c, S&, const CudaContext& ctx) {
  const Shape& dy = c.in_shape(0);
  const int spatial = dy.rank() == 4 ? i32(dy[2] * dy[3]) : 1;
  cuda::bias2d_backward(i32(dy[0]), i32(dy[1]), spatial, c.in[0], c.out[0], ctx.stream);
}

// ---- linear layers: cuBLAS SGEMM plus custom bias kernels -------------------------------------------------------
void linear(const C& c, S&, const CudaContext& ctx) {
  cuda::linear_forward(ctx.cublas, ctx.math, linear_params(c.in_shape(0), c.out_shape(0)), c.in[0], c.in[1],
                       c.in[2], c.out[0], ctx.stream);
}
void linear_backward_input(const C& c, S&, const CudaContext& ctx) {
  cuda::linear_backward_input(ctx.cublas, ctx.math, linear_params(c.out_shape(0), c.in_shape(0)), c.in[0],
                              c.in[1], c.out[0], ctx.stream);
}
void linear_backward_weight(const C& c, S&, const CudaContext& ctx) {
  cuda::linear_backward_weight(ctx.cublas, ctx.math, linear_params(c.in_shape(0), c.in_shape(1)), c.in[0],
                               c.in[1], c.out[0], ctx.stream);
}
void linear_backward_bias(const C& c, S&, const CudaContext& ctx) {
  cuda::linear_backward_bias(linear_params(c.in_shape(0), c.in_shape(0)), c.in[0], c.out[0], ctx.stream);
}

// ---- batch norm: the custom kernels, with or without a fused activation -----------------------------------------
// train {x, gamma, beta, running_mean, running_var} → {y, save_mean, save_invstd}; infer: the same inputs → {y};
// backward {dy, x, gamma, save_mean, save_invstd} → {dx, dgamma, dbeta}.
// A fused ReLU/LeakyReLU/PReLU (engine/fusion.h; this backend asks for it) runs inside the batch-norm kernels; the
// backward then also reads beta (input 5). A fused PReLU's slope is the last input of both nodes (forward 5,
// backward 6), and the backward writes its gradient as a fourth output.
cuda::BnActivation bn_activation(const C& c, int prelu_slope_input) {
  const Attrs& a = c.node->attrs;
  cuda::BnActivation act;
  if (a.fused_activation == FusedActivation::kRelu) act.kind = cuda::Activation::kRelu;
  if (a.fused_activation == FusedActivation::kLeakyRelu) {
    act.kind = cuda::Activation::kLeakyRelu;
    act.leaky_slope = a.slope;
  }
  if (a.fused_activation == FusedActivation::kPRelu) {
    act.kind = cuda::Activation::kPrelu;
    act.prelu_slope = c.in[static_cast<size_t>(prelu_slope_input)];
  }
  return act;
}
void batch_norm2d_train(const C& c, S&, const CudaContext& ctx) {
  const Attrs& a = c.node->attrs;
  cuda::batch_norm2d_forward_train(batch_norm2d_params(c.in_shape(0), a), bn_activation(c, 5), c.in[0], c.in[1],
                                   c.in[2], c.in[3], c.in[4], c.out[0], c.out[1], c.out[2], c.scratch, ctx.stream);
}
void batch_norm2d_infer(const C& c, S&, const CudaContext& ctx) {
  const Attrs& a = c.node->attrs;
  cuda::batch_norm2d_forward_infer(batch_norm2d_params(c.in_shape(0), a), bn_activation(c, 5), c.in[0], c.in[1],
                                   c.in[2], c.in[3], c.in[4], c.out[0], ctx.stream);
}
void batch_norm2d_backward(const C& c, S&, const CudaContext& ctx) {
  const Attrs& a = c.node->attrs;
  const float* beta = a.fused_activation == FusedActivation::kNone ? nullptr : c.in[5];
  float* dprelu_slope = a.fused_activation == FusedActivation::kPRelu ? c.out[3] : nullptr;
  cuda::batch_norm2d_backward(batch_norm2d_params(c.in_shape(1), a), bn_activation(c, 6), c.in[0], c.in[1], c.in[2],
                              beta, c.in[3], c.in[4], c.out[0], c.out[1], c.out[2], dprelu_slope, c.scratch,
                              ctx.stream);
}
// Channels split over several blocks leave per-block partial sums in the scratch: ask the split plan for its size.
int64_t batch_norm2d_train_scratch(const Graph& g, const Node& n) {
  const BatchNorm2dParams p = batch_norm2d_params(g.shape(n.inputs[0]), n.attrs);  // input 0: x
  return floats_for_bytes(cuda::batch_norm2d_forward_train_workspace_bytes(p));
}
int64_t batch_norm2d_backward_scratch(const Graph& g, const Node& n) {
  const BatchNorm2dParams p = batch_norm2d_params(g.shape(n.inputs[1]), n.attrs);  // input 1: x
  return floats_for_bytes(cuda::batch_norm2d_backward_workspace_bytes(p));
}

// ---- activations and data movement --------------------------------------------------------------------------------
void relu(const C& c, S&, const CudaContext& ctx) { cuda::relu_forward(numel_in0(c), c.in[0], c.out[0], ctx.stream); }
void relu_backward(const C& c, S&, const CudaContext& ctx) {
  cuda::relu_backward(numel_in0(c), c.in[0], c.in[1], c.out[0], ctx.stream);
}
void leaky_relu(const C& c, S&, const CudaContext& ctx) {
  cuda::leaky_relu_forward(numel_in0(c), c.node->attrs.slope, c.in[0], c.out[0], ctx.stream);
}
void leaky_relu_backward(const C& c, S&, const CudaContext& ctx) {
  cuda::leaky_relu_backward(numel_in0(c), c.node->attrs.slope, c.in[0], c.in[1], c.out[0], ctx.stream);
}
void prelu_dims(const Shape& s, int* batch, int* channels, int* spatial) {
  *batch = i32(s[0]);
  *channels = i32(s[1]);
  *spatial = i32(s.numel() / (s[0] * s[1]));
}
void prelu(const C& c, S&, const CudaContext& ctx) {
  int b, ch, sp;
  prelu_dims(c.in_shape(0), &b, &ch, &sp);
  cuda::prelu_forward(b, ch, sp, c.in[0], c.in[1], c.out[0], ctx.stream);
}
void prelu_backward(const C& c, S&, const CudaContext& ctx) {
  int b, ch, sp;
  prelu_dims(c.in_shape(0), &b, &ch, &sp);
  cuda::prelu_backward(b, ch, sp, c.in[0], c.in[1], c.in[2], c.out[0], c.out[1], ctx.stream);
}
void tanh_fwd(const C& c, S&, const CudaContext& ctx) {
  cuda::tanh_forward(numel_in0(c), c.in[0], c.out[0], ctx.stream);
}
void tanh_backward(const C& c, S&, const CudaContext& ctx) {
  cuda::tanh_backward(numel_in0(c), c.in[0], c.in[1], c.out[0], ctx.stream);
}
void sigmoid(const C& c, S&, const CudaContext& ctx) {
  cuda::sigmoid_forward(numel_in0(c), c.in[0], c.out[0], ctx.stream);
}
void sigmoid_backward(const C& c, S&, const CudaContext& ctx) {
  cuda::sigmoid_backward(numel_in0(c), c.in[0], c.in[1], c.out[0], ctx.stream);
}
void add(const C& c, S&, const CudaContext& ctx) {
  cuda::add_forward(numel_in0(c), c.in[0], c.in[1], c.out[0], ctx.stream);
}
void pixel_shuffle(const C& c, S&, const CudaContext& ctx) {
  const Shape& y = c.out_shape(0);
  const int r = c.node->attrs.upscale;
  cuda::pixel_shuffle_forward(i32(y[0]), i32(y[1]), i32(y[2] / r), i32(y[3] / r), r, c.in[0], c.out[0], ctx.stream);
}
void pixel_shuffle_backward(const C& c, S&, const CudaContext& ctx) {
  const Shape& dy = c.in_shape(0);
  const int r = c.node->attrs.upscale;
  cuda::pixel_shuffle_backward(i32(dy[0]), i32(dy[1]), i32(dy[2] / r), i32(dy[3] / r), r, c.in[0], c.out[0],
                               ctx.stream);
}

// max_pool2d {x} → {y}; its backward {x, dy} → {dx}.
void max_pool2d(const C& c, S&, const CudaContext& ctx) {
  cuda::max_pool2d_forward(max_pool2d_params(c.in_shape(0), c.node->attrs), c.in[0], c.out[0], ctx.stream);
}
void max_pool2d_backward(const C& c, S&, const CudaContext& ctx) {
  cuda::max_pool2d_backward(max_pool2d_params(c.in_shape(0), c.node->attrs), c.in[0], c.in[1], c.out[0], ctx.stream);
}

// concat {x0, x1, ...} → {y}; channel_slice {x} → {y} from channel attrs.channel_begin; one_hot {labels} → {y}.
void concat(const C& c, S&, const CudaContext& ctx) {
  std::vector<const float*> xs(c.in.begin(), c.in.end());
  std::vector<int> channels;
  for (size_t i = 0; i < c.in.size(); ++i) channels.push_back(i32(c.in_shape(int(i))[1]));
  const Shape& y = c.out_shape(0);
  cuda::concat_channels(i32(y[0]), per_channel_size(y), int(xs.size()), xs.data(), channels.data(), c.out[0],
                        ctx.stream);
}
void channel_slice(const C& c, S&, const CudaContext& ctx) {
  const Shape& x = c.in_shape(0);
  cuda::channel_slice(i32(x[0]), i32(x[1]), c.node->attrs.channel_begin, i32(c.out_shape(0)[1]), per_channel_size(x),
                      c.in[0], c.out[0], ctx.stream);
}
void one_hot(const C& c, S&, const CudaContext& ctx) {  // a bad label gives all-zero maps (kernels/cuda/elementwise.h)
  const Shape& y = c.out_shape(0);
  cuda::one_hot(i32(y[0]), i32(y[1]), per_channel_size(y), c.in[0], c.out[0], ctx.stream);
}

// ---- random ops: the step comes from the device (a replayed graph cannot be handed a new one) ---------------------
void dropout(const C& c, S& s, const CudaContext& ctx) {
  cuda::dropout_forward_step(numel_in0(c), c.node->attrs.p, s.seed, c.node->attrs.stream, ctx.device_step, c.in[0],
                             c.out[0], c.out[1], ctx.stream);
}
void dropout_backward(const C& c, S&, const CudaContext& ctx) {  // {mask, dy} → {dx}
  cuda::dropout_backward(numel_in0(c), c.in[0], c.in[1], c.out[0], ctx.stream);
}
void normal_fill(const C& c, S& s, const CudaContext& ctx) {
  const Attrs& a = c.node->attrs;
  cuda::fill_normal_step(c.out_shape(0).numel(), a.fill_value, a.fill_stddev, s.seed, a.stream, ctx.device_step,
                         c.out[0], ctx.stream);
}
void target_fill(const C& c, S& s, const CudaContext& ctx) {
  const Attrs& a = c.node->attrs;
  cuda::target_fill_step(c.out_shape(0).numel(), a.fill_value, a.label_noise, s.seed, a.stream, ctx.device_step,
                         c.out[0], ctx.stream);
}

// ---- losses: the mean lands in the loss value's device float, partial sums in the scratch ----------------------
// Scratch layout: [loss workspace (doubles), rounded up to floats][one float]. The forward node writes the mean to its
// output; the backward node computes the same pass for dx and sends its copy of the mean to that last float.
int64_t loss_workspace_floats(const Graph& g, const Node& n) {
  return floats_for_bytes(cuda::loss_workspace_bytes(g.shape(n.inputs[0]).numel()));
}
int64_t loss_scratch(const Graph& g, const Node& n) { return loss_workspace_floats(g, n) + 1; }

using LossFn = void (*)(int64_t, const float*, const float*, float, float*, float*, void*, cudaStream_t);
void loss_forward(LossFn fn, const C& c, const CudaContext& ctx) {
  fn(numel_in0(c), c.in[0], c.in[1], 1.0f, /*dx=*/nullptr, c.out[0], c.scratch, ctx.stream);
}
void loss_backward(LossFn fn, const C& c, const CudaContext& ctx) {
  float* discarded_mean = c.scratch + loss_workspace_floats(*c.graph, *c.node);
  fn(numel_in0(c), c.in[0], c.in[1], c.node->attrs.loss_scale, c.out[0], discarded_mean, c.scratch, ctx.stream);
}
void bce_with_logits(const C& c, S&, const CudaContext& ctx) { loss_forward(cuda::bce_with_logits, c, ctx); }
void bce_with_logits_backward(const C& c, S&, const CudaContext& ctx) { loss_backward(cuda::bce_with_logits, c, ctx); }
void mse(const C& c, S&, const CudaContext& ctx) { loss_forward(cuda::mse, c, ctx); }
void mse_backward(const C& c, S&, const CudaContext& ctx) { loss_backward(cuda::mse, c, ctx); }
void l1(const C& c, S&, const CudaContext& ctx) { loss_forward(cuda::l1, c, ctx); }
void l1_backward(const C& c, S&, const CudaContext& ctx) { loss_backward(cuda::l1, c, ctx); }

// cross_entropy {logits [N, K], labels [N]}: the same scratch layout, with one double per row as the workspace.
int64_t cross_entropy_workspace_floats(const Graph& g, const Node& n) {
  return floats_for_bytes(cuda::cross_entropy_workspace_bytes(i32(g.shape(n.inputs[0])[0])));
}
int64_t cross_entropy_scratch(const Graph& g, const Node& n) { return cross_entropy_workspace_floats(g, n) + 1; }
void cross_entropy(const C& c, S&, const CudaContext& ctx) {
  const Shape& x = c.in_shape(0);
  cuda::cross_entropy(i32(x[0]), i32(x[1]), c.in[0], c.in[1], 1.0f, /*dlogits=*/nullptr, c.out[0], c.scratch,
                      ctx.stream);
}
void cross_entropy_backward(const C& c, S&, const CudaContext& ctx) {
  const Shape& x = c.in_shape(0);
  float* discarded_mean = c.scratch + cross_entropy_workspace_floats(*c.graph, *c.node);
  cuda::cross_entropy(i32(x[0]), i32(x[1]), c.in[0], c.in[1], c.node->attrs.loss_scale, c.out[0], discarded_mean,
                      c.scratch, ctx.stream);
}

// ---- Adam: inputs (p0, g0, m0, v0, p1, ...); the counter is on the device, advanced by the kernel itself ----------
void adam_step(const C& c, S&, const CudaContext& ctx) {
  std::vector<cuda::AdamTensor> tensors;
  tensors.reserve(c.in.size() / 4);
  for (size_t i = 0; i + 3 < c.in.size(); i += 4)
    tensors.push_back({c.in[i], c.in[i + 1], c.in[i + 2], c.in[i + 3], c.in_shape(int(i)).numel()});
  int64_t* counter = ctx.device_counters + c.node->attrs.counter;  // the Plan checked the index
  cuda::adam_step(c.node->attrs.adam, tensors.data(), int(tensors.size()), counter, ctx.stream);
}

// The table's function for a row: the engine's opaque context cast to this backend's, once per call.
template <CudaRow row> void entry(const C& c, S& s, const BackendContext& context) { row(c, s, cuda_context(context)); }

}  // namespace

const CudaContext& cuda_context(const BackendContext& context) {
  const auto* cuda = dynamic_cast<const CudaContext*>(&context);
  if (cuda == nullptr) throw std::logic_error("a CUDA backend kernel was called with another backend's context");
  return *cuda;
}

DispatchTable make_cuda_dispatch_table(CudaBackendOptions::Kernels conv_kernels) {
  DispatchTable t{};
  auto set = [&t](OpKind op, KernelFn fn, ScratchFn scratch = nullptr) { t[static_cast<size_t>(op)] = {fn, scratch}; };
  if (conv_kernels == CudaBackendOptions::kCudnn) {
    set(OpKind::kConv2d, entry<conv2d_cudnn>);
    set(OpKind::kConv2dBackwardInput, entry<conv2d_backward_input_cudnn>);
    set(OpKind::kConv2dBackwardWeight, entry<conv2d_backward_weight_cudnn>);
    set(OpKind::kConvTranspose2d, entry<conv_transpose2d_cudnn>);
    set(OpKind::kConvTranspose2dBackwardInput, entry<conv_transpose2d_backward_input_cudnn>);
    set(OpKind::kConvTranspose2dBackwardWeight, entry<conv_transpose2d_backward_weight_cudnn>);
  } else if (conv_kernels == CudaBackendOptions::kAuto) {  // the custom kernels' scratch, in case they are chosen
    set(OpKind::kConv2d, entry<conv2d_auto>, conv2d_scratch);
    set(OpKind::kConv2dBackwardInput, entry<conv2d_backward_input_auto>, conv2d_backward_input_scratch);
    set(OpKind::kConv2dBackwardWeight, entry<conv2d_backward_weight_auto>, conv2d_backward_weight_scratch);
    set(OpKind::kConvTranspose2d, entry<conv_transpose2d_auto>, conv_transpose2d_scratch);
    set(OpKind::kConvTranspose2dBackwardInput, entry<conv_transpose2d_backward_input_auto>,
        conv_transpose2d_backward_input_scratch);
    set(OpKind::kConvTranspose2dBackwardWeight, entry<conv_transpose2d_backward_weight_auto>,
        conv_transpose2d_backward_weight_scratch);
  } else {
    set(OpKind::kConv2d, entry<conv2d_custom>, conv2d_scratch);
    set(OpKind::kConv2dBackwardInput, entry<conv2d_backward_input_custom>, conv2d_backward_input_scratch);
    set(OpKind::kConv2dBackwardWeight, entry<conv2d_backward_weight_custom>, conv2d_backward_weight_scratch);
    set(OpKind::kConvTranspose2d, entry<conv_transpose2d_custom>, conv_transpose2d_scratch);
    set(OpKind::kConvTranspose2dBackwardInput, entry<conv_transpose2d_backward_input_custom>,
        conv_transpose2d_backward_input_scratch);
    set(OpKind::kConvTranspose2dBackwardWeight, entry<conv_transpose2d_backward_weight_custom>,
        conv_transpose2d_backward_weight_scratch);
  }
  set(OpKind::kBias2dBackward, entry<bias2d_backward>);
  set(OpKind::kLinear, entry<linear>);
  set(OpKind::kLinearBackwardInput, entry<linear_backward_input>);
  set(OpKind::kLinearBackwardWeight, entry<linear_backward_weight>);
  set(OpKind::kLinearBackwardBias, entry<linear_backward_bias>);
  set(OpKind::kBatchNorm2dTrain, entry<batch_norm2d_train>, batch_norm2d_train_scratch);
  set(OpKind::kBatchNorm2dInfer, entry<batch_norm2d_infer>);
  set(OpKind::kBatchNorm2dBackward, entry<batch_norm2d_backward>, batch_norm2d_backward_scratch);
  set(OpKind::kRelu, entry<relu>);
  set(OpKind::kReluBackward, entry<relu_backward>);
  set(OpKind::kLeakyRelu, entry<leaky_relu>);
  set(OpKind::kLeakyReluBackward, entry<leaky_relu_backward>);
  set(OpKind::kPRelu, entry<prelu>);
  set(OpKind::kPReluBackward, entry<prelu_backward>);
  set(OpKind::kTanh, entry<tanh_fwd>);
  set(OpKind::kTanhBackward, entry<tanh_backward>);
  set(OpKind::kSigmoid, entry<sigmoid>);
  set(OpKind::kSigmoidBackward, entry<sigmoid_backward>);
  set(OpKind::kAdd, entry<add>);
  set(OpKind::kDropout, entry<dropout>);
  set(OpKind::kDropoutBackward, entry<dropout_backward>);
  set(OpKind::kPixelShuffle, entry<pixel_shuffle>);
  set(OpKind::kPixelShuffleBackward, entry<pixel_shuffle_backward>);
  set(OpKind::kMaxPool2d, entry<max_pool2d>);
  set(OpKind::kMaxPool2dBackward, entry<max_pool2d_backward>);
  set(OpKind::kConcat, entry<concat>);
  set(OpKind::kChannelSlice, entry<channel_slice>);
  set(OpKind::kOneHot, entry<one_hot>);
  set(OpKind::kBceWithLogits, entry<bce_with_logits>, loss_scratch);
  set(OpKind::kBceWithLogitsBackward, entry<bce_with_logits_backward>, loss_scratch);
  set(OpKind::kMse, entry<mse>, loss_scratch);
  set(OpKind::kMseBackward, entry<mse_backward>, loss_scratch);
  set(OpKind::kL1, entry<l1>, loss_scratch);
  set(OpKind::kL1Backward, entry<l1_backward>, loss_scratch);
  set(OpKind::kCrossEntropy, entry<cross_entropy>, cross_entropy_scratch);
  set(OpKind::kCrossEntropyBackward, entry<cross_entropy_backward>, cross_entropy_scratch);
  set(OpKind::kNormalFill, entry<normal_fill>);
  set(OpKind::kTargetFill, entry<target_fill>);
  set(OpKind::kAdamStep, entry<adam_step>);
  set_cuda_data_parallel_kernels(t);  // kAllReduceMean over NCCL (engine/comm_nccl.cu); no synchronised batch norm
  // kReshape stays null: a view, no kernel.
  return t;
}

}  // namespace gancu::cuda_backend
