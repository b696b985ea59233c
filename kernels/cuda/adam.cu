// Multi-tensor Adam: every tensor is cut into fixed-size chunks and each block updates one chunk; the tensor list and
// the prefix sums of chunk counts travel in the kernel arguments, so no table needs to be copied to the device.
#include "kernels/cuda/adam.h"

#include <algorithm>
#include <stdexcept>

#include "kernels/cuda/check.h"

namespace gancu::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 8192;  // elements per block: 32 per thread, and hundreds of blocks for a DCGAN model

struct AdamLaunchArgs {
  float* param[kAdamTensorsPerLaunch];
  const float* grad[kAdamTensorsPerLaunch];
  float* m[kAdamTensorsPerLaunch];
  float* v[kAdamTensorsPerLaunch];
  int64_t size[kAdamTensorsPerLaunch];
  int first_block[kAdamTensorsPerLaunch + 1];  // tensor k owns blocks [first_block[k], first_block[k + 1])
  int count;
};

struct AdamScalars {
  double beta1, beta2;  // for the bias corrections, computed in double once per block
  float lr, beta1_f, one_minus_beta1, beta2_f, one_minus_beta2, eps, weight_decay;
};

// All of adam_kernel's parameters (the tensor table, the scalars, the step pointer) must fit the 4 KiB kernel-parameter
// limit of toolkits before CUDA 12.1 (12.1+ on Volta and newer allows 32 KiB): 2,120 + 48 + 8 bytes for 48 tensors.
static_assert(sizeof(AdamLaunchArgs) + sizeof(AdamScalars) + sizeof(const int64_t*) <= 4096,
              "adam_kernel's parameters must stay within 4 KiB");

__global__ void __launch_bounds__(kThreads) adam_kernel(AdamLaunchArgs args, AdamScalars s, const int64_t* step) {
  __shared__ float shared_step_size, shared_bias_correction2_sqrt;
  if (threadIdx.x == 0) {
    const double t = double(*step + 1);
    shared_step_size = float(double(s.lr) / (1.0 - pow(s.beta1, t)));
    shared_bias_correction2_sqrt = float(sqrt(1.0 - pow(s.beta2, t)));
  }
  // Which tensor this block belongs to: a short uniform scan over the argument array.
  int k = 0;
  while (k + 1 < args.count && int(blockIdx.x) >= args.first_block[k + 1]) ++k;
  const int64_t begin = int64_t(int(blockIdx.x) - args.first_block[k]) * kChunk;
  const int64_t end = std::min(args.size[k], begin + kChunk);
  float* __restrict__ param = args.param[k];
  const float* __restrict__ grad = args.grad[k];
  float* __restrict__ m = args.m[k];
  float* __restrict__ v = args.v[k];
  __syncthreads();
  const float step_size = shared_step_size, bias_correction2_sqrt = shared_bias_correction2_sqrt;

  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    const float p = param[i];
    const float g = grad[i] + s.weight_decay * p;
    const float m_new = s.beta1_f * m[i] + s.one_minus_beta1 * g;
    const float v_new = s.beta2_f * v[i] + s.one_minus_beta2 * g * g;
    m[i] = m_new;
    v[i] = v_new;
    // eps after the bias correction of √v, exactly where PyTorch adds it.
    param[i] = p - step_size * m_new / (sqrtf(v_new) / bias_correction2_sqrt + s.eps);
  }
}

__global__ void advance_step_kernel(int64_t* step) { *step += 1; }

}  // namespace

void adam_step(const AdamParams& p, const AdamTensor* tensors, int count, int64_t* step, cudaStream_t stream) {
  if (count < 0 || (count > 0 && tensors == nullptr) || step == nullptr)
    throw std::invalid_argument("adam_step: bad tensor list or step pointer");
  AdamScalars s{};
  s.beta1 = p.beta1;
  s.beta2 = p.beta2;
  s.lr = float(p.lr);
  s.beta1_f = float(p.beta1);
  s.one_minus_beta1 = float(1.0 - p.beta1);
  s.beta2_f = float(p.beta2);
  s.one_minus_beta2 = float(1.0 - p.beta2);
  s.eps = float(p.eps);
  s.weight_decay = float(p.weight_decay);

  for (int first = 0; first < count; first += kAdamTensorsPerLaunch) {
    AdamLaunchArgs args{};
    int64_t blocks = 0;
    args.count = std::min(kAdamTensorsPerLaunch, count - first);
    for (int k = 0; k < args.count; ++k) {
      const AdamTensor& t = tensors[first + k];
      if (t.size < 0) throw std::invalid_argument("adam_step: negative tensor size");
      args.param[k] = t.param;
      args.grad[k] = t.grad;
      args.m[k] = t.m;
      args.v[k] = t.v;
      args.size[k] = t.size;
      args.first_block[k] = int(blocks);
      blocks += (t.size + kChunk - 1) / kChunk;
      if (blocks > int64_t(1) << 30) throw std::invalid_argument("adam_step: tensor list too large for one launch");
    }
    args.first_block[args.count] = int(blocks);
    if (blocks == 0) continue;  // only empty tensors
    adam_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(args, s, step);
    GANCU_CUDA_CHECK_LAUNCH();
  }
  advance_step_kernel<<<1, 1, 0, stream>>>(step);
  GANCU_CUDA_CHECK_LAUNCH();
}

}  // namespace gancu::cuda
